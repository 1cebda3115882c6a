"""Runbook files: the shipped ones load; a bad one is refused with file:line: field for each problem."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from console.cli import main
from console.codegen.dashboard_lint import Expression, check_promql_offline
from console.fleet.queries import runbook_query
from console.runbooks import RunbookError, load_runbook, load_runbooks
from console.runbooks.model import ParamType, Rollback
from console.runbooks.params import ParameterError, bounds, resolve
from console.runbooks.plan import resolve_check
from tests.fleetdoc import line_of

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = {
    "pre-scale",
    "hold-batch",
    "degrade-llm-to-rules",
    "region-failover",
    "gpu-to-cpu-fallback",
    "reclaim-idle-gpus",
    "restore-normal",
    "gpu-node-xid",
}

GOOD = """\
name: sample
title: A sample
owners: [sre]
parameters:
  - {name: service, type: service}
  - {name: region, type: region}
steps:
  - name: scale it
    do: {action: scale, service: "{service}", region: "{region}", replicas: 3}
verification:
  - name: ready
    query: service_ready_replicas
    args: {service: "{service}", region: "{region}"}
    expect: {min: 3}
    within: 5m
"""


def _issues(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "sample.yaml"
    path.write_text(text)
    with pytest.raises(RunbookError) as e:
        load_runbook(path)
    return [str(i) for i in e.value.issues]


def test_the_shipped_runbooks_load_and_every_change_has_a_way_back():
    rbs = load_runbooks(ROOT / "runbooks")
    assert set(rbs) == SHIPPED
    for rb in rbs.values():
        for s in rb.steps:
            if s.do.action in (
                "scale",
                "set_config",
                "shift_traffic",
                "reclaim_idle",
                "stop_queues",
                "cordon",
                "silence",
            ):
                assert s.rollback is Rollback.RESTORE, (rb.name, s.name)
    assert rbs["degrade-llm-to-rules"].restore_with == "restore-normal"


def test_a_good_file_loads(tmp_path):
    path = tmp_path / "sample.yaml"
    path.write_text(GOOD)
    rb = load_runbook(path)
    assert rb.steps[0].rollback is Rollback.RESTORE and rb.steps[0].timeout == "60s"


@pytest.mark.parametrize(
    ("change", "at", "expected"),
    [
        # (old, new) in GOOD; the line the error names, found by searching the changed file for `at`; the rest.
        (("action: scale", "action: shell"), "action: shell", "steps[0].do:"),
        (("replicas: 3}", "}"), "do: {action", "steps[0].do.replicas: required field is missing"),
        (
            ('region: "{region}", replicas', 'region: "{zone}", replicas'), "{zone}",
            "steps[0].do.region: unknown parameter {zone}",
        ),
        (("query: service_ready_replicas", "query: rm_rf"), "- name: ready", "verification[0]: unknown query 'rm_rf'"),
        (
            ("    do: {action", "    rollback: none\n    do: {action"), "- name: scale it",
            "steps[0]: a scale step changes the fleet: it needs rollback: restore",
        ),
        (("name: sample", "name: other"), "name: other", "name: must match the file name 'sample'"),
        (("    within: 5m\n", ""), "verification:", "verification: verification 'ready' needs `within`"),
        (("type: region}", "type: zone}"), "type: zone}", "parameters[1].type: Input should be"),
        (("owners: [sre]", "owners: [sre]\ncolour: red"), "colour: red", "colour: unknown field"),
        (
            ("{name: region, type: region}", "{name: region, type: region}\n  - {name: n, type: integer, min: 9, max: 3}"),
            "min: 9", "parameters[2]: min, max: min 9 is above max 3: no value could pass",
        ),
    ],
)  # fmt: skip
def test_a_bad_file_names_file_line_and_field(tmp_path, change, at, expected):
    old, new = change
    assert old in GOOD
    text = GOOD.replace(old, new)
    line = next(n for n, ln in enumerate(text.splitlines(), start=1) if at in ln)
    issues = _issues(tmp_path, text)
    assert any(f"sample.yaml:{line}: {expected}" in i for i in issues), issues


def test_a_query_missing_its_args_is_refused(tmp_path):
    issues = _issues(
        tmp_path, GOOD.replace('args: {service: "{service}", region: "{region}"}', 'args: {service: "{service}"}')
    )
    assert any("query 'service_ready_replicas' needs args: region" in i for i in issues), issues


def test_runbook_list_and_show(tmp_path):
    r = CliRunner().invoke(main, ["runbook", "list", "--runbooks", str(ROOT / "runbooks")])
    assert r.exit_code == 0 and len(r.output.splitlines()) == len(SHIPPED)
    assert "region-failover       Fail a service over to another region  [service source target headroom?]" in r.output
    r = CliRunner().invoke(main, ["runbook", "show", "pre-scale", "--runbooks", str(ROOT / "runbooks")])
    assert r.exit_code == 0 and "replicas: integer [1..500]" in r.output and "rollback: restore" in r.output
    folder = tmp_path / "runbooks"
    shutil.copytree(ROOT / "runbooks", folder)
    broken = "name: pre-scale\ntitle: [unclosed\n"
    (folder / "pre-scale.yaml").write_text(broken)
    r = CliRunner().invoke(main, ["runbook", "list", "--runbooks", str(folder)])
    end = broken.count("\n") + 1  # the flow sequence is still open where the file ends
    assert r.exit_code == 1 and f"pre-scale.yaml:{end}: (syntax): YAML syntax error" in r.output
    # One broken file leaves the others usable: restore-normal above all, in the incident that broke it.
    assert "restore-normal" in r.output and "left out: pre-scale" in r.output
    r = CliRunner().invoke(main, ["runbook", "show", "restore-normal", "--runbooks", str(folder)])
    assert r.exit_code == 0 and "restore-normal" in r.output
    r = CliRunner().invoke(main, ["runbook", "show", "pre-scale", "--runbooks", str(folder)])
    assert r.exit_code == 1 and "error: runbook 'pre-scale' does not load (above)" in r.output
    with pytest.raises(RunbookError):
        load_runbooks(folder)  # what `gpuops lint` reads: strict


def test_parameters_are_typed_and_checked_against_the_catalog(catalog):
    rb = load_runbooks(ROOT / "runbooks")["pre-scale"]
    values = resolve(rb, catalog, {"service": "llm-chat", "region": "us-east", "replicas": "12"})
    assert values == {"service": "llm-chat", "region": "us-east", "replicas": 12}
    with pytest.raises(ParameterError) as e:
        resolve(rb, catalog, {"service": "llm-chatt", "replicas": "0", "colour": "red"})
    problems = e.value.problems
    assert problems[0] == "unknown parameter 'colour'; pre-scale takes event, service, region, replicas"
    assert any(p.startswith("service: no service 'llm-chatt' in the catalog; known: ") for p in problems)
    assert "replicas: 0 is outside 1..500" in problems
    assert len(problems) == 3, problems
    # A service left out means every service of the event given; with neither, a problem.
    with pytest.raises(ParameterError, match="service: give a service, or an event for every service of it"):
        resolve(rb, catalog, {"region": "us-east"})
    every = resolve(rb, catalog, {"event": "year-end-gala"})
    assert every["service"] == ("llm-chat", "llm-copywriting", "tts-dub", "asr-subtitles", "diffusion-covers")
    wait = rb.steps[1].do.check  # type: ignore[union-attr]
    assert 'service=~"llm-chat|llm-copywriting|tts-dub|asr-subtitles|diffusion-covers", region=~".*"' in (
        resolve_check(wait, every).promql
    )
    # A value headed for PromQL or a selector that is no plain name is refused, never escaped.
    xid = load_runbooks(ROOT / "runbooks")["gpu-node-xid"]
    with pytest.raises(ParameterError, match="not allowed in a label matcher"):
        resolve(xid, catalog, {"node": 'gpu"} or vector(1) #'})
    with pytest.raises(ParameterError, match="is not a duration"):
        resolve(xid, catalog, {"node": "gpu-1", "repair_window": "4 hours"})


def test_every_check_of_every_runbook_resolves_to_promql_that_parses(catalog):
    """Each precondition, wait and verification with example values, parsed by the real promtool."""
    examples = {
        ParamType.SERVICE: "llm-chat",
        ParamType.REGION: "us-east",
        ParamType.NAMESPACE: "team-research",
        ParamType.NODE: "gpu-node-1",
        ParamType.INTEGER: "3",
        ParamType.NUMBER: "0.5",
        ParamType.DURATION: "5m",
        ParamType.EVENT: "year-end-gala",
        ParamType.CLUSTER_QUEUE: "research-batch",
    }
    exprs = []
    for rb in load_runbooks(ROOT / "runbooks").values():
        given = {p.name: examples[p.type] for p in rb.parameters if p.default is None}
        values = resolve(rb, catalog, given)
        checks = [*rb.preconditions, *rb.verification]
        checks += [s.do.check for s in rb.steps if s.do.action in ("wait_for", "check")]
        for c in checks:
            promql = resolve_check(c, values).promql
            assert "{" + "service}" not in promql and all(b is None or isinstance(b, float) for b in bounds(c, values))
            exprs.append(Expression(rb.name, f"runbooks/{rb.name}.yaml", f"check {c.name!r}", c.query, promql))
    # As many as the runbook files hold, counted in them read plainly.
    plain = [yaml.safe_load(f.read_text()) for f in sorted((ROOT / "runbooks").glob("*.yaml"))]
    want = sum(
        len(d.get("preconditions") or []) + len(d.get("verification") or [])
        + sum(1 for st in d.get("steps") or [] if st["do"]["action"] in ("wait_for", "check"))
        for d in plain
    )  # fmt: skip
    assert len(exprs) == want and want > 0
    findings = check_promql_offline(exprs)
    assert [f.ok for f in findings] == [True], [f.output for f in findings]
    # All regions (".*") only where the query matches regions by regex.
    assert 'region=~".*"' in runbook_query("service_gpu_busy", service="llm-chat", region=".*")
    with pytest.raises(ValueError, match="not allowed"):
        runbook_query("service_weight", service="llm-chat", region=".*")
    # A list of names where the query matches by regex, each name checked; never a regex of the caller's.
    assert 'service=~"a|b"' in runbook_query("service_replicas_unready", service="a|b", region=".*")
    for bad in ('a|b"} or vector(1) #', "a|.+", "llm-chat|"):
        with pytest.raises(ValueError, match="not allowed"):
            runbook_query("service_replicas_unready", service=bad, region=".*")


def test_bad_parameters_are_refused_with_file_line_and_field_before_anything_runs(tmp_path):
    """Nothing is listening on the Prometheus and kubeconfig given: the refusal comes before any connection."""
    r = CliRunner().invoke(
        main,
        [
            "runbook", "run", "pre-scale", "--execute", "--runbooks", str(ROOT / "runbooks"),
            "--catalog", str(ROOT / "fleet.yaml"), "--prometheus", "http://127.0.0.1:9",
            'service=llm-chat"} or vector(1) #', "region=us-east", "replicas=ten", "colour=red",
        ],
    )  # fmt: skip
    assert r.exit_code == 2, r.output
    lines = r.output.splitlines()
    path = ROOT / "runbooks" / "pre-scale.yaml"
    # Each error at its line in the file, found by searching it: the parameters list for an unknown one,
    # else the parameter's own line.
    params = line_of(path, "parameters:")
    service, replicas = line_of(path, "{name: service", after="parameters:"), line_of(path, "{name: replicas")
    assert (
        f"{path}:{params}: parameters.colour: unknown parameter 'colour'; pre-scale takes event, service, region, replicas"
        in lines
    )
    assert any(
        x.startswith(f"{path}:{service}: parameters.service: no service 'llm-chat\"}} or vector(1) #'") for x in lines
    )
    assert f"{path}:{replicas}: parameters.replicas: 'ten' is not an integer" in lines
    assert lines[-1] == "refused: nothing was planned or changed"
