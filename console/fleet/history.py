"""The last minutes of each pool's utilisation, kept in memory from successive snapshots (the sparklines)."""

from __future__ import annotations

from collections import defaultdict, deque

from console.fleet.snapshot import FleetSnapshot


class History:
    def __init__(self, points: int = 60):
        self._series: dict[str, deque[float]] = defaultdict(lambda: deque(maxlen=points))
        self._last: FleetSnapshot | None = None

    def add(self, snap: FleetSnapshot) -> None:
        if snap is self._last or snap.failing():
            return  # a failing source's rows are stale: repeating them would draw a flat line that is not real
        self._last = snap
        for p in snap.pools:
            self._series[p.key].append(p.util)

    def get(self, key: str) -> list[float]:
        return list(self._series.get(key, ()))
