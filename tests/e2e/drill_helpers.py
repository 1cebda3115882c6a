"""What the drill e2e modules share: `gpuops` as a subprocess, the journals' paths, what a passed drill
must agree with in its journal, a stack of servers the test owns, and the twin state a drill may change."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
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
    r: subprocess.CompletedProcess[str], scenario: str, tmp_path: Path, *, settles_after: bool = False
) -> None:
    """`settles_after`: the steady state may break for a while after the rollbacks (they take back capacity while
    the load is still up) as long as each probe holds at its last reading; otherwise every reading holds."""
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
    after = [rec for rec in records if rec["event"] == "probe" and rec["phase"] == "after"]
    if settles_after:
        assert all(next(x for x in reversed(after) if x["name"] == rec["name"])["holds"] for rec in after)
    else:
        assert all(rec["holds"] for rec in after)
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


def drill_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Servers the test starts itself, so that it can read the twin before and after a drill: the twin at
    20x, Prometheus with the rules built for that speed (each `for` divided by 20), Alertmanager."""
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
    batch queues' stop policies, cordons, and the twin's active faults."""
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
            # A queued Job's suspension is Kueue's to decide (it comes and goes as batch is admitted); whether
            # a queue admits at all is what a drill could change.
            "jobs_suspended": sorted(
                j["metadata"]["name"]
                for j in kube.list("job")
                if j["spec"].get("suspend") and "kueue.x-k8s.io/queue-name" not in j["metadata"].get("labels", {})
            ),
            "queues_stopped": {q["metadata"]["name"]: q["spec"].get("stopPolicy") for q in kube.list("clusterqueue")},
            "cordoned": sorted(n["metadata"]["name"] for n in kube.list("node") if n["spec"].get("unschedulable")),
            "active_faults": [f.id for f in twin.faults() if f.start <= now < f.end],
        }
    finally:
        kube.close()
        twin.close()


def drill_on(stack: Stack, scenario: str, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return gpuops(
        "drill", "run", scenario, "--prometheus", stack.prom_url, "--alertmanager", str(stack.am_url),
        "--kubeconfig", str(stack.kubeconfig), "--context", "twin", "--report-dir", str(tmp_path / "reports"),
        *extra, env=journals(tmp_path),
    )  # fmt: skip
