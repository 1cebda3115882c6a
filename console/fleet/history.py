"""Each pool's utilisation over the last hour, a bar per five minutes (the Pools view's sparklines): seeded
from Prometheus when the console starts, so that a fleet with a past (a backfilled history, a cluster that
has run for days) shows it at first paint, then kept from successive snapshots, the newest bar following
the live value."""

from __future__ import annotations

from collections import defaultdict

from console.fleet import queries as q
from console.fleet.snapshot import FleetSnapshot
from console.sources.prometheus import PrometheusSource

BUCKET_S = 300.0  # a bar: the backfilled history's step, so that every seeded bar holds a sample
POINTS = 12  # bars: the Pools view's trend column is 12 characters wide


class History:
    def __init__(self, points: int = POINTS, bucket_s: float = BUCKET_S):
        self.points, self.bucket_s = points, bucket_s
        self._series: dict[str, dict[int, float]] = defaultdict(dict)  # pool key -> bucket -> utilisation
        self._newest = -1
        self._last: FleetSnapshot | None = None

    def seed(self, past: dict[str, list[tuple[float, float]]]) -> None:
        """Bars from Prometheus' samples (Unix time, percent), where the live snapshots have none yet."""
        for key, samples in past.items():
            for t, v in samples:
                self._series[key].setdefault(int(t // self.bucket_s), v)
                self._newest = max(self._newest, int(t // self.bucket_s))
        self._trim()

    def add(self, snap: FleetSnapshot, at: float) -> None:
        """A snapshot taken at Unix time `at`: its value is the newest bar until the next bar begins."""
        if snap is self._last or snap.failing():
            return  # a failing source's rows are stale: repeating them would draw a flat line that is not real
        self._last = snap
        bucket = int(at // self.bucket_s)
        self._newest = max(self._newest, bucket)
        for p in snap.pools:
            self._series[p.key][bucket] = p.util
        self._trim()

    def _trim(self) -> None:
        oldest = self._newest - self.points + 1
        for bars in self._series.values():
            for b in [b for b in bars if b < oldest]:
                del bars[b]

    def get(self, key: str) -> list[float]:
        bars = self._series.get(key, {})
        return [bars[b] for b in sorted(bars)]


def pool_util_past(
    prom: PrometheusSource, end: float, points: int = POINTS, bucket_s: float = BUCKET_S
) -> dict[str, list[tuple[float, float]]]:
    """Each pool's mean GPU busy at the last `points` bar times up to `end` (one range query)."""
    ranges = prom.query_range(q.POOL_GPU_BUSY_AVG, end - (points - 1) * bucket_s, end, bucket_s)
    return {f"{r.labels.get('pool', '')}/{r.labels.get('region', '')}": list(r.samples) for r in ranges}
