"""An event window's demand: the calibrated P95 of its peak request rate, times the event's uplift — learned
from a past event the history holds (`learned_uplift`), else the catalog's multiplier, its prior.

The default method (peaks.DEFAULT) needs weeks of history; with less, the named fallback (peaks.FALLBACK),
and with less than that the highest rate the history holds in the window's clock hours, uncalibrated. Each
step down is said in the Demand's note: readiness never rests on a thin forecast silently. Pure.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from console.readiness.forecast import DAY_S, Series
from console.readiness.peaks import (
    DEFAULT,
    FALLBACK,
    METHODS,
    Analogs,
    PeakForecast,
    analogs,
    calibrated,
    needed_analogs,
    prophet_peak,
    window_of,
)
from console.timefmt import age

MAX_SEEN = "max-seen"
BASELINES = ("naive1d", "naive7d", "max7")

# A forecaster of the window's peak from the history, given the window [start, start + duration) and the
# origin `now`; None when the history is too short for it.
PeakForecaster = Callable[[Series, float, float, float], PeakForecast | None]


MIN_PLAIN_DAYS = 3  # days before a past event an uplift is measured against, at the least
PLAIN_DAYS = 7  # and at the most: a week, every weekday once


@dataclass(frozen=True)
class PastEvent:
    """An event the history holds (one of the catalog's, already over): [start, end) in Unix seconds."""

    name: str
    start: float
    end: float


@dataclass(frozen=True)
class Uplift:
    """How much a past event lifted this series: its window's peak over the same clock window's usual peak
    (the median of the days before it)."""

    event: str
    factor: float
    usual_rps: float
    days: int  # the plain days the usual peak is the median of


@dataclass(frozen=True)
class Demand:
    method: str
    peak_rps: float  # the P95 of the window's peak x the multiplier: what the fleet is sized on
    point_rps: float  # the method's own forecast of the peak x the multiplier
    coverage: float | None  # its own back-test on this history: the share of past windows its P95 held
    checked: int  # how many past windows that back-test had
    baselines: dict[str, float] = field(default_factory=dict)  # baseline -> its P95 x the multiplier
    history_points: int = 0
    note: str = ""
    uplift: Uplift | None = None  # learned from the history; None: the catalog's multiplier was used
    prior: float = 1.0  # the catalog's multiplier


def _shorter_lead(a: Analogs) -> Analogs:
    """The same analogs as if the window were the next day of the same weekday past the last one known:
    when the history is shorter than the lead, a shorter lead is all it can calibrate."""
    return Analogs(a.peaks, a.levels, a.curves, (a.ahead - 1) % 7 + 1)


# By name, for the command line; None is the default (its fallbacks say how far back they reach).
FORECASTERS: dict[str, PeakForecaster | None] = {DEFAULT: None, "prophet": prophet_peak}


def _by_analogs(a: Analogs, method: str) -> tuple[PeakForecast | None, str]:
    """The method's P95 on these analogs; with a history shorter than the lead, on a shorter lead, said."""
    f = calibrated(a, METHODS[method])
    if f is not None or len(a) >= needed_analogs(method, a.ahead):
        return f, ""
    short = _shorter_lead(a)
    f = calibrated(short, METHODS[method])
    if f is None:
        return None, ""
    return f, (f"the window is {a.ahead} days past the last one known; {len(a)} days of history calibrate "
               f"a {short.ahead}-day lead")  # fmt: skip


def max_seen(history: Series, start: float, duration: float) -> tuple[float, bool]:
    """The highest rate in the window's clock hours on any day of the history, and True; when the history
    holds none of those hours, the highest rate it holds, and False."""
    step = history.step_s or 1.0
    inside = [v for t, v in zip(history.ts, history.values, strict=True)
              if (t - start) % DAY_S < max(duration, step)]  # fmt: skip
    return (max(inside), True) if inside else (max(history.values), False)


def _inside(t: float, past: Sequence[PastEvent]) -> bool:
    return any(p.start <= t < p.end for p in past)


def without_events(history: Series, past: Sequence[PastEvent]) -> Series:
    """The history with the past events' hours taken out: an event's spike is not ordinary demand, and left
    in it would lift every forecast of that window's analogs."""
    keep = [i for i, t in enumerate(history.ts) if not _inside(t, past)]
    if len(keep) == len(history):
        return history
    return Series(tuple(history.ts[i] for i in keep), tuple(history.values[i] for i in keep))


def learned_uplift(history: Series, past: Sequence[PastEvent]) -> Uplift | None:
    """The latest past event's uplift in `history`: its window's highest rate over the median of that clock
    window's highest rate on the (up to a week of) days before it that no past event touched. None when no
    past event lies whole in the history with at least MIN_PLAIN_DAYS plain days before it."""
    if not history.ts:
        return None
    first, last = history.ts[0], history.ts[-1]
    for ev in sorted(past, key=lambda p: p.end, reverse=True):
        if ev.start < first or ev.end > last + (history.step_s or 0.0):
            continue
        during = list(window_of(history, ev.start, ev.end - ev.start).values())
        usual = []
        for k in range(1, PLAIN_DAYS + 1):
            day = ev.start - k * DAY_S
            if day < first:
                break
            if any(p.start < day + (ev.end - ev.start) and day < p.end for p in past):
                continue
            vals = list(window_of(history, day, ev.end - ev.start).values())
            if vals:
                usual.append(max(vals))
        if not during or len(usual) < MIN_PLAIN_DAYS:
            continue
        base = statistics.median(usual)
        if base > 0 and math.isfinite(base):
            return Uplift(ev.name, max(during) / base, base, len(usual))
    return None


def forecast_demand(
    history: Series | None,
    start: float,
    end: float,
    now: float,
    multiplier: float,
    forecaster: PeakForecaster | None = None,
    past: Sequence[PastEvent] = (),
) -> Demand | None:
    """The P95 of the peak over [max(start, now), end), times the event's uplift (the event has not happened:
    its effect is what a past event showed, or the catalog's prior), with the baselines' P95s beside it. The
    past events' own hours are left out of what the peak is forecast from."""
    if history is None or len(history) == 0:
        return None
    uplift = learned_uplift(history, past)
    prior, multiplier = multiplier, uplift.factor if uplift else multiplier
    history = without_events(history, past)
    if len(history) == 0:
        return None
    start = max(start, now)
    duration = max(end - start, history.step_s or 1.0)
    a = analogs(history, start, duration, now)  # once: every method reads the same windows
    baselines = {}
    for name in BASELINES:
        b, _ = _by_analogs(a, name)
        if b is not None:
            baselines[name] = b.p95 * multiplier
    f, note = (forecaster(history, start, duration, now), "") if forecaster else _by_analogs(a, DEFAULT)
    wanted = DEFAULT if forecaster is None else "the chosen method"
    if f is None:
        need = needed_analogs(DEFAULT, min(a.ahead, 7))
        days = f"{age(history.span_s)} of history"
        f, note = _by_analogs(a, FALLBACK)
        if f is not None:
            note = f"{days}: {wanted} needs about {need} days; {FALLBACK} instead" + (f" ({note})" if note else "")
    if f is None:
        peak, in_hours = max_seen(history, start, duration)
        where = "in the window's hours" if in_hours else "(none of it in the window's hours)"
        # The points are the resampled buckets, not the samples: say how far apart, or "25 points" reads as
        # 25 scrapes whatever the history held.
        note = (f"{age(history.span_s)} of history ({len(history)} points {age(history.step_s)} apart): too little "
                "to calibrate any method; "
                f"the highest rate seen {where}, x {multiplier:g}")  # fmt: skip
        return Demand(MAX_SEEN, peak * multiplier, peak * multiplier, None, 0, baselines, len(history), note,
                      uplift, prior)  # fmt: skip
    coverage = f.coverage if f.checked else None
    return Demand(f.method, f.p95 * multiplier, f.point * multiplier, coverage, f.checked, baselines, len(history),
                  note, uplift, prior)  # fmt: skip
