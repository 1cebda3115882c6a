"""Batch queues end to end: the twin's Kueue with its queued Jobs admitted within quota, read by a real Prometheus
and by kubectl; `gpuops runbook run hold-batch --execute` stops admission (pending grows, admitted falls to
none as the running Jobs finish, no admission counted), kubectl shows the stop policy each way, the console's
Queues view shows the held queues and their workloads, and `rollback` resumes admission.

The twin runs at 60x: the catalog's batch Jobs (40 to 65 simulated minutes) finish within about a minute."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from console.catalog import load_catalog
from console.tui.app import GpuopsApp
from console.tui.table import KeyedTable
from console.wiring import connect
from tests.e2e.conftest import ROOT, Stack, start_stack, wait_for
from tests.e2e.console_helpers import cell, until
from tests.fleetdoc import doc

CATALOG = load_catalog(ROOT / "fleet.yaml")
QUEUES = doc()["queues"]
HELD = sorted(q["name"] for q in QUEUES["cluster_queues"] if q.get("hold_for_events", True))
SPEED = 60


@pytest.fixture(scope="module")
def qstack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp("queues")
    yield from start_stack(workdir, "--catalog", str(ROOT / "fleet.yaml"), "--warmup", "0", "--speed", str(SPEED))


def kubectl(stack: Stack, *args: str) -> str:
    env = {**os.environ, "KUBECONFIG": str(stack.kubeconfig)}
    r = subprocess.run(["kubectl", *args], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout


def stop_policy(stack: Stack, queue: str) -> str:
    return kubectl(stack, "get", "clusterqueue", queue, "-o", "jsonpath={.spec.stopPolicy}")


def by_queue(stack: Stack, promql: str) -> dict[str, float]:
    r = httpx.get(f"{stack.prom_url}/api/v1/query", params={"query": promql}, timeout=10).json()
    return {x["metric"].get("cluster_queue", ""): float(x["value"][1]) for x in r["data"]["result"]}


def gpuops(*args: str, journal: Path, stack: Stack) -> subprocess.Popen[str]:
    runbooks = ["--runbooks", str(ROOT / "runbooks")] if args[0] == "run" else []
    return subprocess.Popen(
        [sys.executable, "-m", "console.cli", "runbook", *args, "--catalog", str(ROOT / "fleet.yaml"),
         *runbooks, "--journal", str(journal), "--prometheus", stack.prom_url,
         "--kubeconfig", str(stack.kubeconfig), "--context", "twin", "--operator", "tester"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL,
    )  # fmt: skip


async def test_hold_batch_stops_admission_and_its_rollback_resumes_it(qstack: Stack, tmp_path: Path) -> None:
    # Kueue's objects, as kubectl lists them: every cluster queue of the catalog, admitting.
    table = kubectl(qstack, "get", "clusterqueues")
    assert table.split("\n")[0].split()[:2] == ["NAME", "COHORT"]
    assert sorted(line.split()[0] for line in table.strip().split("\n")[1:]) == sorted(
        q["name"] for q in QUEUES["cluster_queues"]
    )
    assert all(stop_policy(qstack, q) == "" for q in HELD)
    # Queued Jobs wait and are admitted: Prometheus counts admissions in every queue, and kubectl lists the
    # Workloads, admitted ones to a flavor of their queue.
    wait_for(lambda: set(by_queue(qstack, "kueue_admitted_workloads_total > 0")) >= set(HELD), timeout=60,
             what="admissions in every batch queue")  # fmt: skip
    wls = json.loads(kubectl(qstack, "get", "workloads", "-A", "-o", "json"))["items"]
    flavors = {q["name"]: set(q["quota"]) for q in QUEUES["cluster_queues"]}
    admitted = [w for w in wls if w.get("status", {}).get("admission")]
    assert admitted
    for w in admitted:
        adm = w["status"]["admission"]
        assert adm["podSetAssignments"][0]["flavors"]["nvidia.com/gpu"] in flavors[adm["clusterQueue"]]

    # The cost report charges the queued Jobs' pods to their namespace's team, like any pod (FOCUS rows, one a
    # pod): the pods named by kubectl, the teams by the YAML.
    team_of = {ns: t["name"] for t in doc()["teams"] for ns in t["namespaces"]}
    pods = json.loads(kubectl(qstack, "get", "pods", "-A", "-l", "kueue.x-k8s.io/queue-name", "-o", "json"))["items"]
    running = {p["metadata"]["name"]: p["metadata"]["namespace"] for p in pods if p["spec"].get("nodeName")}
    assert running
    report = subprocess.run(
        [sys.executable, "-m", "console.cli", "cost", "report", "--from", "-30m", "--format", "focus",
         "--catalog", str(ROOT / "fleet.yaml"), "--prometheus", qstack.prom_url,
         "--kubeconfig", str(qstack.kubeconfig), "--context", "twin"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert report.returncode == 0, report.stderr
    charged = {r["ResourceName"]: r for r in csv.DictReader(io.StringIO(report.stdout))}
    seen = [name for name in running if name in charged]
    assert seen, (sorted(running), sorted(charged)[:20])
    for name in seen:
        assert charged[name]["SubAccountName"] == team_of[running[name]], charged[name]
        assert float(charged[name]["ConsumedQuantity"]) > 0

    journal = tmp_path / "runbooks.jsonl"
    before_total = by_queue(qstack, "kueue_admitted_workloads_total")
    longest_s = max(q["arrivals"]["run_min"] for q in QUEUES["local_queues"]) * 60 / SPEED
    run = gpuops("run", "hold-batch", f"drain_within={int(longest_s * 2)}s", "--execute", journal=journal, stack=qstack)
    try:
        try:
            wait_for(lambda: all(stop_policy(qstack, q) == "Hold" for q in HELD), timeout=30, what="stopPolicy Hold")
        except AssertionError:
            run.kill()
            raise AssertionError(f"the run did not hold the queues:\n{run.communicate()[0]}") from None
        held_at = by_queue(qstack, "kueue_admitted_workloads_total")
        assert all(held_at[q] >= before_total[q] for q in HELD)
        # Running Jobs finish and nothing new is admitted: admitted falls to none, pending grows.
        pending0 = by_queue(qstack, "sum by (cluster_queue) (kueue_pending_workloads)")
        wait_for(lambda: all(v == 0 for v in by_queue(qstack, "kueue_admitted_active_workloads").values()),
                 timeout=longest_s * 3, every=1, what="the running batch to finish")  # fmt: skip
        wait_for(lambda: sum(by_queue(qstack, "sum by (cluster_queue) (kueue_pending_workloads)").values())
                 > sum(pending0.values()), timeout=60, what="pending to grow")  # fmt: skip
        total = by_queue(qstack, "kueue_admitted_workloads_total")
        assert all(total[q] <= held_at[q] + 0 for q in HELD), (held_at, total)  # no admission since the hold
        # The GPUs batch held on the shared pool are free: no queued Job's pod holds one.
        pods = json.loads(kubectl(qstack, "get", "pods", "-A", "-l", "gpuops.io/workload=batch", "-o", "json"))
        queued = {f"{p['metadata']['namespace']}/{p['metadata']['labels'].get('job-name')}" for p in pods["items"]
                  if "kueue.x-k8s.io/queue-name" in p["metadata"]["labels"]}  # fmt: skip
        assert queued == set(), queued
        out, _ = run.communicate(timeout=longest_s * 2 + 600)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 0, out
    # The drain's last step: what still ran at the deadline is evicted; here nothing did.
    assert all(stop_policy(qstack, q) == "HoldAndDrain" for q in HELD), out
    assert re.search(r"batch holds \d+ GPUs in these queues now \(eu-west \d+, us-east \d+\)", out), out
    run_id = re.search(r"run (\S+): succeeded", out)
    assert run_id, out

    # The console: the Queues view shows each held queue with its policy and no GPUs admitted; Enter lists its
    # workloads, every one waiting.
    conn = connect(CATALOG, qstack.prom_url, str(qstack.kubeconfig), "twin", qstack.am_url)
    try:
        app = GpuopsApp(conn, interval=0.5, operator="tester")
        async with app.run_test(size=(180, 40)) as pilot:
            await pilot.press("9")
            table = app.query_one("#table-queues", KeyedTable)
            await until(pilot, lambda: all(cell(table, q, "state") == "HoldAndDrain" for q in HELD), what="held")
            quota = {q["name"]: sum(q["quota"].values()) for q in QUEUES["cluster_queues"]}
            assert {q: cell(table, q, "gpus") for q in HELD} == {q: f"0 / {quota[q]:g}" for q in HELD}
            listed_by_api = {}
            for w in json.loads(kubectl(qstack, "get", "workloads", "-A", "-o", "json"))["items"]:
                lq = next(x for x in QUEUES["local_queues"]
                          if (x["namespace"], x["name"]) == (w["metadata"]["namespace"], w["spec"]["queueName"]))  # fmt: skip
                listed_by_api[lq["cluster_queue"]] = listed_by_api.get(lq["cluster_queue"], 0) + 1
            table.move_cursor(row=table.get_row_index(HELD[0]))
            await pilot.press("enter")
            await until(pilot, lambda: "workload" in {c.key for c in table.all_columns}, what="the workloads")
            states = {cell(table, k, "state") for k in table.rows}
            assert "pending" in states and "admitted" not in states, states  # finished ones stay 10 minutes
            assert len(table.rows) >= listed_by_api[HELD[0]] - 2  # a refresh may trail the API by a Job or two
            await pilot.press("escape")
            await until(pilot, lambda: HELD[0] in table.rows, what="back to the queues")
    finally:
        conn.close()

    # The rollback takes the stop policy away (kubectl shows none) and admission resumes.
    back = gpuops("rollback", run_id[1], journal=journal, stack=qstack)
    out, _ = back.communicate(timeout=300)
    assert back.returncode == 0, out
    assert all(stop_policy(qstack, q) == "" for q in HELD), out
    wait_for(lambda: all(v > 0 for k, v in by_queue(qstack, "kueue_admitted_active_workloads").items() if k in HELD),
             timeout=60, what="admission to resume")  # fmt: skip
    assert all(by_queue(qstack, "kueue_admitted_workloads_total")[q] > total[q] for q in HELD)
