"""Incident drills end to end: `gpuops drill run` starts its own twin at 20x, a real Prometheus with the built
rules (each `for` divided by 20) and a real Alertmanager; each shipped scenario runs to a pass, and its
report's times agree with the journal's timestamps. A broken scenario (failover without the pre-scale that
gives the target headroom) is stopped by its abort condition, its rollbacks run, and the twin ends as it
started. The console's Drills view runs a scenario live.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from console.catalog import load_catalog
from console.codegen.mixin import build_rules
from console.drills.report import mmss
from console.runbooks.journal import Journal
from console.sources.kube import KubeObjects
from console.sources.twin import TwinControl
from tests.e2e.conftest import ROOT, Stack, start_stack

CATALOG = load_catalog(ROOT / "fleet.yaml")
SPEED = 20


def gpuops(*args: str, env: dict[str, str], timeout: float = 420) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "console.cli", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def times_from_journal(records: list[dict[str, Any]], drill: str) -> tuple[float, float]:
    """Time to detect and to mitigate, straight from the journal's simulated timestamps."""
    recs = [r for r in records if r["run"] == drill]
    fault = min(datetime.fromisoformat(r["sim"]) for r in recs if r["event"] == "fault_start")
    alert = next(datetime.fromisoformat(r["sim"]) for r in recs if r["event"] == "alert_firing" and r["detects"])
    steady = next(datetime.fromisoformat(r["sim"]) for r in recs if r["event"] == "steady_again")
    return (alert - fault).total_seconds(), (steady - fault).total_seconds()


def assert_passed_and_agrees_with_the_journal(
    r: subprocess.CompletedProcess[str], scenario: str, tmp_path: Path
) -> None:
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"PASSED: {scenario}" in r.stdout

    records = Journal(tmp_path / "drills.jsonl").records()  # verifies the hash chain too
    drill = next(rec["run"] for rec in records if rec["event"] == "drill_start")
    ttd, ttm = times_from_journal(records, drill)
    end = next(rec for rec in records if rec["event"] == "drill_end")
    assert end["status"] == "passed" and end["reasons"] == []
    assert abs(end["ttd_s"] - ttd) < 0.01 and abs(end["ttm_s"] - ttm) < 0.01
    assert 0 < ttd < ttm
    events = [rec["event"] for rec in records]
    # The order a drill keeps: steady before, faults, the alert, runbooks, steady again, rollbacks, steady after.
    for a, b in [("fault_start", "alert_firing"), ("alert_firing", "runbook_start"), ("runbook_end", "steady_again"),
                 ("steady_again", "fault_end"), ("fault_end", "rollbacks_done"), ("rollbacks_done", "drill_end")]:  # fmt: skip
        assert events.index(a) < events.index(b), (a, b, events)
    assert all(rec["holds"] for rec in records if rec["event"] == "probe" and rec["phase"] == "after")
    # Every runbook run of the drill was rolled back from the runbook journal.
    rb_records = Journal(tmp_path / "runbooks.jsonl").records()
    started = {rec["run_id"] for rec in records if rec["event"] == "runbook_start"}
    rolled = {rec["run"] for rec in rb_records if rec["event"] == "run_end" and rec["status"] == "rolled-back"}
    assert started and started <= rolled

    md = (tmp_path / "reports" / f"{drill}.md").read_text()
    assert f"| time to detect | {mmss(ttd)} |" in md and f"| time to mitigate | {mmss(ttm)} |" in md
    html = (tmp_path / "reports" / f"{drill}.html").read_text()
    assert f"<td>{mmss(ttd)}</td>" in html and "PASSED" in html
    # `drill report` renders the same from the journal.
    again = gpuops("drill", "report", drill, env=journals(tmp_path))
    assert again.returncode == 0 and again.stdout == md
    wall = (datetime.fromisoformat(end["wall"]) - datetime.fromisoformat(records[0]["wall"])).total_seconds()
    print(f"\n{scenario}: detect {mmss(ttd)}, mitigate {mmss(ttm)} simulated; drill wall {wall:.0f} s")


def journals(tmp_path: Path) -> dict[str, str]:
    return {"GPUOPS_JOURNAL": str(tmp_path / "runbooks.jsonl"), "GPUOPS_DRILL_JOURNAL": str(tmp_path / "drills.jsonl")}


def test_drill_run_starts_its_own_stack_and_the_xid_scenario_passes(tmp_path):
    # Its working folder under this test's own TMPDIR: the servers left running, if any, are this run's alone
    # (another run's drill on the same machine is not ours to count).
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    r = gpuops(
        "drill", "run", "gpu-xid-storm", "--speed", str(SPEED), "--report-dir", str(tmp_path / "reports"),
        env={**journals(tmp_path), "TMPDIR": str(tmp)},
    )  # fmt: skip
    assert "starting Prometheus" in r.stderr and "stopping prometheus, alertmanager, twin" in r.stderr
    assert_passed_and_agrees_with_the_journal(r, "gpu-xid-storm", tmp_path)
    left = subprocess.run(["pgrep", "-f", str(tmp)], capture_output=True, text=True).stdout.split()
    assert left == [], f"servers left running: {left}"
    assert list(tmp.iterdir()) == [], "the drill's working folder is removed"


# --- a broken scenario, against servers the test starts (so it can read the twin before and after) -------
@pytest.fixture(scope="module")
def dstack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp("drills")
    built = build_rules(CATALOG, workdir / "rules", speed=SPEED)
    yield from start_stack(
        workdir,
        "--catalog", str(ROOT / "fleet.yaml"), "--speed", str(SPEED), "--start", "2026-11-20T12:00:00",
        "--warmup", "3",
        rule_files=[str(built.rules), str(built.alerts)],
    )  # fmt: skip


def twin_state(stack: Stack) -> dict[str, Any]:
    """What a drill may change: deployments' replicas, HPAs' bounds, routing config maps, suspended Jobs,
    cordons, and the twin's active faults."""
    kube = KubeObjects(str(stack.kubeconfig), "twin")
    twin = TwinControl(stack.twin_url)
    try:
        now = twin.clock().sim
        return {
            "deployments": {d["metadata"]["name"]: d["spec"]["replicas"] for d in kube.list("deployment")},
            "hpas": {
                h["metadata"]["name"]: (h["spec"]["minReplicas"], h["spec"]["maxReplicas"]) for h in kube.list("hpa")
            },
            "configmaps": {c["metadata"]["name"]: c.get("data") for c in kube.list("configmap")},
            "jobs_suspended": sorted(j["metadata"]["name"] for j in kube.list("job") if j["spec"].get("suspend")),
            "cordoned": sorted(n["metadata"]["name"] for n in kube.list("node") if n["spec"].get("unschedulable")),
            "active_faults": [f.id for f in twin.faults() if f.start <= now < f.end],
        }
    finally:
        kube.close()
        twin.close()


def test_a_broken_scenario_is_stopped_by_its_abort_condition_and_the_twin_ends_as_it_started(dstack, tmp_path):
    scenarios = tmp_path / "scenarios"
    scenarios.mkdir()
    text = (ROOT / "runbooks" / "drills" / "region-outage.yaml").read_text()
    # Without the pre-scale, us-east has no headroom for llm-chat's traffic: the failover is refused.
    broken = re.sub(r"  - runbook: pre-scale\n(    .*\n)+?(?=  - runbook)", "", text)
    assert "pre-scale" not in broken.split("runbooks:")[1].split("abort:")[0]
    (scenarios / "region-outage.yaml").write_text(broken)
    before = twin_state(dstack)
    r = drill_on(dstack, "region-outage", tmp_path, "--scenarios", str(scenarios))
    assert r.returncode == 1, r.stdout + r.stderr
    assert "FAILED: region-outage" in r.stdout and "aborted: llm-chat fails a fifth of its requests" in r.stdout
    records = Journal(tmp_path / "drills.jsonl").records()
    events = [rec["event"] for rec in records]
    refused = next(rec for rec in records if rec["event"] == "runbook_end")
    assert refused["runbook"] == "region-failover" and refused["status"] == "refused"
    assert events.index("abort") < events.index("fault_end") < events.index("rollbacks_done")
    assert "steady_again" not in events
    assert twin_state(dstack) == before


def staging_kubeconfig(stack: Stack, tmp_path: Path) -> Path:
    """The twin's API server under a context named `staging`: to the drill, a cluster like any other."""
    from console.twin.kubeconfig import write_kubeconfig

    return write_kubeconfig(tmp_path / "staging.yaml", stack.twin_url, ["staging"])


POD_KILL = """
name: tts-pod-kill
title: Kill tts-dub's pods in ap-southeast on staging
safe_on: [staging]
steady_state:
  - name: tts-dub in ap-southeast answers
    query: service_error_ratio_over
    args: {service: tts-dub, region: ap-southeast, window: 15s}
    expect: {max: 0.02}
faults:
  - kind: pod_kill
    target: {service: tts-dub, region: ap-southeast}
detect: {alert: ServiceErrorsHigh, labels: {service: tts-dub, region: ap-southeast}}
runbooks:
  - runbook: pre-scale
    params: {service: tts-dub, region: ap-southeast, replicas: 5}
    when: {alert: ServiceErrorsHigh, labels: {service: tts-dub, region: ap-southeast}}
targets: {detect: 10m, mitigate: 1h}
timeout: 90s
"""


def test_on_a_cluster_only_kubernetes_faults_the_scenario_declares_safe_there_run(dstack, tmp_path):
    kc = staging_kubeconfig(dstack, tmp_path)
    base = ("--prometheus", dstack.prom_url, "--alertmanager", str(dstack.am_url), "--kubeconfig", str(kc))
    # xid_storm needs the twin's fault endpoint: refused on a cluster, before anything is injected.
    r = gpuops("drill", "run", "gpu-xid-storm", *base, "--context", "staging", env=journals(tmp_path), timeout=60)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "xid_storm can only be injected into the twin; context 'staging' is not one" in r.stderr
    assert not (tmp_path / "drills.jsonl").exists()
    # A read-only context in the catalog refuses any drill.
    r = gpuops("drill", "run", "gpu-xid-storm", *base[:4], "--kubeconfig", str(dstack.kubeconfig),
               "--context", "twin-apac", env=journals(tmp_path), timeout=60)  # fmt: skip
    assert r.returncode == 2 and "read-only" in r.stderr, r.stdout + r.stderr

    folder = tmp_path / "scenarios"
    folder.mkdir()
    (folder / "tts-pod-kill.yaml").write_text(POD_KILL.replace("safe_on: [staging]", "safe_on: [prod]"))
    r = gpuops("drill", "run", "tts-pod-kill", "--scenarios", str(folder), *base, "--context", "staging",
               env=journals(tmp_path), timeout=60)  # fmt: skip
    assert r.returncode == 2 and "does not declare its faults safe on 'staging'" in r.stderr, r.stderr

    # Declared safe on staging: the pods are deleted through the Kubernetes API, their Deployment brings
    # them back, and the drill runs to its end in wall time (a cluster's clock).
    (folder / "tts-pod-kill.yaml").write_text(POD_KILL)
    before = twin_state(dstack)
    kube = KubeObjects(str(kc), "staging")
    sel = "gpuops.io/service=tts-dub,gpuops.io/region=ap-southeast"
    pods_before = {p["metadata"]["name"] for p in kube.list("pod", label_selector=sel)}
    r = gpuops("drill", "run", "tts-pod-kill", "--scenarios", str(folder), *base, "--context", "staging",
               "--report-dir", str(tmp_path / "reports"), env=journals(tmp_path))  # fmt: skip
    records = Journal(tmp_path / "drills.jsonl").records()
    start = next(rec for rec in records if rec["event"] == "drill_start")
    assert start["context"] == "staging" and start["speed"] == 1
    fault = next(rec for rec in records if rec["event"] == "fault_start")
    assert fault["kind"] == "pod_kill" and "fault_id" not in fault
    assert any(rec["event"] == "rollbacks_done" for rec in records)
    pods_after = {p["metadata"]["name"] for p in kube.list("pod", label_selector=sel)}
    kube.close()
    assert len(pods_after) == len(pods_before) == 4 and not pods_after & pods_before  # all replaced
    assert twin_state(dstack) == before, r.stdout + r.stderr


def drill_on(stack: Stack, scenario: str, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return gpuops(
        "drill", "run", scenario, "--prometheus", stack.prom_url, "--alertmanager", str(stack.am_url),
        "--kubeconfig", str(stack.kubeconfig), "--context", "twin", "--report-dir", str(tmp_path / "reports"),
        *extra, env=journals(tmp_path),
    )  # fmt: skip


# In this order on one running twin: each moves the clock forward to its own time of day, never back.
@pytest.mark.parametrize("scenario", ["region-outage", "llm-event-spike", "idle-batch-at-peak"])
def test_each_shipped_scenario_passes_on_a_running_twin_and_leaves_it_as_it_was(dstack, scenario, tmp_path):
    before = twin_state(dstack)
    r = drill_on(dstack, scenario, tmp_path)
    assert_passed_and_agrees_with_the_journal(r, scenario, tmp_path)
    after = twin_state(dstack)
    assert after == before


# --- the console ----------------------------------------------------------------------------------------
@asynccontextmanager
async def drill_started_in_console(stack: Stack, tmp_path: Path, scenario: str) -> AsyncIterator[tuple[Any, Any]]:
    """The console on `stack`: view 6, the scenario selected, Enter, the confirmation read and accepted.
    Yields (app, pilot) while the drill runs."""
    from textual.widgets import Static

    from console.tui.app import GpuopsApp
    from console.tui.drills import ConfirmDrill
    from console.wiring import connect
    from tests.e2e.console_helpers import until

    conn = connect(
        CATALOG, stack.prom_url, str(stack.kubeconfig), "twin", stack.am_url,
        runbooks_dir=ROOT / "runbooks", journal=tmp_path / "runbooks.jsonl", drill_journal=tmp_path / "drills.jsonl",
    )  # fmt: skip
    app = GpuopsApp(conn, interval=1.0, operator="pilot")
    try:
        async with app.run_test(size=(160, 50)) as pilot:
            await pilot.press("6")
            table = app.query_one("#table-drills")
            await until(pilot, lambda: table.get_row_index(scenario) >= 0, what="the drills table")
            table.move_cursor(row=table.get_row_index(scenario))
            await pilot.press("enter")
            confirm = await until(pilot, lambda: isinstance(app.screen, ConfirmDrill) and app.screen, what="confirm")
            kinds = {f.kind for f in conn.drills()[scenario].faults}
            assert all(k in str(confirm.query_one("Static", Static).render()) for k in kinds)
            await pilot.click("#drill-start")
            yield app, pilot
    finally:
        conn.close()


async def test_console_drills_view_runs_a_scenario_with_a_live_timeline(dstack, tmp_path):
    from textual.widgets import Static

    from tests.e2e.console_helpers import until

    before = twin_state(dstack)
    async with drill_started_in_console(dstack, tmp_path, "gpu-xid-storm") as (app, pilot):
        timeline = app.query_one("#drill-timeline", Static)
        await until(pilot, lambda: "fault_start" in str(timeline.render()), timeout=120, what="the fault")
        await until(pilot, lambda: "alert_firing" in str(timeline.render()), timeout=120, what="the alert")
        await until(pilot, lambda: "PASSED" in str(timeline.render()), timeout=300, what="the drill to pass")
        shown = str(timeline.render())
        for event in ("runbook_start", "runbook_end", "steady_again", "fault_end", "rollbacks_done"):
            assert event in shown, shown
        # The table's last result comes from the journal.
        table = app.query_one("#table-drills")
        await until(pilot, lambda: "passed" in str(table.get_cell("gpu-xid-storm", "last")), what="last result")
    after = twin_state(dstack)
    assert after["cordoned"] == before["cordoned"] == [] and after["active_faults"] == []
    assert after["configmaps"] == before["configmaps"]


async def test_console_x_stops_a_running_drill_and_its_rollbacks_run(dstack, tmp_path):
    from textual.widgets import Static

    from tests.e2e.console_helpers import until

    before = twin_state(dstack)
    async with drill_started_in_console(dstack, tmp_path, "idle-batch-at-peak") as (app, pilot):
        timeline = app.query_one("#drill-timeline", Static)
        await until(pilot, lambda: "fault_start" in str(timeline.render()), timeout=120, what="the fault")
        assert twin_state(dstack)["active_faults"], "the job_stall fault is on"
        await pilot.press("x")
        await until(pilot, lambda: "FAILED" in str(timeline.render()), timeout=120, what="the drill to stop")
        shown = str(timeline.render())
        assert "stopped by the operator" in shown and "rollbacks_done" in shown, shown
    assert twin_state(dstack) == before
