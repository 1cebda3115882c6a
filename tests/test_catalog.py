from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from console.catalog import CatalogError, parse_catalog
from console.catalog.model import FallbackMode, PoolKind, ServiceKind
from tests.fleetdoc import doc, gpus_per_pool

ROOT = Path(__file__).resolve().parent.parent


def test_demo_catalog_has_the_fleet_the_issue_asks_for(catalog):
    assert len(catalog.regions) >= 3
    kinds = {p.kind for p in catalog.pools}
    assert len(catalog.pools) >= 6
    assert {PoolKind.training, PoolKind.inference, PoolKind.batch, PoolKind.transcode} <= kinds
    assert any(p.mig for p in catalog.pools), "a MIG-partitioned pool"
    assert any(p.gpus_per_node == 0 for p in catalog.pools), "a CPU pool"
    assert any(len({p.model_in(r) for r in p.nodes}) == len(p.nodes) > 1 for p in catalog.pools), (
        "a pool with a different GPU model in each region"
    )
    assert len(catalog.teams) >= 6 and all(t.cost_centre and t.monthly_budget for t in catalog.teams)
    assert {s.kind for s in catalog.services} == set(ServiceKind)
    assert {s.fallback.mode for s in catalog.services} == set(FallbackMode)
    assert catalog.prices.sla_tiers and {b.name for b in catalog.prices.billing_modes} == {
        "hourly",
        "monthly_package",
        "per_job",
    }
    assert catalog.events and catalog.events[0].multiplier > 1


def _errors(text: str) -> list[str]:
    with pytest.raises(CatalogError) as e:
        parse_catalog(text, "bad.yaml")
    return [str(i) for i in e.value.issues]


def _fleet() -> str:
    return (ROOT / "fleet.yaml").read_text()


def _line_of(text: str, needle: str, start: int = 0) -> int:
    return text[: text.index(needle, start)].count("\n") + 1


def test_wrong_type_names_file_line_field():
    text = _fleet().replace(
        "    gpus_per_node: 8\n    cpu_per_node: 192", "    gpus_per_node: eight\n    cpu_per_node: 192"
    )
    line = _line_of(text, "gpus_per_node: eight")
    errs = _errors(text)
    assert any(e.startswith(f"bad.yaml:{line}: pools[0].gpus_per_node:") for e in errs), errs


def test_unknown_pool_reference():
    text = _fleet().replace(
        "    pool: infer-l4\n    regions: [us-east, eu-west, ap-southeast]\n    replicas: {us-east: 8",
        "    pool: infer-l9\n    regions: [us-east, eu-west, ap-southeast]\n    replicas: {us-east: 8",
    )
    line = _line_of(text, "pool: infer-l9")
    errs = _errors(text)
    assert f"bad.yaml:{line}: services[0].pool: unknown pool 'infer-l9'" in errs, errs


def test_duplicate_name():
    text = _fleet().replace("  - name: tts-dub\n", "  - name: llm-chat\n")
    line = _line_of(text, "  - name: llm-chat\n", _fleet().index("name: llm-copywriting"))
    errs = _errors(text)
    assert any(e.startswith(f"bad.yaml:{line}: services[2].name: duplicate name 'llm-chat'") for e in errs), errs


def test_yaml_syntax_error_names_its_line():
    text = _fleet().replace("  - name: creative\n", "  - name: [creative\n")
    errs = _errors(text)
    assert len(errs) == 1 and errs[0].startswith("bad.yaml:") and "(syntax)" in errs[0]
    line = int(errs[0].split(":")[1])
    assert abs(line - _line_of(text, "name: [creative")) <= 2


def test_a_monitoring_selector_that_is_not_promql_names_its_line_and_field():
    good = "  dcgm_selector: 'job=\"dcgm-exporter\"'\n"
    assert good in _fleet()
    text = _fleet().replace(good, "  dcgm_selector: job=dcgm-exporter\n")
    errs = _errors(text)
    line = _line_of(text, "dcgm_selector: job=dcgm-exporter")
    assert any(e.startswith(f"bad.yaml:{line}: monitoring.dcgm_selector:") for e in errs), errs
    text = _fleet().replace(good, '  dcgm_selector: \'job="dcgm", cluster=~"eu-.*"\'\n')
    assert parse_catalog(text, "ok.yaml").monitoring.dcgm_selector == 'job="dcgm", cluster=~"eu-.*"'


def test_unknown_field_and_duplicate_key():
    text = _fleet().replace("    kind: training\n", "    kind: training\n    colour: blue\n    kind: training\n")
    errs = _errors(text)
    assert any("pools[0].kind: duplicate key 'kind'" in e for e in errs), errs
    assert any(f"bad.yaml:{_line_of(text, 'colour: blue')}: pools[0].colour: unknown field" in e for e in errs), errs


def test_every_error_is_reported_not_just_the_first():
    text = (
        _fleet()
        .replace("team: search\n", "team: nobody\n")
        .replace("pool: batch-t4\n    regions", "pool: none\n    regions")
    )
    errs = _errors(text)
    assert any("unknown team 'nobody'" in e for e in errs) and any("unknown pool 'none'" in e for e in errs), errs


def test_catalog_check_cli_exits_non_zero(tmp_path):
    bad = tmp_path / "fleet.yaml"
    bad.write_text(_fleet().replace("monthly_budget: 30000", "monthly_budget: lots"))
    r = subprocess.run(
        [sys.executable, "-m", "console.cli", "catalog", "check", str(bad)], capture_output=True, text=True
    )
    assert r.returncode == 1
    line = _line_of(bad.read_text(), "monthly_budget: lots")
    assert f"{bad}:{line}: teams[3].monthly_budget:" in r.stderr
    ok = subprocess.run(
        [sys.executable, "-m", "console.cli", "catalog", "check", str(ROOT / "fleet.yaml")],
        capture_output=True,
        text=True,
    )
    d = doc()
    gpus = sum(gpus_per_pool().values())
    assert ok.returncode == 0, ok.stderr
    assert (
        f"{len(d['regions'])} regions, {len(d['pools'])} pools ({gpus} GPUs), {len(d['teams'])} teams" in ok.stdout
    ), ok.stdout


def _bomb(levels: int) -> str:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [{', '.join(f'*a{i - 1}' for _ in range(9))}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def _bomb_line(limit: int) -> int:
    """The line of the first entry whose expansion passes `limit` values: a0 is a list and its 9 strings,
    each next one a list of 9 of the one before; the document's mapping is one value more."""
    total, size = 1, 10
    for i in range(9):
        total += size
        if total > limit:
            return i + 1
        size = 1 + 9 * size
    raise AssertionError("the bomb is smaller than the limit")


@pytest.mark.parametrize(
    ("content", "line", "message"),
    [
        (_bomb(9).encode(), _bomb_line(50_000), "values once aliases are expanded (an alias bomb?)"),
        (b"pools:\n  - name: x\n\xff\xfe\x00binary\n", 3, "not UTF-8 text (a binary file?)"),
        (b"x: " + b"[" * 5000 + b"]" * 5000 + b"\n", 1, "levels deep"),
        (b"# padding\n" * (450 * 1024), 1, "MiB: not a config file"),
    ],
    ids=["alias-bomb", "binary", "deep", "huge"],
)
def test_hostile_catalogs_are_refused_fast_with_file_and_line(tmp_path, content, line, message):
    import subprocess
    import sys
    import time

    path = tmp_path / "fleet.yaml"
    path.write_bytes(content)
    started = time.monotonic()
    p = subprocess.run([sys.executable, "-m", "console.cli", "catalog", "check", str(path)],
                       capture_output=True, text=True, timeout=60)  # fmt: skip
    assert p.returncode != 0 and "Traceback" not in p.stderr, p.stderr
    assert f"{path}:{line}:" in p.stderr + p.stdout and message in p.stderr + p.stdout, p.stderr + p.stdout
    assert time.monotonic() - started < 30  # a bound on runaway work, not a speed test: the bomb took minutes


def test_a_gpu_pool_without_gpus_per_node_is_refused_not_counted_as_none():
    text = _fleet().replace("    gpus_per_node: 8\n    cpu_per_node: 192\n", "    cpu_per_node: 192\n", 1)
    line = _line_of(text, "  - name: train-h100")
    errs = _errors(text)
    assert f"bad.yaml:{line}: pools[0]: gpus_per_node: required for a GPU pool (it names a gpu_model): 1 to 16" in errs
