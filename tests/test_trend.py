"""The Pools view's trend bars: an hour of five-minute bars, seeded from Prometheus' samples, the newest bar
following the live snapshots."""

from __future__ import annotations

from datetime import UTC, datetime

from console.fleet.history import BUCKET_S, POINTS, History
from console.fleet.snapshot import FleetSnapshot, PoolRow, SourceStatus

T = 1_780_000_200.0  # a bar's start


def snap(util: float, ok: bool = True) -> FleetSnapshot:
    pool = PoolRow(pool="infer-h100", region="us-east", model="H100", nodes=2, nodes_ready=2, gpus_total=16,
                   gpus_allocated=8, gpus_idle=0, util=util, fb_used_mib=0, fb_total_mib=0, power_w=0)  # fmt: skip
    sources = {} if ok else {"prometheus": SourceStatus("prometheus", False, "down")}
    return FleetSnapshot(datetime.now(UTC), (pool,), (), (), (), sources=sources)


def test_the_seed_fills_the_hour_and_the_live_value_takes_the_newest_bar() -> None:
    h = History()
    past = [(T - k * BUCKET_S, 10.0 + k) for k in range(POINTS + 3)][::-1]  # 15 bars, oldest first
    h.seed({"infer-h100/us-east": past, "gone/eu-west": past[:2]})
    assert h.get("infer-h100/us-east") == [10.0 + k for k in range(POINTS - 1, -1, -1)]  # the newest 12
    assert h.get("gone/eu-west") == []  # its bars are older than the hour
    h.add(snap(55.0), T + 30)  # in the newest bar: the live value replaces the seeded one
    assert h.get("infer-h100/us-east")[-1] == 55.0 and len(h.get("infer-h100/us-east")) == POINTS
    h.add(snap(60.0), T + BUCKET_S + 1)  # the next bar: the oldest leaves
    bars = h.get("infer-h100/us-east")
    assert len(bars) == POINTS and bars[-2:] == [55.0, 60.0] and bars[0] == 10.0 + POINTS - 2
    h.add(snap(99.0, ok=False), T + BUCKET_S + 2)  # a failing source's rows are stale: not drawn
    assert h.get("infer-h100/us-east")[-1] == 60.0
    h.seed({"infer-h100/us-east": [(T + BUCKET_S, 1.0)]})  # a late seed never overwrites a live bar
    assert h.get("infer-h100/us-east")[-1] == 60.0
