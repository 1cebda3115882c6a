"""Incident drills end to end: `gpuops drill run` starts its own twin at 20x, a real Prometheus with the built
rules (each `for` divided by 20) and a real Alertmanager, and the xid scenario runs to a pass; on servers the
test starts, shipped scenarios pass and leave the twin as it was, and their reports' times agree with the
journal's timestamps; on a context that is not the twin only the Kubernetes faults a scenario declares safe
there run. (The broken scenario, idle-batch-at-peak and the console: test_drills_console_e2e.py, so that the
two halves run side by side.)
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from console.runbooks.journal import Journal
from console.sources.kube import KubeObjects
from console.sources.twin import TwinControl
from tests.e2e.conftest import Stack
from tests.e2e.drill_helpers import (
    SPEED,
    assert_passed_and_agrees_with_the_journal,
    drill_on,
    drill_stack,
    gpuops,
    journals,
    twin_state,
)
from tests.fake_grafana import FakeGrafana


def test_drill_run_starts_its_own_stack_and_the_xid_scenario_passes(tmp_path):
    # Its working folder under this test's own TMPDIR: the servers left running, if any, are this run's alone
    # (another run's drill on the same machine is not ours to count).
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    # A Grafana is configured (GRAFANA_URL, GRAFANA_TOKEN): the drill and the runbook it runs annotate it.
    with FakeGrafana({"drill-token": "Editor"}) as grafana:
        t0 = time.time() * 1000
        r = gpuops(
            "drill", "run", "gpu-xid-storm", "--speed", str(SPEED), "--report-dir", str(tmp_path / "reports"),
            env={**journals(tmp_path), "TMPDIR": str(tmp), "GRAFANA_URL": grafana.url, "GRAFANA_TOKEN": "drill-token"},
        )  # fmt: skip
        t1 = time.time() * 1000
    assert "starting Prometheus" in r.stderr and "stopping prometheus, alertmanager, relay, twin" in r.stderr
    assert_passed_and_agrees_with_the_journal(r, "gpu-xid-storm", tmp_path)
    notes = list(grafana.state.annotations.values())
    drill = [a for a in notes if "drill" in a["tags"]]
    assert len(drill) == 1, notes
    assert drill[0]["tags"] == ["gpuops", "drill", "gpu-xid-storm", "context:twin", "passed"]
    assert t0 <= drill[0]["time"] <= drill[0]["timeEnd"] <= t1
    assert drill[0]["text"].startswith("drill gpu-xid-storm (") and drill[0]["text"].endswith("— passed")
    runs = [a for a in notes if "runbook" in a["tags"]]
    ran = [rec["runbook"] for rec in Journal(tmp_path / "runbooks.jsonl").records() if rec["event"] == "run_start"]
    assert sorted(a["tags"][2] for a in runs) == sorted(ran) and ran, (runs, ran)
    for a in runs:  # inside the drill's span, each closed with its outcome
        assert drill[0]["time"] <= a["time"] <= a["timeEnd"] <= drill[0]["timeEnd"]
        assert a["tags"][-1] in ("succeeded", "failed", "rolled-back", "interrupted"), a
        assert f"— {a['tags'][-1]}" in a["text"] and a["tags"][:4] == [
            "gpuops",
            "runbook",
            a["tags"][2],
            "context:twin",
        ]
    left = subprocess.run(["pgrep", "-f", str(tmp)], capture_output=True, text=True).stdout.split()
    assert left == [], f"servers left running: {left}"
    assert list(tmp.iterdir()) == [], "the drill's working folder is removed"


@pytest.fixture(scope="module")
def dstack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    yield from drill_stack(tmp_path_factory)


def staging_kubeconfig(stack: Stack, tmp_path: Path) -> Path:
    """The twin's API server under a context named `staging`: to the drill, a cluster like any other."""
    from console.twin.kubeconfig import write_kubeconfig

    return write_kubeconfig(tmp_path / "staging.yaml", {"staging": stack.twin_url})


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


def test_a_drill_refuses_to_move_the_clock_of_a_twin_it_did_not_start(dstack, tmp_path):
    twin = TwinControl(dstack.twin_url)
    try:
        before = twin.clock()
        r = drill_on(dstack, "llm-event-spike", tmp_path)  # its clock: 2026-12-31, the twin's: 2026-11-20
        after = twin.clock()
    finally:
        twin.close()
    assert r.returncode == 2, r.stdout + r.stderr
    assert "refused: scenario 'llm-event-spike' runs at 2026-12-31 13:00 UTC" in r.stderr
    assert "pass --move-clock" in r.stderr and "nothing was injected" in r.stderr
    # Moved only by its own running (20x) over the seconds the command took, not by a month.
    assert (after.sim - before.sim).total_seconds() < 3600
    assert not Journal(tmp_path / "drills.jsonl").records(), "a refused drill journals nothing"


# In this order on one running twin: each moves the clock forward to its own time of day, never back.
@pytest.mark.parametrize("scenario", ["region-outage", "llm-event-spike"])
def test_each_shipped_scenario_passes_on_a_running_twin_and_leaves_it_as_it_was(dstack, scenario, tmp_path):
    before = twin_state(dstack)
    r = drill_on(dstack, scenario, tmp_path, "--move-clock")
    assert_passed_and_agrees_with_the_journal(r, scenario, tmp_path)
    after = twin_state(dstack)
    assert after == before
