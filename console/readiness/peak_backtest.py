"""The day-by-day back-test of the peak forecasters: for each of the last N complete days, a forecast of the
day's peak made `lead` before the day's end from only the series before then, scored on the actual peak
(pinball loss at 0.95, coverage, over-provision) and on the day's curve (MASE). Pure: a series in, scores out.
"""

from __future__ import annotations

import bisect
import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from console.readiness.forecast import DAY_S, Series
from console.readiness.peaks import (
    FALLBACK,
    LEVEL,
    METHODS,
    PeakForecast,
    analogs,
    calibrated,
    lead_steps,
    needed_analogs,
    prophet_peak,
    window_of,
)

PROPHET = "prophet"
NAMES = (*METHODS, PROPHET)


class BacktestError(ValueError):
    """The series cannot carry the back-test asked for; the message says why in the user's terms."""


@dataclass(frozen=True)
class Score:
    pinball95: float  # mean pinball loss at 0.95 of the daily peak ÷ the mean actual daily peak
    coverage: float  # share of test days whose actual peak is at or under the forecast P95
    over_median: float  # median of forecast P95 ÷ actual peak
    under_days: int
    test_days: int
    mase: float | None  # the day curve's mean absolute error ÷ the in-sample one-day seasonal-naive one
    fallback_days: int = 0  # test days the method lacked history for, forecast by FALLBACK instead

    def as_dict(self) -> dict[str, float | int | None]:
        return {
            "pinball95": self.pinball95,
            "coverage": self.coverage,
            "over_median": self.over_median,
            "under_days": self.under_days,
            "test_days": self.test_days,
            "mase": self.mase,
            "fallback_days": self.fallback_days,
        }


@dataclass
class _Tally:
    actual: list[float] = field(default_factory=list)
    p95: list[float] = field(default_factory=list)
    abs_errors: list[float] = field(default_factory=list)
    has_curve: bool = True
    fallbacks: int = 0

    def add(self, actual_peak: float, actual_curve: dict[int, float], f: PeakForecast) -> None:
        self.actual.append(actual_peak)
        self.p95.append(f.p95)
        if f.curve is None:
            self.has_curve = False
            return
        self.abs_errors += [abs(v - f.curve[o]) for o, v in actual_curve.items() if o in f.curve]

    def score(self, scale: float) -> Score:
        n = len(self.actual)
        losses = [
            LEVEL * (y - q) if y >= q else (1 - LEVEL) * (q - y) for y, q in zip(self.actual, self.p95, strict=True)
        ]
        mean_peak = sum(self.actual) / n
        under = sum(y > q for y, q in zip(self.actual, self.p95, strict=True))
        over = [q / y for y, q in zip(self.actual, self.p95, strict=True) if y > 0]
        mase = None
        if self.has_curve and self.abs_errors and scale > 0:
            mase = (sum(self.abs_errors) / len(self.abs_errors)) / scale
        return Score(
            pinball95=(sum(losses) / n) / mean_peak if mean_peak > 0 else math.nan,
            coverage=(n - under) / n,
            over_median=statistics.median(over) if over else math.nan,
            under_days=under,
            test_days=n,
            mase=mase,
            fallback_days=self.fallbacks,
        )


def complete_days(series: Series) -> list[float]:
    """Starts (Unix seconds, UTC midnight) of the days the series spans from end to end."""
    if not series.ts:
        return []
    step = series.step_s or DAY_S
    first = math.ceil(series.ts[0] / DAY_S - 1e-9) * DAY_S
    last = math.floor((series.ts[-1] + step) / DAY_S + 1e-9) * DAY_S  # the end of the last whole day
    return [first + k * DAY_S for k in range(round((last - first) / DAY_S))]


def until(series: Series, t: float) -> Series:
    """The buckets that ended by `t`: what was known then."""
    n = bisect.bisect_right(series.ts, t - (series.step_s or 0.0) + 1e-6)
    return series.head(n)


def in_sample_scale(series: Series, before: float) -> float:
    """Mean |y(t) - y(t - 1 day)| over the buckets before `before`: the one-day seasonal-naive error."""
    at = dict(zip(series.ts, series.values, strict=True))
    errors = [abs(v - at[t - DAY_S]) for t, v in at.items() if t < before and t - DAY_S in at]
    return sum(errors) / len(errors) if errors else math.nan


def required_days(test_days: int, lead_s: float) -> int:
    """Complete days the series must hold: the test days, and before the first what the fallback needs."""
    ahead = lead_steps(0.0, DAY_S, DAY_S - lead_s)
    # A method short of history on a day falls back to FALLBACK, as readiness does: that one must have it.
    return test_days + needed_analogs(FALLBACK, ahead) + ahead - 1


def check(series: Series, test_days: int, lead_s: float) -> list[float]:
    """The test days' starts; BacktestError when the lead or the series cannot carry them."""
    if lead_s < DAY_S:
        raise BacktestError(f"lead {lead_s / 3600:g} h: under a day, the forecast would see part of its day")
    days = complete_days(series)
    need = required_days(test_days, lead_s)
    if len(days) < need:
        raise BacktestError(
            f"{len(days)} complete days; {test_days} test days with a {lead_s / DAY_S:g} d lead need {need} "
            f"({need - test_days} before the first test day)"
        )
    return days[-test_days:]


def backtest(
    series: Series,
    names: Sequence[str],
    test_days: int,
    lead_s: float = DAY_S,
    progress: Callable[[int, int], None] = lambda done, total: None,
) -> dict[str, Score]:
    """Scores by method name. Each test day's forecast sees only the buckets that ended `lead_s` before the
    day's end (1 day: at the day's midnight)."""
    tests = check(series, test_days, lead_s)
    tallies = {n: _Tally() for n in names}
    scale = in_sample_scale(series, tests[0] + DAY_S - lead_s)
    for done, day in enumerate(tests, start=1):
        origin = day + DAY_S - lead_s
        known = until(series, origin)
        actual_curve = window_of(series, day, DAY_S)
        actual = max(actual_curve.values())
        a = analogs(known, day, DAY_S, origin)
        fallback = calibrated(a, METHODS[FALLBACK])
        if fallback is None:  # check() said it would: a gap inside the history took an analog away
            raise BacktestError(f"too few known days before {_day(day)} for {FALLBACK} (a gap in the series?)")
        for n in names:
            f = prophet_peak(known, day, DAY_S, origin) if n == PROPHET else calibrated(a, METHODS[n])
            if f is None:
                tallies[n].fallbacks += 1
            tallies[n].add(actual, actual_curve, f or fallback)
        progress(done, len(tests))
    return {n: t.score(scale) for n, t in tallies.items()}


def _day(t: float) -> str:
    from datetime import UTC, datetime

    return f"{datetime.fromtimestamp(t, UTC):%Y-%m-%d}"
