"""Rolling-origin back-tests of the forecasters on a request series, and reading a request trace into buckets.

At each origin the forecasters see only the series before it and forecast the next `max(horizons)` buckets;
each horizon is scored on the bucket that many steps ahead. Pure: the caller reads the files.
"""

from __future__ import annotations

import csv
import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from console.readiness.forecast import Forecast, Series, coverage, mape, smape

Forecaster = Callable[[Series, Sequence[float]], Forecast]


def trace_buckets(paths: Sequence[Path], width_s: float, column: str = "TIMESTAMP") -> Series:
    """Requests per bucket of `width_s` from CSVs with one row per request (several files: one service that
    serves all of them); the first and last buckets are dropped (the trace starts and stops inside them)."""
    counts: Counter[int] = Counter()
    for path in paths:
        _count(path, width_s, column, counts)
    if len(counts) < 3:
        raise ValueError(f"{', '.join(map(str, paths))}: fewer than three {width_s:g} s buckets of requests")
    first, last = min(counts), max(counts)
    keys = range(first + 1, last)
    return Series(tuple(k * width_s for k in keys), tuple(float(counts[k]) for k in keys))


def _count(path: Path, width_s: float, column: str, counts: Counter[int]) -> None:
    with path.open(newline="") as f:
        for line, row in enumerate(csv.DictReader(f), start=2):
            text = (row.get(column) or "").strip()
            try:
                # Seven fractional digits: Python reads six.
                t = datetime.fromisoformat(text[:26]) if "." in text else datetime.fromisoformat(text)
            except ValueError:
                raise ValueError(f"{path}:{line}: {column}: {text!r} is not a timestamp") from None
            counts[int(t.timestamp() // width_s)] += 1


@dataclass
class Score:
    actual: list[float] = field(default_factory=list)
    point: list[float] = field(default_factory=list)
    lower: list[float] = field(default_factory=list)
    upper: list[float] = field(default_factory=list)

    def add(self, actual: float, f: Forecast, i: int) -> None:
        self.actual.append(actual)
        self.point.append(f.point[i])
        self.lower.append(f.lower[i])
        self.upper.append(f.upper[i])

    @property
    def smape(self) -> float:
        return smape(self.actual, self.point)

    @property
    def mape(self) -> float:
        return mape(self.actual, self.point)

    @property
    def coverage(self) -> float:
        return coverage(self.actual, self.lower, self.upper)

    @property
    def n(self) -> int:
        return len(self.actual)


def rolling_origin(
    series: Series,
    forecasters: dict[str, Forecaster],
    horizons: Sequence[int],
    *,
    min_train: int,
    every: int = 1,
    progress: Callable[[int, int], None] = lambda done, total: None,
) -> dict[tuple[str, int], Score]:
    """Scores by (forecaster, horizon in buckets)."""
    longest = max(horizons)
    step = series.step_s
    origins = list(range(min_train, len(series) - longest + 1, every))
    if not origins:
        raise ValueError(f"{len(series)} buckets: too few for {min_train} to train on and {longest} ahead")
    scores = {(name, h): Score() for name in forecasters for h in horizons}
    for done, o in enumerate(origins, start=1):
        history = series.head(o)
        future = [series.ts[o - 1] + step * k for k in range(1, longest + 1)]
        for name, fc in forecasters.items():
            f = fc(history, future)
            for h in horizons:
                scores[(name, h)].add(series.values[o + h - 1], f, h - 1)
        progress(done, len(origins))
    return scores


def overall(scores: dict[tuple[str, int], Score], name: str) -> float:
    """sMAPE over every horizon's forecasts together."""
    actual = [a for (n, _), s in scores.items() if n == name for a in s.actual]
    point = [p for (n, _), s in scores.items() if n == name for p in s.point]
    return smape(actual, point) if actual else math.nan
