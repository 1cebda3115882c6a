"""Storage IO on the twin: the transcode pipeline's bytes on node-exporter's disk, network and NFS counters, the
store's ceiling from the catalog, and `storage_slow`. Expected figures come from fleet.yaml read plainly and
from the served request rates the twin reports."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
import yaml

from console.catalog import CatalogError, parse_catalog
from console.twin.metrics import Frames
from console.twin.sim import Twin
from console.twin.storage import BASE_MB_S
from console.twin.store import ApiError
from tests.conftest import ROOT
from tests.fleetdoc import named

NOON = datetime(2026, 12, 1, 12, tzinfo=UTC)
LINE = re.compile(r'^(node_\w+)\{job="node-exporter",instance="([^"]+)",[^}]*\} (\S+)$', re.M)
STEP = 60.0


def counters(twin: Twin) -> dict[tuple[str, str], float]:
    """node-exporter's counters as /metrics writes them (at the last tick)."""
    with twin.lock:
        text = Frames(twin).dynamic()
    return {(m[1], m[2]): float(m[3]) for m in LINE.finditer(text)}


def step(twin: Twin) -> None:
    with twin.lock:
        twin.clock.advance(STEP)
        twin.tick(dt=STEP)


def rates_over_a_step(twin: Twin) -> tuple[dict[tuple[str, str], float], dict[str, float]]:
    """Each counter's rate over the next step, and what each transcode region served (requests a second) in it."""
    before = counters(twin)
    served = {r: twin.services[("video-transcode", r)].last.served_rps for r in ("us-east", "eu-west")}
    step(twin)
    after = counters(twin)
    return {k: (after[k] - before[k]) / STEP for k in before}, served


def pool_nodes(region: str) -> list[str]:
    n = named("pools", "cpu-transcode")["nodes"][region]
    return [f"cpu-transcode-{region}-{i:03d}" for i in range(n)]


@pytest.fixture
def twin(catalog) -> Twin:
    t = Twin(catalog, speed=0, start=NOON, warmup_s=0)
    step(t)  # replicas ready
    return t


def test_the_stores_traffic_is_what_transcode_serves_on_every_node_of_its_pool(twin) -> None:
    io = named("services", "video-transcode")["storage_io"]
    rates, served = rates_over_a_step(twin)
    nodes = pool_nodes("us-east")
    assert served["us-east"] > 0
    base = BASE_MB_S * 1e6 * len(nodes)
    rx = sum(rates[("node_network_receive_bytes_total", n)] for n in nodes)
    tx = sum(rates[("node_network_transmit_bytes_total", n)] for n in nodes)
    nfs_read = sum(rates[("node_mountstats_nfs_total_read_bytes_total", n)] for n in nodes)
    nfs_write = sum(rates[("node_mountstats_nfs_total_write_bytes_total", n)] for n in nodes)
    assert rx - base == pytest.approx(served["us-east"] * io["read_mb"] * 1e6, rel=1e-6)
    assert tx - base == pytest.approx(served["us-east"] * io["write_mb"] * 1e6, rel=1e-6)
    assert (nfs_read, nfs_write) == pytest.approx((rx - base, tx - base), rel=1e-6)
    # Evenly over the pool's nodes; a GPU pool's nodes move only their base and mount no store.
    per_node = [rates[("node_network_receive_bytes_total", n)] for n in nodes]
    assert max(per_node) == pytest.approx(min(per_node))
    assert rates[("node_network_receive_bytes_total", "infer-l4-us-east-000")] == pytest.approx(BASE_MB_S * 1e6)
    assert ("node_mountstats_nfs_total_read_bytes_total", "infer-l4-us-east-000") not in rates
    # The disks: busy with the pipeline's pressure on the store, under the alert's 90 % in a plain hour.
    busy = [rates[("node_disk_io_time_seconds_total", n)] for n in nodes]
    assert all(0.05 < b < 0.9 for b in busy), busy


def test_a_slow_store_caps_transcode_and_keeps_its_disks_busy(twin) -> None:
    ceiling = named("pools", "cpu-transcode")["storage"]["ceiling_mb_s"]
    io = named("services", "video-transcode")["storage_io"]
    slow = {"pool": "cpu-transcode", "region": "us-east"}
    twin.add_fault({"kind": "storage_slow", "target": slow, "multiplier": 0.1, "duration_s": 600})
    rates, served = rates_over_a_step(twin)
    svc = twin.services[("video-transcode", "us-east")].last
    # A tenth of the ceiling: transcode serves no more than that moves, and refuses the rest.
    assert served["us-east"] * (io["read_mb"] + io["write_mb"]) <= ceiling * 0.1 * (1 + 1e-9)
    assert svc.demand_rps * (io["read_mb"] + io["write_mb"]) > ceiling * 0.1 and svc.error_rps > 0
    assert all(rates[("node_disk_io_time_seconds_total", n)] == pytest.approx(1.0) for n in pool_nodes("us-east"))
    assert all(rates[("node_disk_io_time_seconds_total", n)] < 0.9 for n in pool_nodes("eu-west"))
    assert twin.services[("video-transcode", "eu-west")].last.error_rps == 0


def test_storage_slow_is_validated(twin) -> None:
    with pytest.raises(ApiError, match=r"target\.pool: unknown pool"):
        twin.add_fault({"kind": "storage_slow", "target": {"pool": "no-such-pool"}})
    with pytest.raises(ApiError, match="multiplier: the share of the ceiling"):
        twin.add_fault({"kind": "storage_slow", "target": {"pool": "cpu-transcode"}, "multiplier": 1.5})
    with pytest.raises(ApiError, match=r"target\.pool: required"):
        twin.add_fault({"kind": "storage_slow", "target": {"region": "us-east"}})


def test_a_service_bound_by_storage_needs_a_pool_with_a_store() -> None:
    text = (ROOT / "fleet.yaml").read_text()
    doc = yaml.safe_load(text)
    pool = next(p for p in doc["pools"] if p["name"] == "cpu-transcode")
    del pool["storage"]
    with pytest.raises(CatalogError) as e:
        parse_catalog(yaml.safe_dump(doc, sort_keys=False), "bad.yaml")
    [issue] = [str(i) for i in e.value.issues if "storage" in str(i)]
    assert "bad.yaml" in issue and "storage_io" in issue and "has no storage" in issue
    bad = text.replace("storage: {kind: nfs, ceiling_mb_s: 2500}", "storage: {kind: nfs, ceiling_mb_s: -1}")
    with pytest.raises(CatalogError) as e:
        parse_catalog(bad, "bad.yaml")
    line = text[: text.index("storage: {kind: nfs")].count("\n") + 1
    assert any(f"bad.yaml:{line}" in str(i) and "ceiling_mb_s" in str(i) for i in e.value.issues), e.value.issues
