"""Kueue on the twin: queued Jobs wait as Workloads and are admitted within their ClusterQueue's quota, borrowing
from the cohort; `stopPolicy` Hold stops admission and lets running Jobs finish, HoldAndDrain evicts them, and
taking it away resumes admission. Every change goes through the twin's Kubernetes API as a client's would.
Expected figures come from fleet.yaml read plainly."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

import pytest
import yaml

from console.catalog import CatalogError, parse_catalog
from console.twin.metrics import render
from console.twin.sim import Twin
from tests.conftest import ROOT
from tests.fleetdoc import doc

NOON = datetime(2026, 12, 1, 12, tzinfo=UTC)
QUEUES = doc()["queues"]
KUEUE = "/apis/kueue.x-k8s.io/v1beta1"


def api(twin: Twin, method: str, path: str, body: Any = None, ctype: str = "application/merge-patch+json") -> Any:
    resp = twin.api.handle(method, path, "", {"content-type": ctype}, json.dumps(body).encode() if body else b"")
    assert resp.code < 300, resp.body
    return resp.body


def step(twin: Twin, seconds: float = 60.0) -> None:
    with twin.lock:
        twin.clock.advance(seconds)
        twin.tick(dt=seconds)


def workloads(twin: Twin) -> list[dict[str, Any]]:
    return api(twin, "GET", f"{KUEUE}/workloads")["items"]


def cluster_queue_of(wl: dict[str, Any]) -> str:
    """The ClusterQueue a Workload's LocalQueue feeds, from the YAML."""
    ns, queue = wl["metadata"]["namespace"], wl["spec"]["queueName"]
    return next(q["cluster_queue"] for q in QUEUES["local_queues"] if (q["namespace"], q["name"]) == (ns, queue))


def admitted(wl: dict[str, Any]) -> bool:
    conds = {c["type"]: c["status"] for c in wl.get("status", {}).get("conditions", [])}
    return conds.get("Admitted") == "True" and conds.get("Finished") != "True"


def usage(twin: Twin) -> dict[tuple[str, str], float]:
    """GPUs admitted per (cluster queue, flavor), from the Workloads' admissions."""
    out: dict[tuple[str, str], float] = defaultdict(float)
    for wl in workloads(twin):
        if admitted(wl):
            (a,) = wl["status"]["admission"]["podSetAssignments"]
            out[(wl["status"]["admission"]["clusterQueue"], a["flavors"]["nvidia.com/gpu"])] += float(
                a["resourceUsage"]["nvidia.com/gpu"]
            )
    return out


def queued_pod_gpus(twin: Twin) -> dict[str, float]:
    """GPUs the queued Jobs' pods hold, by node region, from the pods the API lists."""
    out: dict[str, float] = defaultdict(float)
    queued = {
        (j["metadata"]["namespace"], j["metadata"]["name"])
        for j in api(twin, "GET", "/apis/batch/v1/jobs")["items"]
        if "kueue.x-k8s.io/queue-name" in j["metadata"].get("labels", {})
    }
    for pod in api(twin, "GET", "/api/v1/pods")["items"]:
        job = (pod["metadata"]["namespace"], pod["metadata"].get("labels", {}).get("batch.kubernetes.io/job-name"))
        if job in queued and pod["spec"].get("nodeName"):
            node = api(twin, "GET", f"/api/v1/nodes/{pod['spec']['nodeName']}")
            gpus = float(pod["spec"]["containers"][0]["resources"]["requests"]["nvidia.com/gpu"])
            out[node["metadata"]["labels"]["topology.kubernetes.io/region"]] += gpus
    return out


@pytest.fixture
def twin(catalog) -> Twin:
    return Twin(catalog, speed=0, start=NOON, warmup_s=0)


def test_queued_jobs_are_admitted_within_quota_and_borrow_only_what_the_cohort_leaves(twin) -> None:
    nominal = {(q["name"], f): float(n) for q in QUEUES["cluster_queues"] for f, n in q["quota"].items()}
    pooled: dict[str, float] = defaultdict(float)
    for (_, f), n in nominal.items():
        pooled[f] += n
    flavor_region = {f["name"]: f["region"] for f in QUEUES["flavors"]}
    borrowed = pending_seen = 0
    for _ in range(12 * 60 // 5):
        step(twin, 300)
        use = usage(twin)
        for f, cap in pooled.items():
            assert sum(v for (_, fl), v in use.items() if fl == f) <= cap, (f, use)
        borrowed += any(v > nominal.get(k, 0.0) for k, v in use.items())
        wls = workloads(twin)
        pending_seen += any(not wl.get("status", {}).get("admission") for wl in wls)
        # An admitted Job runs on its flavor's pool and region, and only there.
        by_region: dict[str, float] = defaultdict(float)
        for (_, f), v in use.items():
            by_region[flavor_region[f]] += v
        assert queued_pod_gpus(twin) == by_region
        for wl in wls:
            job = api(twin, "GET", f"/apis/batch/v1/namespaces/{wl['metadata']['namespace']}/jobs/"
                                   f"{wl['metadata']['ownerReferences'][0]['name']}")  # fmt: skip
            assert job["spec"]["suspend"] is not admitted(wl) or "completionTime" in job.get("status", {})
    assert borrowed, "the research queue's load borrows from the cohort at times"
    assert pending_seen, "and waits at others"


def test_hold_stops_admission_running_jobs_finish_and_taking_it_away_resumes(twin) -> None:
    step(twin)
    names = [q["name"] for q in QUEUES["cluster_queues"]]
    before = {n: api(twin, "GET", f"{KUEUE}/clusterqueues/{n}")["status"]["admittedWorkloads"] for n in names}
    assert all(before.values()), before
    for n in names:
        api(twin, "PATCH", f"{KUEUE}/clusterqueues/{n}", {"spec": {"stopPolicy": "Hold"}})
    total = "kueue_admitted_workloads_total"
    admissions = [ln for ln in render(twin).splitlines() if ln.startswith(total)]
    longest = max(q["arrivals"]["run_min"] for q in QUEUES["local_queues"])
    for _ in range(int(longest) + 2):
        step(twin)
    after = {n: api(twin, "GET", f"{KUEUE}/clusterqueues/{n}")["status"] for n in names}
    assert all(s["admittedWorkloads"] == 0 and s["pendingWorkloads"] > 0 for s in after.values()), after
    assert all(c["reason"] == "Stopped" for s in after.values() for c in s["conditions"])
    assert [ln for ln in render(twin).splitlines() if ln.startswith(total)] == admissions
    assert sum(queued_pod_gpus(twin).values()) == 0
    for n in names:
        api(twin, "PATCH", f"{KUEUE}/clusterqueues/{n}", {"spec": {"stopPolicy": None}})
    step(twin)
    resumed = {n: api(twin, "GET", f"{KUEUE}/clusterqueues/{n}")["status"]["admittedWorkloads"] for n in names}
    assert all(resumed.values()), resumed


def test_hold_and_drain_evicts_what_runs_at_once(twin) -> None:
    step(twin)
    running = sum(queued_pod_gpus(twin).values())
    assert running > 0
    for q in QUEUES["cluster_queues"]:
        api(twin, "PATCH", f"{KUEUE}/clusterqueues/{q['name']}", {"spec": {"stopPolicy": "HoldAndDrain"}})
    step(twin, 1)
    assert sum(queued_pod_gpus(twin).values()) == 0
    wls = workloads(twin)
    assert wls and not any(admitted(w) for w in wls)
    evicted = [
        w for w in wls if any(c["type"] == "Evicted" and c["status"] == "True" for c in w["status"]["conditions"])
    ]
    assert evicted and all(not w["status"].get("admission") for w in evicted)
    text = render(twin)
    assert sum(
        float(ln.rsplit(" ", 1)[1]) for ln in text.splitlines() if ln.startswith("kueue_evicted_workloads_total")
    ) == len(evicted)


def test_a_job_a_user_submits_with_a_queue_name_waits_and_is_admitted_where_quota_allows(catalog) -> None:
    d = doc()
    for q in d["queues"]["local_queues"]:
        q.pop("arrivals")
    quiet = Twin(parse_catalog(yaml.safe_dump(d, sort_keys=False), "fleet.yaml"), speed=0, start=NOON, warmup_s=0)
    lq = d["queues"]["local_queues"][0]
    cq = next(q for q in d["queues"]["cluster_queues"] if q["name"] == lq["cluster_queue"])
    first_flavor, room = next(iter(cq["quota"].items()))
    cohort_room = sum(
        q["quota"].get(first_flavor, 0) for q in d["queues"]["cluster_queues"] if q.get("cohort") == cq.get("cohort")
    )

    def submit(name: str, gpus: int) -> None:
        req = {"nvidia.com/gpu": str(gpus), "cpu": "4", "memory": "16Gi"}
        job = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": name, "labels": {"kueue.x-k8s.io/queue-name": lq["name"]}},
            "spec": {
                "parallelism": 1,
                "template": {
                    "metadata": {"labels": {}},
                    "spec": {"containers": [{"name": "main", "resources": {"requests": req}}]},
                },
            },
        }
        api(quiet, "POST", f"/apis/batch/v1/namespaces/{lq['namespace']}/jobs", job, "application/json")

    flavor = next(f for f in d["queues"]["flavors"] if f["name"] == first_flavor)
    per_node = next(p["gpus_per_node"] for p in d["pools"] if p["name"] == flavor["pool"])
    fits = min(int(room), per_node)  # one pod: it must fit on one node too
    submit("fits", fits)
    submit("too-big", int(cohort_room) + 1)
    step(quiet, 1)
    jobs = {
        j["metadata"]["name"]: j
        for j in api(quiet, "GET", f"/apis/batch/v1/namespaces/{lq['namespace']}/jobs")["items"]
    }
    assert jobs["fits"]["spec"]["suspend"] is False
    assert jobs["too-big"]["spec"]["suspend"] is True  # Kueue suspends a queued Job until it is admitted
    wls = {w["metadata"]["ownerReferences"][0]["name"]: w for w in workloads(quiet)}
    assert admitted(wls["fits"]) and wls["fits"]["status"]["admission"]["clusterQueue"] == cq["name"]
    assert not wls["too-big"]["status"].get("admission")
    assert queued_pod_gpus(quiet) == {flavor["region"]: fits}
    lqs = api(quiet, "GET", f"{KUEUE}/namespaces/{lq['namespace']}/localqueues/{lq['name']}")
    assert (lqs["status"]["pendingWorkloads"], lqs["status"]["admittedWorkloads"]) == (1, 1)
    # The Job deleted, its Workload goes with it and the quota is free.
    quiet.api.handle("DELETE", f"/apis/batch/v1/namespaces/{lq['namespace']}/jobs/fits", "", {}, b"")
    step(quiet, 1)
    assert "fits" not in {w["metadata"]["ownerReferences"][0]["name"] for w in workloads(quiet)}
    assert queued_pod_gpus(quiet) == {}


@pytest.mark.parametrize(
    ("old", "new", "field", "says"),
    [
        ("quota: {l4-us-east: 4, l4-eu-west: 2}", "quota: {l4-nowhere: 4}", "quota", "unknown flavor 'l4-nowhere'"),
        ("{name: l4-eu-west, pool: infer-l4, region: eu-west}", "{name: l4-eu-west, pool: infer-l4, region: mars}",
         "region", "has no nodes in 'mars'"),
        ("cluster_queue: research-batch", "cluster_queue: nope", "cluster_queue", "unknown cluster queue 'nope'"),
        ("namespace: team-research-batch\n", "namespace: team-nobody\n", "namespace", "belongs to no team"),
    ],
)  # fmt: skip
def test_a_bad_queue_is_refused_with_its_file_line_and_field(old: str, new: str, field: str, says: str) -> None:
    text = (ROOT / "fleet.yaml").read_text()
    assert old in text
    bad = text.replace(old, new, 1)
    line = bad[: bad.index(new)].count("\n") + 1
    with pytest.raises(CatalogError) as e:
        parse_catalog(bad, "bad.yaml")
    issues = [str(i) for i in e.value.issues]
    assert any(f"bad.yaml:{line}" in i and field in i and says in i for i in issues), issues
