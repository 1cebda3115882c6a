"""The recorded series' past, as `gpuops demo` makes it: a day of history, the catalog's rules loaded, and the
rules' recorded series backfilled by promtool over the history's end while Prometheus runs. Every recording
rule read from the built file is checked against its own expression, which this test has Prometheus evaluate
at the timestamp of each backfilled sample: the rules that read only scraped series, and then those that read a
recorded series, which need the first pass's blocks loaded."""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from console.catalog import load_catalog
from console.codegen.mixin import build_rules
from console.procs.stack import RunningStack, running_stack
from tests.e2e.conftest import ROOT, wait_for

RECORDED_S = 2 * 3600.0
RECORD = re.compile(r"gpuops:[\w:]+")


@pytest.fixture(scope="module")
def rstack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningStack, Path]]:
    workdir = tmp_path_factory.mktemp("recorded")
    built = build_rules(load_catalog(ROOT / "fleet.yaml"), workdir / "rules")
    with running_stack(ROOT / "fleet.yaml", workdir, scrape_interval_s=1.0, history_s=86400.0,
                       rule_files=(built.rules, built.alerts), recorded_s=RECORDED_S) as s:  # fmt: skip
        yield s, built.rules


def query(stack: RunningStack, promql: str, at: float) -> list[dict[str, Any]]:
    r = httpx.get(f"{stack.prom_url}/api/v1/query", params={"query": promql, "time": f"{at:.3f}"}, timeout=30)
    body = r.json()
    assert body["status"] == "success", (promql, body)
    return body["data"]["result"]


def check(stack: RunningStack, rule: dict[str, Any], at: float) -> int:
    """Asserts the rule's backfilled samples in the 3 minutes before `at` equal its expression evaluated at each
    sample's own timestamp; returns how many series were checked (0: the expression is empty there too)."""
    extra = {str(k): str(v) for k, v in (rule.get("labels") or {}).items()}
    selector = ", ".join([f'__name__="{rule["record"]}"'] + [f'{k}="{v}"' for k, v in extra.items()])
    series = query(stack, f"{{{selector}}}[3m]", at)
    if not series:
        assert query(stack, rule["expr"], at) == [], f"{rule['record']}: no backfilled sample, yet a value"
        live = query(stack, f"{{{selector}}}", time.time())
        assert live == [], f"{rule['record']}: recorded live, but the history lacks what it reads"
        return 0
    for s in series:
        ts, value = s["values"][-1]
        want = {
            tuple(sorted({**r["metric"], **extra}.items())): float(r["value"][1])
            for r in query(stack, rule["expr"], float(ts))
        }
        key = tuple(sorted((k, v) for k, v in s["metric"].items() if k != "__name__"))
        assert key in want, f"{rule['record']} {key}: not in its expression's result at {ts}"
        got = float(value)
        assert (math.isnan(got) and math.isnan(want[key])) or math.isclose(got, want[key], rel_tol=1e-9), (
            rule["record"], key, got, want[key],
        )  # fmt: skip
    return len(series)


def test_the_rules_recorded_series_are_backfilled_in_passes(rstack) -> None:
    stack, rules_file = rstack
    assert stack.recorded_log is not None
    log = stack.recorded_log
    # Pass 2 starts once Prometheus has loaded pass 1's blocks; its line comes when its own blocks are in.
    wait_for(lambda: "pass 2/" in log.read_text() if log.exists() else False, timeout=300, every=2,
             what="the second pass of the recorded series' backfill")  # fmt: skip
    first = next(line for line in log.read_text().splitlines() if "pass 1/" in line)
    assert "failed" not in log.read_text(), log.read_text()

    rules = [r for g in yaml.safe_load(rules_file.read_text())["groups"] for r in g["rules"] if "record" in r]
    names = {r["record"] for r in rules}
    plain = [r for r in rules if not set(RECORD.findall(r["expr"])) & names]
    level0 = {r["record"] for r in plain}
    reading = [r for r in rules if set(RECORD.findall(r["expr"])) & names and set(RECORD.findall(r["expr"])) <= level0]
    assert f"{len(plain)} rules" in first, (first, len(plain))
    assert reading, "the catalog's rules have no rule reading a recorded series"

    at = time.time() - 3600  # inside the window: its end is when Prometheus started, moments ago
    checked = {r["record"]: check(stack, r, at) for r in plain}
    # A rule empty in the past is empty live too (`check`): the fleet has no series for it (a fault's, an
    # event's). Most rules record something here.
    assert sum(1 for n in checked.values() if n) >= len(plain) // 4, checked
    # Pass 2's blocks are in the data folder once its line is logged; Prometheus loads them on its minute tick.
    for r in reading:
        wait_for(lambda r=r: query(stack, f"{r['record']}[3m]", at), timeout=150, every=3, what=r["record"])
    deeper = {r["record"]: check(stack, r, at) for r in reading}
    assert all(deeper.values()), deeper  # each has its pass-1 input: none may be empty
