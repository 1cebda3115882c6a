"""The snapshot from a real Prometheus scraping the twin, and through the official Kubernetes client."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from console.fleet.build import SnapshotBuilder
from console.procs import prometheus as prom
from console.sources.kube import KubeSource
from console.sources.prometheus import PrometheusSource
from tests.e2e.conftest import ROOT, wait_for
from tests.fleetdoc import doc as fleet_doc
from tests.fleetdoc import gpus_per_pool, named


class _CountingProxy(BaseHTTPRequestHandler):
    """In front of Prometheus: counts the requests that reach it, an independent measure of the refresh's cost."""

    upstream = ""
    count = 0

    def do_GET(self) -> None:
        self._forward()

    def do_POST(self) -> None:
        self._forward()

    def _forward(self) -> None:
        type(self).count += 1
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {k: v for k, v in self.headers.items() if k.lower() in ("content-type", "accept")}
        r = httpx.request(self.command, self.upstream + self.path, content=body, headers=headers, timeout=30)
        self.send_response(r.status_code)
        self.send_header("Content-Type", r.headers.get("content-type", "application/json"))
        self.send_header("Content-Length", str(len(r.content)))
        self.end_headers()
        self.wfile.write(r.content)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def counted(stack) -> Iterator[type[_CountingProxy]]:
    handler = type("Counter", (_CountingProxy,), {"upstream": stack.prom_url, "count": 0})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    handler.url = f"http://127.0.0.1:{server.server_port}"
    yield handler
    server.shutdown()


def _builder(catalog, stack, prom_url: str | None = None, **kw) -> SnapshotBuilder:
    return SnapshotBuilder(
        catalog, PrometheusSource(prom_url or stack.prom_url), KubeSource(str(stack.kubeconfig), "twin"), **kw
    )


def test_gpu_totals_per_pool_equal_the_catalog(catalog, stack, counted):
    # The builder's clock stands still: this stack runs no rules, so the builder reads raw and asks for the
    # records again once a wait has passed (10 s first); on a loaded machine such a look landed in a counted build.
    still = datetime.now(UTC)
    b = _builder(catalog, stack, counted.url, clock=lambda: still)
    # Nodes appear before their GPUs' first recorded counts (a rule evaluation later, on a loaded machine).
    snap = wait_for(
        lambda: (s := b.build()) and any(p.gpus_total for p in s.pools) and s, what="a snapshot with pools' GPUs"
    )
    assert not snap.failing()
    got = {(p.pool, p.region): p.gpus_total for p in snap.pools if p.gpus_total}
    assert got == gpus_per_pool()
    # A fixed, small set of requests at any fleet size, counted where they arrive: five to Prometheus for the
    # fleet, one more while a pool is open (its nodes); with a node open, its GPUs' readings take the place
    # of the pool's node table (its pods are read from Kubernetes).
    counted.count = 0
    b.build()
    assert counted.count == 5
    copywriting = named("services", "llm-copywriting")
    mig_pool = named("pools", copywriting["pool"])
    allocated = copywriting["replicas"]["us-east"] * copywriting["gpus_per_replica"]
    mig = snap.pool(mig_pool["name"], "us-east")
    assert mig is not None and mig.gpus_allocated == allocated
    # Per-node rows only for the pool drilled into, per-GPU rows only for the node.
    counted.count = 0
    pool = b.build(detail_pool=(mig_pool["name"], "us-east"))
    assert counted.count == 6 and len(pool.nodes) == mig_pool["nodes"]["us-east"]
    assert {n.pool for n in pool.nodes} == {mig_pool["name"]} and sum(n.gpus_allocated for n in pool.nodes) == allocated
    node = next(n for n in pool.nodes if n.gpus_allocated)
    counted.count = 0
    detail = b.build(detail_pool=(mig_pool["name"], "us-east"), detail_node=node.name)
    assert counted.count == 6
    assert detail.detail is not None and detail.detail.node == node.name
    profile = mig_pool["mig"]["profile"]
    instances = [g for g in detail.detail.gpus if g.mig_profile == profile]
    assert len(instances) == mig_pool["gpus_per_node"] * mig_pool["mig"]["instances_per_gpu"]
    held = {g.pod for g in instances if g.pod}
    assert held and held <= {p.name for p in detail.detail.pods}
    b.close()


def test_services_show_traffic_modes_and_replicas(catalog, stack):
    b = _builder(catalog, stack)

    def ready():
        s = b.build()
        row = next(r for r in s.services if r.service == "tts-dub" and r.region == "us-east")
        return (row.rps > 0 and row.p95_ms and row.replicas_available == row.replicas_desired) and s

    snap = wait_for(ready, timeout=45, what="tts-dub serving in us-east")
    row = next(r for r in snap.services if r.service == "tts-dub" and r.region == "us-east")
    want = named("services", "tts-dub")["replicas"]["us-east"]
    assert row.mode == "normal" and row.replicas_desired == want and row.hpa_min == want
    assert 0 < row.p95_ms < row.slo_ms and row.gpu_util > 0
    b.close()


def test_prometheus_stopped_keeps_last_good_data_then_recovers(catalog, stack, tmp_path):
    twin_target = stack.twin_url.removeprefix("http://")
    port = prom.free_port()
    own = prom.prometheus(tmp_path, twin_target, port=port, scrape_interval_s=1.0)
    own.start()
    try:
        b = SnapshotBuilder(catalog, PrometheusSource(own.base_url, timeout_s=2))
        good = wait_for(lambda: (s := b.build()) and s.pools and s, what="first snapshot")
        own.stop()
        bad = b.build()
        status = bad.sources["prometheus"]
        assert not status.ok and status.error and status.failing_since is not None
        assert status.last_success == good.taken_at
        assert bad.pools == good.pools  # the last good data stays
        own.start()
        fresh = wait_for(lambda: (s := b.build()) and s.sources["prometheus"].ok and s, what="recovery")
        assert fresh.taken_at > bad.taken_at and fresh.sources["prometheus"].error is None
        b.close()
    finally:
        own.stop()


def test_twin_fault_endpoint_validates(stack):
    r = httpx.post(f"{stack.twin_url}/twin/faults", json={"kind": "meteor", "target": {}})
    assert r.status_code == 422 and r.json()["reason"] == "Invalid"
    r = httpx.post(
        f"{stack.twin_url}/twin/faults",
        json={"kind": "traffic_spike", "target": {"service": "diffusion-covers"}, "duration_s": 5},
    )
    assert r.status_code == 201 and r.json()["kind"] == "traffic_spike"
    listed = httpx.get(f"{stack.twin_url}/twin/faults").json()["faults"]
    assert any(f["id"] == r.json()["id"] for f in listed)


def _snapshot_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "console.cli", "snapshot", "--catalog", str(ROOT / "fleet.yaml"), *args],
        cwd=ROOT, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def test_snapshot_command_prints_the_pools_as_a_table_and_as_json_and_exits_2_on_a_failing_source(stack):
    conn = ("--prometheus", stack.prom_url, "--kubeconfig", str(stack.kubeconfig), "--context", "twin")
    want = gpus_per_pool()

    def as_json() -> dict | None:
        p = _snapshot_cli(*conn, "--format", "json")
        assert p.returncode == 0, p.stderr
        d = json.loads(p.stdout)
        return d if {(x["pool"], x["region"]): x["gpus_total"] for x in d["pools"] if x["gpus_total"]} == want else None

    d = wait_for(as_json, what="the pools' GPUs in the JSON snapshot")
    assert d["sources"]["prometheus"]["ok"] and d["sources"]["prometheus"]["error"] is None
    table = _snapshot_cli(*conn)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split()[:3] == ["POOL", "REGION", "MODEL"]
    rows = {(w[0], w[1]): float(w[4]) for w in (ln.split() for ln in lines[1:-1])}
    assert {k: v for k, v in rows.items() if v} == want
    # To Prometheus: the pools' recorded series first (none here: this stack runs no rules), then the five raw
    # queries; the HPA list from Kubernetes (no Alertmanager given), and Kueue's ClusterQueues and Workloads
    # where the catalog has batch queues. The last line says it read raw series.
    kueue = 2 if fleet_doc().get("queues") else 0
    assert f"{sum(want.values()):g} GPUs" in lines[-1] and f"with {1 + 5 + 1 + kueue} requests" in lines[-1]
    assert lines[-1].endswith("(raw series)"), lines[-1]
    # A Prometheus nobody answers: the source is named failing and the exit code says so.
    dead = _snapshot_cli("--prometheus", f"http://127.0.0.1:{prom.free_port()}", "--format", "json")
    assert dead.returncode == 2
    assert "source prometheus failing since" in dead.stderr
    assert json.loads(dead.stdout)["sources"]["prometheus"]["ok"] is False
