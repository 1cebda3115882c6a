"""The runbook engine against the twin (through the official Kubernetes client), a real Prometheus with the
built rules, and a real Alertmanager: each of the five event runbooks changes the twin, its effect shows in
Prometheus, its verification passes, and its rollback restores the objects exactly. Then the faults: API
errors retried, a permanent failure rolled back, a denied access review, a held lease, a SIGKILLed run.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from console.catalog import load_catalog
from console.cli import main
from console.runbooks import load_runbooks
from console.runbooks.engine import Outcome, Refused, Runner
from console.runbooks.journal import Journal, find_run
from console.runbooks.params import resolve
from console.runbooks.plan import Plan, make_plan
from console.sources.alertmanager import AlertmanagerSource
from console.sources.kube import KubeObjects
from console.wiring import runbook_sources
from tests.e2e.conftest import ROOT, Stack, built_rules, start_stack, wait_for
from tests.fleetdoc import named

CATALOG = load_catalog(ROOT / "fleet.yaml")
RUNBOOKS = load_runbooks(ROOT / "runbooks")
DENIED = "patch deployments/scale team-creative"  # the twin refuses this identity scaling team-creative


@pytest.fixture(scope="module")
def rstack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp("runbooks")
    rules = built_rules(workdir, CATALOG)
    yield from start_stack(
        workdir, "--catalog", str(ROOT / "fleet.yaml"), "--warmup", "3", "--deny", DENIED, rule_files=rules
    )


@pytest.fixture(scope="module")
def kube(rstack: Stack) -> Iterator[KubeObjects]:
    k = KubeObjects(str(rstack.kubeconfig), "twin")
    yield k
    k.close()


@pytest.fixture(scope="module")
def journal(rstack: Stack) -> Journal:
    return Journal(rstack.workdir / "journal.jsonl")


def prom(stack: Stack, promql: str) -> float | None:
    r = httpx.get(f"{stack.prom_url}/api/v1/query", params={"query": promql}, timeout=5).json()
    result = r["data"]["result"]
    return float(result[0]["value"][1]) if result else None


def plan_for(stack: Stack, name: str, **given: str) -> Plan:
    rb = RUNBOOKS[name]
    src = runbook_sources(CATALOG, stack.prom_url, str(stack.kubeconfig), "twin", stack.am_url)
    try:
        # Right after start the recorded series are still filling in: wait for a plan without problems.
        return wait_for(
            lambda: (p := make_plan(rb, resolve(rb, CATALOG, given), src)) and not p.problems and p,
            timeout=90,
            every=2,
            what=f"a clean plan for {name}",
        )
    finally:
        src.close()


def run(stack: Stack, journal: Journal, plan: Plan) -> Outcome:
    src = runbook_sources(CATALOG, stack.prom_url, str(stack.kubeconfig), "twin", stack.am_url)
    try:
        return Runner(src, journal, operator="e2e", poll_s=0.5).execute(plan)
    finally:
        src.close()


def rollback_cli(stack: Stack, journal: Journal, run_id: str) -> str:
    r = CliRunner().invoke(
        main,
        [
            "runbook", "rollback", run_id, "--catalog", str(ROOT / "fleet.yaml"), "--journal", str(journal.path),
            "--prometheus", stack.prom_url, "--alertmanager", str(stack.am_url),
            "--kubeconfig", str(stack.kubeconfig), "--context", "twin",
        ],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    assert f"run {run_id}: rolled-back" in r.output
    return r.output


def state(kube: KubeObjects, *objects: tuple[str, str, str]) -> dict[tuple[str, str, str], Any]:
    """What a runbook may change on these objects: their spec and data, not their status."""
    out = {}
    for kind, ns, name in objects:
        o = kube.get(kind, ns or None, name)
        out[(kind, ns, name)] = copy.deepcopy({k: o.get(k) for k in ("spec", "data")})
    return out


def test_runbook_plan_as_a_command_prints_each_change_and_its_dry_run_and_changes_nothing(rstack, kube):
    svc = named("services", "tts-dub")
    objs = [("deployment", "team-media", "tts-dub-eu-west"), ("hpa", "team-media", "tts-dub-eu-west")]
    before = state(kube, *objs)
    base = svc["replicas"]["eu-west"]
    assert before[objs[0]]["spec"]["replicas"] == base
    argv = [
        sys.executable, "-m", "console.cli", "runbook", "plan", "pre-scale", "service=tts-dub", "region=eu-west",
        f"replicas={base + 3}", "--catalog", str(ROOT / "fleet.yaml"), "--runbooks", str(ROOT / "runbooks"),
        "--prometheus", rstack.prom_url, "--kubeconfig", str(rstack.kubeconfig), "--context", "twin",
    ]  # fmt: skip

    def planned() -> subprocess.CompletedProcess[str] | None:
        # Right after start the recorded series are still filling in: a precondition reads nothing yet.
        p = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
        return p if p.returncode == 0 else None

    p = wait_for(planned, timeout=60, every=2, what="a plan without problems")
    lines = p.stdout.splitlines()
    assert lines[0].startswith("pre-scale: ") and "context: twin" in lines
    assert f"     deployment team-media/tts-dub-eu-west  spec.replicas: {base} -> {base + 3}" in lines, p.stdout
    hpa = f"     hpa team-media/tts-dub-eu-west  spec.minReplicas: {base} -> {base + 3}"
    assert any(ln.startswith(hpa) for ln in lines), p.stdout
    assert any(ln.strip().startswith("server-side dry run: ") and "objects accepted" in ln for ln in lines)
    assert "leases: team-media/" in p.stdout
    assert state(kube, *objs) == before, "a plan changes nothing"


def test_pre_scale_raises_replicas_and_the_hpa_floor_and_rollback_restores_them(rstack, kube, journal):
    objs = [("deployment", "team-llm", "llm-copywriting-us-east"), ("hpa", "team-llm", "llm-copywriting-us-east")]
    before = state(kube, *objs)
    base = before[objs[0]]["spec"]["replicas"]
    plan = plan_for(rstack, "pre-scale", service="llm-copywriting", region="us-east", replicas=str(base + 2))
    assert [(str(c.target), c.field, c.before, c.after) for c in plan.changes] == [
        ("deployment team-llm/llm-copywriting-us-east", "spec.replicas", base, base + 2),
        ("hpa team-llm/llm-copywriting-us-east", "spec.minReplicas", base, base + 2),
    ]
    out = run(rstack, journal, plan)
    assert out.status == "succeeded", out.detail
    after = state(kube, *objs)
    assert after[objs[0]]["spec"]["replicas"] == base + 2 and after[objs[1]]["spec"]["minReplicas"] == base + 2
    ready = 'gpuops:service_region:replicas_available:sum{service="llm-copywriting", region="us-east"}'
    assert prom(rstack, ready) == base + 2  # the verification waited for it; Prometheus shows it
    rollback_cli(rstack, journal, out.run_id)
    assert state(kube, *objs) == before
    wait_for(lambda: prom(rstack, ready) == base, timeout=30, what="the ready replicas back at the baseline")


def test_degrade_llm_to_rules_lowers_its_gpu_load_and_rollback_restores_normal(rstack, kube, journal):
    cm = ("configmap", "team-llm", "llm-chat-routing")
    before = state(kube, cm)
    busy = 'avg(gpuops:service_region:gpu_busy:avg{service="llm-chat"})'
    busy_before = wait_for(lambda: prom(rstack, busy), timeout=60, what="llm-chat GPU load")
    assert busy_before > 20
    out = run(rstack, journal, plan_for(rstack, "degrade-llm-to-rules", service="llm-chat", settle="2m"))
    assert out.status == "succeeded", out.detail
    assert kube.get(*cm)["data"]["mode"] == "rules"
    busy_after = prom(rstack, busy)
    assert busy_after is not None and busy_after < 40 and busy_after < 0.5 * busy_before
    silences = httpx.get(f"{rstack.am_url}/api/v2/silences", timeout=5).json()
    ours = [s for s in silences if out.run_id in s["createdBy"]]
    assert len(ours) == 1 and ours[0]["status"]["state"] == "active"
    rollback_cli(rstack, journal, out.run_id)
    assert state(kube, cm) == before
    silence = httpx.get(f"{rstack.am_url}/api/v2/silence/{ours[0]['id']}", timeout=5).json()
    assert silence["status"]["state"] == "expired"
    # Back in normal mode the load returns to what it was (the diurnal curve moves it a little meanwhile).
    wait_for(lambda: (prom(rstack, busy) or 0) > 0.75 * busy_before, timeout=30, what="the GPU load back up")


def test_restore_normal_ends_the_silence_degrade_left_and_a_persons_stays(rstack, kube, journal):
    cm = ("configmap", "team-llm", "llm-chat-routing")
    want = {"service": "llm-chat", "alertname": "ServiceDegraded"}
    am = AlertmanagerSource(str(rstack.am_url))

    def silence(sid: str) -> dict[str, Any]:
        return httpx.get(f"{rstack.am_url}/api/v2/silence/{sid}", timeout=5).json()

    def made_by(run_id: str) -> list[dict[str, Any]]:
        every = httpx.get(f"{rstack.am_url}/api/v2/silences", timeout=5).json()
        return [s for s in every if run_id in s["createdBy"] and s["status"]["state"] == "active"]

    person = am.create_silence(want, timedelta(hours=1), "alice", "looking into llm-chat")
    try:
        degrade = run(rstack, journal, plan_for(rstack, "degrade-llm-to-rules", service="llm-chat", settle="2m"))
        assert degrade.status == "succeeded", degrade.detail
        (ours,) = made_by(degrade.run_id)
        restore = run(rstack, journal, plan_for(rstack, "restore-normal", service="llm-chat"))
        assert restore.status == "succeeded", restore.detail
        assert kube.get(*cm)["data"]["mode"] == "normal"
        assert silence(ours["id"])["status"]["state"] == "expired"
        assert silence(person)["status"]["state"] == "active"  # a person's silence is theirs to end
        # Rolling the restore back is the degraded state again: rules, and the silence until its old end.
        rollback_cli(rstack, journal, restore.run_id)
        assert kube.get(*cm)["data"]["mode"] == "rules"
        (again,) = made_by(restore.run_id)
        matchers = {m["name"]: m["value"] for m in again["matchers"]}
        assert matchers == want and again["comment"] == ours["comment"]
        ends = (datetime.fromisoformat(again["endsAt"].replace("Z", "+00:00")),
                datetime.fromisoformat(ours["endsAt"].replace("Z", "+00:00")))  # fmt: skip
        assert abs((ends[0] - ends[1]).total_seconds()) < 5
        # The degrade's own rollback copes with its silence already ended; a second restore ends the new one.
        rollback_cli(rstack, journal, degrade.run_id)
        assert kube.get(*cm)["data"]["mode"] == "normal"
        second = run(rstack, journal, plan_for(rstack, "restore-normal", service="llm-chat"))
        assert second.status == "succeeded", second.detail
        assert silence(again["id"])["status"]["state"] == "expired"
    finally:
        am.expire_silence(person)
        am.close()


def test_region_failover_drains_the_source_and_rollback_gives_the_weights_back(rstack, kube, journal):
    cm = ("configmap", "team-llm", "llm-copywriting-routing")
    before = state(kube, cm)
    src_rps = 'gpuops:service_region:requests:rate1m{service="llm-copywriting", region="ap-southeast"}'
    # A full minute of samples first: before that rate1m reads low.
    wait_for(lambda: (prom(rstack, src_rps) or 0) > 1, timeout=90, every=2, what="the source serving > 1 rps")
    plan = plan_for(
        rstack, "region-failover", service="llm-copywriting", source="ap-southeast", target="us-east", headroom="0.05"
    )
    out = run(rstack, journal, plan)
    assert out.status == "succeeded", out.detail
    data = kube.get(*cm)["data"]
    assert float(data["weight.ap-southeast"]) == 0
    assert (prom(rstack, src_rps) or 0) < 1  # the source region's request rate fell
    rollback_cli(rstack, journal, out.run_id)
    assert state(kube, cm) == before  # the weights, string for string


def test_failover_to_a_region_without_headroom_is_refused_before_anything_changes(rstack, kube, journal):
    cm = ("configmap", "team-media", "tts-dub-routing")
    before = state(kube, cm)
    # The headroom check reads rate1m: until Prometheus holds a full minute of scrapes it reads low and any
    # target looks roomy. Wait for that minute (1 s scrapes) and for the source to be serving.
    wait_for(
        lambda: (prom(rstack, 'count_over_time(up{job="twin"}[1m])') or 0) >= 55, timeout=120, every=2,
        what="a full minute of scrapes",
    )  # fmt: skip
    src_rps = 'gpuops:service_region:requests:rate1m{service="tts-dub", region="us-east"}'
    wait_for(lambda: (prom(rstack, src_rps) or 0) > 1, timeout=60, every=2, what="the source serving > 1 rps")
    rb = RUNBOOKS["region-failover"]
    src = runbook_sources(CATALOG, rstack.prom_url, str(rstack.kubeconfig), "twin", rstack.am_url)
    try:
        plan = make_plan(
            rb, resolve(rb, CATALOG, {"service": "tts-dub", "source": "us-east", "target": "eu-west"}), src
        )
        assert any("the target can carry all the traffic with headroom" in p for p in plan.problems), plan.problems
        with pytest.raises(Refused, match="the plan has problems"):
            Runner(src, journal).execute(plan)
    finally:
        src.close()
    assert state(kube, cm) == before


def test_gpu_to_cpu_fallback_serves_on_cpu_and_rollback_restores_gpu(rstack, kube, journal):
    svc = CATALOG.service("asr-subtitles")
    objs = [("configmap", "team-media", "asr-subtitles-routing")]
    objs += [("deployment", "team-media", f"asr-subtitles-cpu-{r}") for r in svc.regions]
    before = state(kube, *objs)
    out = run(rstack, journal, plan_for(rstack, "gpu-to-cpu-fallback", service="asr-subtitles", cpu_replicas="20"))
    assert out.status == "succeeded", out.detail
    assert kube.get(*objs[0])["data"]["mode"] == "cpu"
    assert all(kube.get(*o)["spec"]["replicas"] == 20 for o in objs[1:])
    assert prom(rstack, 'max(gpuops:service_region:mode:code{service="asr-subtitles"})') == 2
    assert prom(rstack, 'sum(gpuops:service_region:gpu_busy:avg{service="asr-subtitles"})') == 0
    rollback_cli(rstack, journal, out.run_id)
    assert state(kube, *objs) == before


def test_reclaim_idle_gpus_suspends_idle_batch_work_and_rollback_resumes_it(rstack, kube, journal):
    job = ("job", "team-research-batch", "eval-sweep")
    before = state(kube, job)
    plan = plan_for(rstack, "reclaim-idle-gpus", namespace="team-research-batch", idle_for="20s", gpus="4")
    assert [(str(c.target), c.field, c.after) for c in plan.changes] == [
        ("job team-research-batch/eval-sweep", "spec.suspend", True)
    ]
    # Busy training in a non-critical namespace is never picked: only work whose every GPU is idle.
    assert "pretrain-7b" not in plan.steps[0].note and "eval-sweep" in plan.steps[0].note
    out = run(rstack, journal, plan)
    assert out.status == "succeeded", out.detail
    assert kube.list("pod", label_selector="gpuops.io/job=eval-sweep") == []
    # (The namespace's queued batch is Kueue's, and runs on: only the Job's own pods are counted.)
    held = 'count(DCGM_FI_DEV_GPU_UTIL{namespace="team-research-batch", pod=~"eval-sweep-.+"}) or vector(0)'
    assert prom(rstack, held) == 0  # its GPUs hold no pod any more
    rollback_cli(rstack, journal, out.run_id)
    assert state(kube, job) == before
    pods = wait_for(lambda: kube.list("pod", label_selector="gpuops.io/job=eval-sweep"), what="the job's pods back")
    assert sorted(p["metadata"]["name"] for p in pods) == ["eval-sweep-0", "eval-sweep-1", "eval-sweep-2"]


# --- faults ----------------------------------------------------------------------------------------------
def api_fault(stack: Stack, **spec: Any) -> None:
    httpx.post(f"{stack.twin_url}/twin/api-faults", json=spec, timeout=5).raise_for_status()


def test_a_409_and_a_500_mid_run_are_retried(rstack, kube, journal):
    cm = ("configmap", "team-llm", "llm-copywriting-routing")
    before = state(kube, cm)
    plan = plan_for(rstack, "degrade-llm-to-rules", service="llm-copywriting", settle="2m")
    api_fault(rstack, method="PATCH", path="configmaps/llm-copywriting-routing", code=409, count=1)
    api_fault(rstack, method="PATCH", path="configmaps/llm-copywriting-routing", code=500, count=1)
    try:
        out = run(rstack, journal, plan)
    finally:
        httpx.delete(f"{rstack.twin_url}/twin/api-faults", timeout=5)
    assert out.status == "succeeded", out.detail
    retries = [r["error"] for r in find_run(journal.records(), out.run_id).records if r["event"] == "retry"]  # type: ignore[union-attr]
    assert [e.split(":")[0] for e in retries] == ["409 Conflict", "500 InternalError"]
    assert kube.get(*cm)["data"]["mode"] == "rules"
    rollback_cli(rstack, journal, out.run_id)
    assert state(kube, cm) == before


def test_a_permanent_failure_rolls_back_what_was_done(rstack, kube, journal):
    objs = [("deployment", "team-media", "tts-dub-us-east"), ("hpa", "team-media", "tts-dub-us-east")]
    before = state(kube, *objs)
    base = before[objs[0]]["spec"]["replicas"]
    plan = plan_for(rstack, "pre-scale", service="tts-dub", region="us-east", replicas=str(base + 2))
    api_fault(rstack, method="PATCH", path="horizontalpodautoscalers", code=500, count=-1)
    try:
        out = run(rstack, journal, plan)
    finally:
        httpx.delete(f"{rstack.twin_url}/twin/api-faults", timeout=5)
    assert out.status == "rolled-back" and "step 1" in out.detail and "500" in out.detail
    events = [r["event"] for r in find_run(journal.records(), out.run_id).records]  # type: ignore[union-attr]
    # The deployment was scaled, the HPA refused four times, and the deployment was put back.
    assert events.count("change_done") == 1 and events.count("retry") == 3 and "restore_done" in events
    assert state(kube, *objs) == before


def test_a_denied_access_review_refuses_before_anything_changes(rstack, kube, journal):
    dep = ("deployment", "team-creative", "diffusion-covers-us-east")
    before = state(kube, dep)
    rb = RUNBOOKS["pre-scale"]
    n = str(before[dep]["spec"]["replicas"] + 1)
    values = resolve(rb, CATALOG, {"service": "diffusion-covers", "region": "us-east", "replicas": n})
    src = runbook_sources(CATALOG, rstack.prom_url, str(rstack.kubeconfig), "twin", rstack.am_url)
    runs_before = len(journal.records())
    try:
        plan = make_plan(rb, values, src)
        with pytest.raises(Refused, match=r"denies this identity: patch deployment team-creative/diffusion-covers"):
            Runner(src, journal).execute(plan)
    finally:
        src.close()
    assert state(kube, dep) == before and len(journal.records()) == runs_before


HOLD = """\
name: hold-llm-chat
title: Switch llm-chat to rules and wait for something that never comes
owners: [sre]
steps:
  - name: switch to rules
    do: {action: set_config, service: llm-chat, key: mode, value: rules}
  - name: wait forever
    do:
      action: wait_for
      check: {name: never, query: service_rps, args: {service: llm-chat, region: ".*"}, expect: {max: -1}}
    timeout: 10m
"""


def test_a_second_run_on_a_held_target_is_refused_and_a_killed_run_rolls_back(rstack, kube, journal, tmp_path):
    folder = tmp_path / "runbooks"
    shutil.copytree(ROOT / "runbooks", folder)
    (folder / "hold-llm-chat.yaml").write_text(HOLD)
    cm = ("configmap", "team-llm", "llm-chat-routing")
    before = state(kube, cm)
    argv = [
        sys.executable, "-m", "console.cli", "runbook", "run", "hold-llm-chat", "--execute",
        "--catalog", str(ROOT / "fleet.yaml"), "--runbooks", str(folder), "--journal", str(journal.path),
        "--prometheus", rstack.prom_url, "--kubeconfig", str(rstack.kubeconfig), "--context", "twin",
        "--operator", "first",
    ]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**os.environ})
    try:
        run_id = wait_for(
            lambda: next(
                (r["run"] for r in journal.records() if r["event"] == "change_done" and "hold-llm-chat" in r["run"]),
                None,
            ),
            timeout=60,
            what="the first run to make its change",
        )
        assert kube.get(*cm)["data"]["mode"] == "rules"
        # A second operator, the same service: refused, and told who holds it.
        with pytest.raises(Refused, match=rf"service/llm-chat is held by first@\S+ run {run_id}"):
            run(rstack, journal, plan_for(rstack, "restore-normal", service="llm-chat"))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
        assert proc.stdout is not None
        proc.stdout.close()
    run_ = find_run(journal.records(), run_id)
    assert run_ is not None and run_.status == "interrupted"
    r = CliRunner().invoke(main, ["runbook", "journal", "--journal", str(journal.path)])
    assert f"{run_id}  interrupted" in r.output
    assert kube.get(*cm)["data"]["mode"] == "rules"  # the kill left the change in place
    rollback_cli(rstack, journal, run_id)  # takes over the dead run's own lease at once
    assert state(kube, cm) == before
    assert find_run(journal.records(), run_id).status == "rolled-back"  # type: ignore[union-attr]
    leases = kube.list("lease", label_selector="gpuops.io/lock=runbook")
    assert leases == [], json.dumps(leases)[:300]


def test_a_pre_scale_beyond_the_quota_is_refused_in_the_plan_with_the_quota_figures(rstack, kube):
    dep_obj = ("deployment", "team-media", "asr-subtitles-ap-southeast")
    before = state(kube, dep_obj, ("hpa", "team-media", "asr-subtitles-ap-southeast"))
    kubectl = ["kubectl", "--kubeconfig", str(rstack.kubeconfig), "--context", "twin", "-n", "team-media"]
    dep = json.loads(subprocess.check_output([*kubectl, "get", "deployment", dep_obj[2], "-o", "json"]))
    per_pod = sum(
        float(c["resources"]["requests"].get("nvidia.com/gpu", 0))
        for c in dep["spec"]["template"]["spec"]["containers"]
    )
    want = 60
    argv = [
        sys.executable, "-m", "console.cli", "runbook", "plan", "pre-scale", "service=asr-subtitles",
        "region=ap-southeast", f"replicas={want}", "--catalog", str(ROOT / "fleet.yaml"),
        "--runbooks", str(ROOT / "runbooks"), "--prometheus", rstack.prom_url,
        "--kubeconfig", str(rstack.kubeconfig), "--context", "twin",
    ]  # fmt: skip
    p = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    (quota,) = json.loads(subprocess.check_output([*kubectl, "get", "resourcequota", "-o", "json"]))["items"]
    hard = float(quota["spec"]["hard"]["requests.nvidia.com/gpu"])
    used = float(quota["status"]["used"]["requests.nvidia.com/gpu"])
    need = (want - dep["spec"]["replicas"]) * per_pod
    assert need > hard - used  # the test's own premise: 60 replicas do not fit
    assert p.returncode == 2, p.stdout + p.stderr
    line = (
        f"  - capacity: namespace team-media quota {quota['metadata']['name']} (requests.nvidia.com/gpu): the "
        f"scale-ups need {need:g} more nvidia.com/gpu, the quota has room for {max(0, hard - used):g} "
        f"({used:g} of {hard:g} used)"
    )
    assert line in p.stdout.splitlines(), p.stdout
    assert "--allow-over-quota" in p.stdout
    assert state(kube, dep_obj, ("hpa", "team-media", "asr-subtitles-ap-southeast")) == before
    allowed = subprocess.run([*argv, "--allow-over-quota"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert "capacity short, run anyway (--allow-over-quota, journalled):" in allowed.stdout, allowed.stdout
    assert "capacity:" not in allowed.stdout


@pytest.mark.parametrize(
    ("how", "region"), [("timeout -s TERM", "eu-west"), ("SIGHUP", "us-east")], ids=["sigterm", "sighup"]
)
def test_a_signal_mid_pre_scale_rolls_back_replicas_hpa_and_lease(rstack, kube, journal, how, region):
    """What `timeout`, systemd, CI and a closed terminal send: the run undoes what it did, like Ctrl-C."""
    objs = [("deployment", "team-media", f"asr-subtitles-{region}"), ("hpa", "team-media", f"asr-subtitles-{region}")]
    before = state(kube, *objs)
    base = before[objs[0]]["spec"]["replicas"]
    plan_for(rstack, "pre-scale", service="asr-subtitles", region=region, replicas=str(base + 2))  # series filled in
    argv = [
        sys.executable, "-m", "console.cli", "runbook", "run", "pre-scale", "service=asr-subtitles",
        f"region={region}", f"replicas={base + 2}", "--execute", "--operator", "signalled",
        "--catalog", str(ROOT / "fleet.yaml"), "--runbooks", str(ROOT / "runbooks"), "--journal", str(journal.path),
        "--prometheus", rstack.prom_url, "--kubeconfig", str(rstack.kubeconfig), "--context", "twin",
    ]  # fmt: skip
    if how.startswith("timeout"):
        # GNU timeout passes a TERM it receives on to its command, as when its own limit runs out.
        argv = ["timeout", "-s", "TERM", "600", *argv]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:

        def waiting() -> str | None:
            # The scale step is done and the wait for ready replicas has begun (it first lets Prometheus
            # catch up for two scrapes and an evaluation, so the signal lands inside the run).
            records = journal.records()
            ours = {r["run"] for r in records if r["event"] == "run_start" and r["operator"] == "signalled"} - seen
            return next(
                (r["run"] for r in records if r["run"] in ours and r["event"] == "step_start" and r["step"] == 2), None
            )

        seen = {r["run"] for r in journal.records()}
        run_id = wait_for(waiting, timeout=90, every=0.1, what="the run to begin waiting for ready replicas")
        mid = state(kube, *objs)
        assert mid[objs[0]]["spec"]["replicas"] == base + 2 and mid[objs[1]]["spec"]["minReplicas"] == base + 2
        proc.send_signal(signal.SIGTERM if how.startswith("timeout") else signal.SIGHUP)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 1, out
    sig = "SIGTERM" if how.startswith("timeout") else "SIGHUP"
    assert f"run {run_id}: rolled-back (interrupted by {sig}; rolled back)" in out, out
    assert "Traceback" not in out
    # Checked the way an SRE would: kubectl, not the project's own client.
    kubectl = ["kubectl", "--kubeconfig", str(rstack.kubeconfig), "--context", "twin", "-n", "team-media"]
    dep = json.loads(subprocess.check_output([*kubectl, "get", "deployment", f"asr-subtitles-{region}", "-o", "json"]))
    hpa = json.loads(subprocess.check_output([*kubectl, "get", "hpa", f"asr-subtitles-{region}", "-o", "json"]))
    assert dep["spec"]["replicas"] == base
    assert hpa["spec"]["minReplicas"] == before[objs[1]]["spec"]["minReplicas"]
    leases = json.loads(
        subprocess.check_output([*kubectl, "get", "lease", "-l", "gpuops.io/lock=runbook", "-o", "json"])
    )
    assert leases["items"] == []
    records = [r for r in journal.records() if r["run"] == run_id]
    assert [r["signal"] for r in records if r["event"] == "interrupted"] == [sig]
    assert records[-1]["event"] == "run_end" and records[-1]["status"] == "rolled-back"
    assert find_run(journal.records(), run_id).status == "rolled-back"  # type: ignore[union-attr]


# --- the console ---------------------------------------------------------------------------------------
async def test_console_select_a_service_press_r_choose_pre_scale_read_the_plan_confirm_and_watch(rstack, kube, journal):
    from textual.widgets import Button, Input, OptionList, Static

    from console.tui.app import GpuopsApp
    from console.tui.runbooks import ConfirmRun, RunbookChooser, RunbookScreen
    from console.wiring import connect
    from tests.e2e.console_helpers import until

    objs = [("deployment", "team-media", "tts-dub-ap-southeast"), ("hpa", "team-media", "tts-dub-ap-southeast")]
    before = state(kube, *objs)
    base = before[objs[0]]["spec"]["replicas"]
    conn = connect(
        CATALOG, rstack.prom_url, str(rstack.kubeconfig), "twin", rstack.am_url,
        runbooks_dir=ROOT / "runbooks", journal=journal.path,
    )  # fmt: skip
    app = GpuopsApp(conn, interval=0.5, operator="pilot")
    try:
        async with app.run_test(size=(150, 50)) as pilot:
            await pilot.press("3")
            table = app.query_one("#table-services")
            await until(pilot, lambda: table.get_row_index("tts-dub/ap-southeast") >= 0, what="the services table")
            table.move_cursor(row=table.get_row_index("tts-dub/ap-southeast"))
            await pilot.press("r")
            chooser = await until(pilot, lambda: isinstance(app.screen, RunbookChooser) and app.screen)
            options = chooser.query_one(OptionList)
            options.highlighted = next(
                i for i in range(options.option_count) if options.get_option_at_index(i).id == "pre-scale"
            )
            await pilot.press("enter")
            screen = await until(pilot, lambda: isinstance(app.screen, RunbookScreen) and app.screen, what="the form")
            # Opened from the row: service and region are filled in; the operator gives the replicas.
            assert screen.query_one("#param-service", Input).value == "tts-dub"
            assert screen.query_one("#param-region", Input).value == "ap-southeast"
            screen.query_one("#param-replicas", Input).value = str(base + 1)
            plan_text = screen.query_one("#runbook-plan-text", Static)
            want = f"deployment team-media/tts-dub-ap-southeast  spec.replicas: {base} -> {base + 1}"
            for _ in range(30):  # right after start the recorded series fill in: plan again until clean
                plan_text.update("")
                await pilot.click("#runbook-plan")
                await until(pilot, lambda: want in str(plan_text.render()), timeout=30, what="the plan on screen")
                if "problems" not in str(plan_text.render()):
                    break
                await pilot.pause(3)
            assert "server-side dry run: 2 of 2 objects accepted" in str(plan_text.render())
            assert kube.get(*objs[0])["spec"]["replicas"] == base  # a plan changes nothing
            await until(pilot, lambda: not screen.query_one("#runbook-run", Button).disabled, what="Run enabled")
            await pilot.click("#runbook-run")
            confirm = await until(pilot, lambda: isinstance(app.screen, ConfirmRun) and app.screen, what="confirm")
            assert want in str(confirm.query_one("#confirm-plan Static", Static).render())
            await pilot.click("#confirm-run-button")
            progress = screen.query_one("#runbook-progress", Static)
            await until(pilot, lambda: ": succeeded" in str(progress.render()), timeout=120, what="the run to succeed")
            shown = str(progress.render())
            for line in ("[done] step 1: raise the replicas", "[done] step 2: wait until every new replica is ready",
                         "[done] verify: every replica stays ready", "[done] verify: errors stay under 1 %"):  # fmt: skip
                assert line in shown, shown
            assert kube.get(*objs[0])["spec"]["replicas"] == base + 1
            await pilot.press("escape")
            await pilot.press("5")  # the Runbooks view: its journal shows the run
            journal_text = app.query_one("#runbook-journal", Static)
            await until(pilot, lambda: "succeeded  pilot" in str(journal_text.render()), what="the journal line")
    finally:
        conn.close()
    run_id = [r for r in journal.records() if r["event"] == "run_end" and r["status"] == "succeeded"][-1]["run"]
    rollback_cli(rstack, journal, run_id)
    assert state(kube, *objs) == before


def test_doctor_passes_what_the_stack_has_and_names_the_fix_for_what_it_lacks(rstack, tmp_path):
    from tests.fleetdoc import doc

    def doctor(*extra: str, catalog: str = str(ROOT / "fleet.yaml"), prom_url: str = rstack.prom_url) -> Any:
        return CliRunner().invoke(
            main,
            [
                "doctor", "--catalog", catalog, "--prometheus", prom_url, "--alertmanager", str(rstack.am_url),
                "--kubeconfig", str(rstack.kubeconfig), "--context", "twin", *extra,
            ],
        )  # fmt: skip

    def checks() -> dict[str, dict[str, str]] | None:
        r = doctor("--format", "json")
        out = {c["name"]: c for c in json.loads(r.output)["checks"]}
        scraped = ("gpuops rules loaded", "dcgm-exporter series", "kube-state-metrics series", "OpenCost series")
        return out if all(out.get(n, {}).get("verdict") == "ok" for n in scraped) else None

    # Once Prometheus has scraped and evaluated: all present but the one access the twin denies (DENIED).
    got = wait_for(checks, timeout=60, what="the doctor to see the rules loaded and the exporters scraped")
    misses = {n: c for n, c in got.items() if c["verdict"] != "ok"}
    assert list(misses) == ["access: patch deployment in team-creative"], misses
    assert 'resources: ["deployments/scale"], verbs: ["patch"]' in misses[next(iter(misses))]["fix"]
    for name in ("dcgm-exporter series", "GPU pod attribution", "kube-state-metrics series", "node labels exported",
                 "OpenCost series", "clock skew", "API v2"):  # fmt: skip
        assert got[name]["verdict"] == "ok", got[name]
    assert {f"pool {p['name']}" for p in doc()["pools"]} <= set(got)
    r = doctor()
    assert r.exit_code == 1 and "MISS  kubernetes   access: patch deployment in team-creative" in r.output, r.output

    # A selector that reads no series: the doctor finds the job the series are scraped under and says so.
    cat = tmp_path / "fleet.yaml"
    cat.write_text((ROOT / "fleet.yaml").read_text().replace("dcgm_selector: 'job=\"dcgm-exporter\"'",
                                                              "dcgm_selector: 'job=\"gpu-metrics\"'"))  # fmt: skip
    r = doctor("--format", "json", catalog=str(cat))
    wrong = {c["name"]: c for c in json.loads(r.output)["checks"]}["dcgm-exporter series"]
    assert wrong["verdict"] == "miss" and "job dcgm-exporter" in wrong["detail"]
    assert wrong["fix"] == "set monitoring.dcgm_selector: 'job=\"dcgm-exporter\"' in the catalog"

    r = doctor(prom_url="http://127.0.0.1:9")  # nothing listens there
    assert r.exit_code == 2 and "DOWN  prometheus" in r.output, r.output
