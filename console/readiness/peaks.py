"""The peak of a window (an event's hours, or a whole day) forecast days ahead, as a calibrated P95.

Sizing rests on the highest load the window will see, not on its mean curve: a smooth curve's maximum sits
below a spiky real peak. So every method here forecasts the window's peak from its *analogs* — the same
clock window on each earlier day — and is turned into a P95 the same way: its point forecast times the 95th
percentile of its own past ratios actual ÷ forecast (split-conformal calibration), each past forecast made
with the same lead from only what was known then. Pure: series in, numbers out.

Indices: analog 0 is the oldest known window, the last known one is `len - 1`, and the target lies `ahead`
analogs past it (1 for tomorrow's window forecast at midnight, 7 for a week ahead). A forecast for analog
`x` reads only analogs up to `x - ahead`.
"""

from __future__ import annotations

import bisect
import functools
import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from console.readiness.forecast import DAY_S, Series, quantile

LEVEL = 0.95
MIN_CALIBRATION = 5  # past forecasts a P95 is calibrated on, at the least
RECENT = 7  # analogs a level is read from: a week, so every weekday counts once
WEEKDAY_SHRINK = 0.5  # a weekday effect read from a few weeks is noisy: take half of it in log terms


@dataclass(frozen=True)
class Analogs:
    """The known analog windows of one target window, oldest first."""

    peaks: tuple[float, ...]  # each window's highest bucket (NaN: no bucket in it)
    levels: tuple[float, ...]  # each window's median bucket: its ordinary load, spikes aside
    curves: tuple[dict[int, float], ...]  # bucket offset in the window -> value
    ahead: int  # analogs between the last known one and the target

    def __len__(self) -> int:
        return len(self.peaks)

    @property
    def target(self) -> int:
        return len(self.peaks) - 1 + self.ahead


def lead_steps(start: float, duration: float, origin: float) -> int:
    """How many days past the last analog that ends by `origin` the window lies (1 at least)."""
    return max(1, math.ceil((start + duration - origin) / DAY_S - 1e-9))


def window_of(series: Series, start: float, duration: float) -> dict[int, float]:
    """The buckets of `series` in [start, start + duration), by offset from start in steps."""
    step = series.step_s or 1.0
    lo, hi = bisect.bisect_left(series.ts, start), bisect.bisect_left(series.ts, start + duration)
    return {round((series.ts[i] - start) / step): series.values[i] for i in range(lo, hi)}


def analogs(series: Series, start: float, duration: float, origin: float, ahead: int | None = None) -> Analogs:
    """The analogs of [start, start + duration) known at `origin`: the same window k days earlier, for every
    k whose window ends by the origin and begins at or after the series' first bucket. `ahead` may be given
    smaller than the lead (a history shorter than the lead); the caller says so."""
    m = lead_steps(start, duration, origin) if ahead is None else ahead
    first = series.ts[0] if series.ts else start
    oldest = math.floor((start - first) / DAY_S + 1e-9)
    peaks, levels, curves = [], [], []
    for k in range(oldest, m - 1, -1):
        w = window_of(series, start - k * DAY_S, duration)
        vals = list(w.values())
        peaks.append(max(vals) if vals else math.nan)
        levels.append(statistics.median(vals) if vals else math.nan)
        curves.append(w)
    return Analogs(tuple(peaks), tuple(levels), tuple(curves), m)


# --- point forecasts of analog x's peak, from analogs up to x - ahead ---------------------------------------


def _finite(xs: Sequence[float]) -> list[float]:
    return [x for x in xs if math.isfinite(x)]


def _recent(xs: Sequence[float], x: int, ahead: int) -> list[float]:
    last = x - ahead
    return _finite(xs[max(0, last - RECENT + 1) : last + 1]) if last >= RECENT - 1 else []


def _weekday_factor(xs: Sequence[float], x: int, ahead: int) -> float:
    """How analog x's weekday sits against the week before it, from the same weekday in earlier weeks."""
    logs = []
    for y in range(x - 7, -1, -7):
        if y > x - ahead:
            continue
        recent = _recent(xs, y, ahead)
        if not recent or not math.isfinite(xs[y]) or xs[y] <= 0 or statistics.median(recent) <= 0:
            break
        logs.append(math.log(xs[y] / statistics.median(recent)))
    return math.exp(WEEKDAY_SHRINK * statistics.median(logs)) if logs else 1.0


def _season_lag(ahead: int) -> int:
    return 7 * math.ceil(ahead / 7)


def naive1d(a: Analogs, x: int) -> float | None:
    """The latest known analog's peak (seasonal-naive, one day)."""
    i = x - a.ahead
    return a.peaks[i] if 0 <= i < len(a) and math.isfinite(a.peaks[i]) else None


def naive7d(a: Analogs, x: int) -> float | None:
    """The peak of the latest known analog on the same weekday (seasonal-naive, seven days); a week with no
    bucket there (a past event's hours left out, an outage of the metrics) gives way to the week before."""
    for i in range(x - _season_lag(a.ahead), -1, -7):
        if i < len(a) and math.isfinite(a.peaks[i]):
            return a.peaks[i]
    return None


def max7(a: Analogs, x: int) -> float | None:
    """The highest of the last seven known analog peaks."""
    recent = _recent(a.peaks, x, a.ahead)
    return max(recent) if recent else None


def _weekly_level(xs: Sequence[float], x: int, ahead: int) -> float | None:
    recent = _recent(xs, x, ahead)
    return statistics.median(recent) * _weekday_factor(xs, x, ahead) if recent else None


def ensemble(a: Analogs, x: int) -> float | None:
    """The median of four views of the coming peak, each robust to a past spike in its own way: the week's
    median peak and the week's median level (each with its weekday effect), that level times the week's
    median peak-to-level ratio, and the same weekday's peak last week. They err differently, and the median
    of four (the mean of the middle two) leaves out the view that is furthest off on the day.
    """
    if x - _season_lag(a.ahead) < 0:
        return None
    peak = _weekly_level(a.peaks, x, a.ahead)
    level = _weekly_level(a.levels, x, a.ahead)
    lo = max(0, x - a.ahead - RECENT + 1)
    ratios = [p / v for p, v in zip(a.peaks[lo : x - a.ahead + 1], a.levels[lo : x - a.ahead + 1], strict=True)
              if math.isfinite(p) and math.isfinite(v) and v > 0]  # fmt: skip
    spiky = level * statistics.median(ratios) if level is not None and ratios else None
    views = [v for v in (peak, level, spiky, naive7d(a, x)) if v is not None and math.isfinite(v) and v > 0]
    return statistics.median(views) if len(views) == 4 else None


# --- the day's curve, for the curve error (MASE) -----------------------------------------------------------


def curve_naive1d(a: Analogs, x: int) -> dict[int, float] | None:
    i = x - a.ahead
    return a.curves[i] if 0 <= i < len(a) else None


def curve_naive7d(a: Analogs, x: int) -> dict[int, float] | None:
    i = x - _season_lag(a.ahead)
    return a.curves[i] if 0 <= i < len(a) else None


def curve_ensemble(a: Analogs, x: int) -> dict[int, float] | None:
    """Bucket by bucket, the median of the last seven known analogs, with the level's weekday effect."""
    last = x - a.ahead
    if last < RECENT - 1:
        return None
    week = a.curves[last - RECENT + 1 : last + 1]
    factor = _weekday_factor(a.levels, x, a.ahead)
    same_day = curve_naive7d(a, x) or {}
    offsets = sorted({o for c in week for o in c})
    # Half the week's median shape (its weekday effect on the level), half last week's same day (the
    # weekday's own shape: a Sunday's curve is not a Tuesday's).
    out = {}
    for o in offsets:
        typical = statistics.median([c[o] for c in week if o in c]) * factor
        out[o] = (typical + same_day[o]) / 2 if o in same_day else typical
    return out


@dataclass(frozen=True)
class Method:
    name: str
    point: Callable[[Analogs, int], float | None]
    curve: Callable[[Analogs, int], dict[int, float] | None] | None


DEFAULT = "peak-ensemble"
METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method(DEFAULT, ensemble, curve_ensemble),
        Method("naive1d", naive1d, curve_naive1d),
        Method("naive7d", naive7d, curve_naive7d),
        Method("max7", max7, None),
    )
}
FALLBACK = "naive1d"  # what readiness uses when the history is too short for the default


# --- calibration -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PeakForecast:
    method: str
    point: float  # the method's own forecast of the peak
    p95: float  # point x the 95th percentile of its past ratios
    calibrated_on: int  # how many past ratios
    covered: int  # of the past forecasts calibrated like this one, how many held the actual peak
    checked: int  # how many such past forecasts there were (the method's own back-test)
    curve: dict[int, float] | None = None

    @property
    def coverage(self) -> float:
        return self.covered / self.checked if self.checked else math.nan


def ratios(a: Analogs, method: Method) -> list[tuple[int, float]]:
    """(analog, actual ÷ forecast) for every known analog the method could forecast."""
    out = []
    for x in range(len(a)):
        f = method.point(a, x)
        if f is not None and f > 0 and math.isfinite(a.peaks[x]):
            out.append((x, a.peaks[x] / f))
    return out


def calibrated(a: Analogs, method: Method) -> PeakForecast | None:
    """The method's P95 of the target's peak; None when it cannot forecast it or has fewer than
    MIN_CALIBRATION past forecasts to calibrate on."""
    point = method.point(a, a.target)
    past = ratios(a, method)
    if point is None or len(past) < MIN_CALIBRATION:
        return None
    q = quantile([r for _, r in past], LEVEL)
    # Its own back-test: each past forecast calibrated on the ratios known at its origin.
    covered = checked = 0
    for i, (x, r) in enumerate(past):
        known = [s for y, s in past[:i] if y <= x - a.ahead]
        if len(known) >= MIN_CALIBRATION:
            checked += 1
            covered += r <= quantile(known, LEVEL)
    curve = method.curve(a, a.target) if method.curve else None
    return PeakForecast(method.name, point, point * q, len(past), covered, checked, curve)


@functools.cache  # asked per row and per method; the answer depends on these two alone
def needed_analogs(method: str, ahead: int) -> int:
    """Known analogs a method needs before it can forecast and calibrate (found by trying: the rules above
    are the definition)."""
    m = METHODS[method]
    for n in range(1, 400):
        probe = Analogs((1.0,) * n, (1.0,) * n, ({0: 1.0},) * n, ahead)
        if calibrated(probe, m) is not None:
            return n
    raise ValueError(f"{method}: no history is long enough")


def prophet_peak(history: Series, start: float, duration: float, origin: float) -> PeakForecast | None:
    """Prophet's curve over the window, its maximum the point; calibrated like the others, but on its fit
    to the analogs it was fitted on (one fit, not one per past origin: its ratios are in-sample, so its P95
    is, if anything, low)."""
    from console.readiness.forecast import prophet

    a = analogs(history, start, duration, origin)
    known = [(x, sorted(c)) for x, c in enumerate(a.curves) if c and math.isfinite(a.peaks[x])]
    if len(known) < MIN_CALIBRATION or len(history) < 2:
        return None
    step = history.step_s or 1.0
    target = [start + k * step for k in range(max(1, round(duration / step)))]
    first = start - (len(a) - 1 + a.ahead) * DAY_S  # analog 0's start
    times = [first + x * DAY_S + o * step for x, offsets in known for o in offsets]
    f = prophet(history, [*times, *target])
    fitted, i = [], 0
    for x, offsets in known:
        fitted.append((x, max(f.point[i : i + len(offsets)])))
        i += len(offsets)
    curve = dict(enumerate(f.point[i:]))
    point = max(curve.values())
    past = [a.peaks[x] / p for x, p in fitted if p > 0]
    if len(past) < MIN_CALIBRATION:
        return None
    q = quantile(past, LEVEL)
    covered = sum(r <= q for r in past)
    return PeakForecast("prophet", point, point * q, len(past), covered, len(past), curve)
