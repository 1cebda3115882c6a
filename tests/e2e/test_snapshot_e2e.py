"""The snapshot from a real Prometheus scraping the twin, and through the official Kubernetes client."""

from __future__ import annotations

import httpx

from console.fleet import queries as q
from console.fleet.build import SnapshotBuilder
from console.procs import prometheus as prom
from console.sources.kube import KubeSource
from console.sources.prometheus import PrometheusSource
from tests.e2e.conftest import wait_for


def _builder(catalog, stack) -> SnapshotBuilder:
    return SnapshotBuilder(catalog, PrometheusSource(stack.prom_url), KubeSource(str(stack.kubeconfig), "twin"))


def test_gpu_totals_per_pool_equal_the_catalog(catalog, stack):
    b = _builder(catalog, stack)
    snap = wait_for(lambda: (s := b.build()) and s.pools and s, what="a snapshot with pools")
    assert not snap.failing()
    got = {(p.pool, p.region): p.gpus_total for p in snap.pools if p.gpus_total}
    assert got == catalog.gpus_per_pool()
    # A fixed, small set of requests: each query set once, plus the HPA list (cached for its TTL).
    assert snap.requests <= len(q.SNAPSHOT) + 1
    mig = snap.pool("mig-a100", "us-east")
    assert mig is not None and mig.gpus_allocated == 3  # 6 replicas on half a GPU each
    # Per-node rows only for the pool drilled into, per-GPU rows only for the node: one request each more.
    pool = b.build(detail_pool=("mig-a100", "us-east"))
    assert pool.requests <= len(q.SNAPSHOT) + 2 and len(pool.nodes) == 2
    assert {n.pool for n in pool.nodes} == {"mig-a100"} and sum(n.gpus_allocated for n in pool.nodes) == 3
    node = next(n for n in pool.nodes if n.gpus_allocated)
    detail = b.build(detail_pool=("mig-a100", "us-east"), detail_node=node.name)
    assert detail.requests <= len(q.SNAPSHOT) + 3
    assert detail.detail is not None and detail.detail.node == node.name
    instances = [g for g in detail.detail.gpus if g.mig_profile == "3g.40gb"]
    assert len(instances) == 8 * 2  # 8 GPUs of 2 instances each
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
    assert row.mode == "normal" and row.replicas_desired == 6 and row.hpa_min == 6
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
