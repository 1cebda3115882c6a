"""The twin loaded with the real Alibaba GPU cluster trace: figures computed here from the CSV files."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from console.fleet.build import SnapshotBuilder
from console.sources.prometheus import PrometheusSource
from console.twin.alibaba import catalog as trace_catalog
from tests.e2e.conftest import start_stack, wait_for

# Heavy: `./dev test` runs it after the other e2e modules, alone, so that its load (a trace's 15-30 MB
# scrapes, a history's backfill) does not slow the neighbours' clocked checks, nor theirs its own.
pytestmark = pytest.mark.heavy

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "alibaba-gpu-2023"


def _csv(name: str) -> list[dict[str, str]]:
    with (DATA / name).open(newline="") as f:
        return list(csv.DictReader(f))


def _scheduled(pods: list[dict[str, str]]) -> list[dict[str, str]]:
    return [p for p in pods if p["scheduled_time"]]


def _busiest_time(pods: list[dict[str, str]]) -> tuple[int, float]:
    """The scheduled time at which the running pods hold the most GPUs, and that sum (shares counted)."""
    events = []
    for p in _scheduled(pods):
        gpus = int(p["num_gpu"]) * int(p["gpu_milli"]) / 1000
        events += [(int(p["scheduled_time"]), gpus), (int(p["deletion_time"]), -gpus)]
    events.sort(key=lambda e: (e[0], e[1]))
    best_t, best, cur = 0, 0.0, 0.0
    for t, d in events:
        cur += d
        if cur > best:
            best_t, best = t, cur
    return best_t, best


@pytest.fixture(scope="module")
def trace_stack(tmp_path_factory):
    pods = _csv("openb_pod_list_default.csv")
    t, _ = _busiest_time(pods)
    yield from start_stack(
        tmp_path_factory.mktemp("openb"),
        "--fleet",
        str(DATA),
        "--replay-at",
        str(t),
        "--speed",
        "0",
        with_alertmanager=False,
    )


def test_snapshot_of_the_trace_fleet(trace_stack):
    nodes = _csv("openb_node_list_all_node.csv")
    pods = _csv("openb_pod_list_default.csv")
    gpu_nodes = [n for n in nodes if int(n["gpu"]) > 0]
    t, _ = _busiest_time(pods)
    running = [p for p in _scheduled(pods) if int(p["scheduled_time"]) <= t < int(p["deletion_time"])]
    expected_alloc = sum(int(p["num_gpu"]) * int(p["gpu_milli"]) / 1000 for p in running)
    shared = [p for p in running if 0 < int(p["gpu_milli"]) < 1000]
    assert shared, "the busiest moment has shared GPUs, so their shares are counted"

    b = SnapshotBuilder(trace_catalog(DATA), PrometheusSource(trace_stack.prom_url, timeout_s=20))
    snap = wait_for(
        lambda: (s := b.build()) and sum(p.nodes for p in s.pools) == len(nodes) and s,
        timeout=180,  # 19 s alone; a minute and more beside two other modules' servers on two cores
        what="all trace nodes in Prometheus",
    )
    assert sum(p.nodes for p in snap.pools if p.gpus_total > 0) == len(gpu_nodes) == 1213
    assert sum(p.gpus_total for p in snap.pools) == sum(int(n["gpu"]) for n in gpu_nodes) == 6212
    assert sum(p.gpus_allocated for p in snap.pools) == pytest.approx(expected_alloc, abs=1e-6)
    by_model = {p.pool: p.gpus_total for p in snap.pools}
    assert by_model["openb-t4"] == sum(int(n["gpu"]) for n in gpu_nodes if n["model"] == "T4")
    # Drilling in: the pool's nodes, one by one. Polled like the first build: on a loaded machine a scrape of
    # 1,213 nodes can outlast its interval, and the series are briefly stale.
    t4_nodes = sum(1 for n in gpu_nodes if n["model"] == "T4")
    t4 = wait_for(
        lambda: (s := b.build(detail_pool=("openb-t4", "openb"))) and len(s.nodes) == t4_nodes and s,
        timeout=60,
        what="the T4 pool's nodes",
    )
    assert sum(n.gpus_allocated for n in t4.nodes) == pytest.approx(
        next(p for p in snap.pools if p.pool == "openb-t4").gpus_allocated
    )
    b.close()
