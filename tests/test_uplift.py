"""Readiness learns an event's uplift from a past event in the history: the past event's hours are left out
of the forecast, and its peak over the same clock window's usual peak replaces the catalog's prior."""

from __future__ import annotations

import math
import statistics

import pytest

from console.readiness.demand import PastEvent, forecast_demand, learned_uplift, without_events
from console.readiness.forecast import Series

DAY = 86400.0
STEP = 1800.0
T0 = 1_780_000_000.0 - 1_780_000_000.0 % DAY  # a midnight


def daily(days: int, lift: dict[int, float] | None = None, start_h: float = 18, hours: float = 4) -> Series:
    """A daily curve (peak at 18:00), each day a little different; day k's [start_h, start_h + hours) times
    lift[k]."""
    lift = lift or {}
    ts, vs = [], []
    for i in range(int(days * DAY / STEP)):
        t = T0 + i * STEP
        k, h = int(i * STEP // DAY), (i * STEP % DAY) / 3600
        v = 100 + 60 * math.cos(2 * math.pi * (h - 18) / 24) + 3 * (k % 5)
        ts.append(t)
        vs.append(v * (lift.get(k, 1.0) if start_h <= h < start_h + hours else 1.0))
    return Series(tuple(ts), tuple(vs))


def window_peak(s: Series, start: float, end: float) -> float:
    return max(v for t, v in zip(s.ts, s.values, strict=True) if start <= t < end)


def test_the_uplift_is_the_events_peak_over_the_usual_peak_of_its_window() -> None:
    s = daily(14, {9: 2.5})
    ev = PastEvent("gala-rehearsal", T0 + 9 * DAY + 18 * 3600, T0 + 9 * DAY + 22 * 3600)
    u = learned_uplift(s, [ev])
    assert u is not None and u.event == "gala-rehearsal" and u.days == 7
    # Computed here from the series as built: the same four hours on each of the seven days before.
    usual = statistics.median(window_peak(s, ev.start - k * DAY, ev.end - k * DAY) for k in range(1, 8))
    assert u.usual_rps == pytest.approx(usual)
    assert u.factor == pytest.approx(window_peak(s, ev.start, ev.end) / usual)
    assert 2.3 < u.factor < 2.7


def test_no_uplift_without_a_whole_past_event_and_plain_days_before_it() -> None:
    s = daily(14, {1: 2.5})
    early = PastEvent("early", T0 + DAY + 18 * 3600, T0 + DAY + 22 * 3600)  # one plain day before it
    assert learned_uplift(s, [early]) is None
    cut = PastEvent("cut", T0 + 13 * DAY + 22 * 3600, T0 + 14 * DAY + 4 * 3600)  # runs past the history's end
    assert learned_uplift(s, [cut]) is None
    assert learned_uplift(s, []) is None


def test_the_forecast_leaves_the_past_event_out_and_sizes_on_the_learned_uplift() -> None:
    s = daily(21, {14: 3.0})
    ev = PastEvent("gala-rehearsal", T0 + 14 * DAY + 18 * 3600, T0 + 14 * DAY + 22 * 3600)
    now = s.ts[-1] + STEP
    start, end = now + 18 * 3600, now + 22 * 3600  # tomorrow's evening (the history ends at a midnight)
    plain = forecast_demand(s, start, end, now, 2.0)
    learned = forecast_demand(s, start, end, now, 2.0, past=[ev])
    assert plain is not None and learned is not None
    assert plain.uplift is None and plain.prior == 2.0
    assert learned.uplift is not None and learned.prior == 2.0
    # A week before the window is the past event's day, left out: the default method still forecasts (its
    # same-weekday view reads the week before that), rather than falling back.
    assert learned.method == plain.method == "peak-ensemble"
    # Sized on the learned uplift; the forecast peak itself read from the plain days only.
    cleaned = forecast_demand(without_events(s, [ev]), start, end, now, learned.uplift.factor)
    assert cleaned is not None
    assert learned.peak_rps == pytest.approx(cleaned.peak_rps)
    assert learned.peak_rps / learned.uplift.factor < plain.peak_rps / 2.0  # the spike no longer lifts the analogs
    assert len(without_events(s, [ev])) == len(s) - round(4 * 3600 / STEP)
