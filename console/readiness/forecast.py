"""Request-rate forecasts: Prophet, and the seasonal-naive and last-value baselines it must beat. Pure: series in,
forecast out; nothing here reads Prometheus.

A series is two equal-length sequences, Unix seconds and values, evenly spaced. Every forecaster returns a
point forecast and an 80 % interval for the times asked.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

INTERVAL = 0.80  # the width of every forecaster's interval
DAY_S = 86400.0
TREND_REACH = 0.25  # how far past the history its trend is carried, as a share of the history's span


@dataclass(frozen=True)
class Series:
    ts: tuple[float, ...]
    values: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.ts) != len(self.values):
            raise ValueError(f"{len(self.ts)} times but {len(self.values)} values")

    def __len__(self) -> int:
        return len(self.ts)

    @property
    def step_s(self) -> float:
        """The spacing of its points (the median gap: a series may miss a few)."""
        gaps = sorted(b - a for a, b in zip(self.ts, self.ts[1:], strict=False))
        return gaps[len(gaps) // 2] if gaps else 0.0

    @property
    def span_s(self) -> float:
        return self.ts[-1] - self.ts[0] if self.ts else 0.0

    def head(self, n: int) -> Series:
        return Series(self.ts[:n], self.values[:n])


@dataclass(frozen=True)
class Forecast:
    method: str
    ts: tuple[float, ...]
    point: tuple[float, ...]
    lower: tuple[float, ...]
    upper: tuple[float, ...]

    def peak(self) -> float:
        return max(self.point, default=0.0)

    def peak_upper(self) -> float:
        return max(self.upper, default=0.0)


def quantile(xs: Sequence[float], q: float) -> float:
    s = sorted(xs)
    if not s:
        return 0.0
    i = q * (len(s) - 1)
    lo, hi = math.floor(i), math.ceil(i)
    return s[lo] + (s[hi] - s[lo]) * (i - lo)


def _banded(method: str, future: Sequence[float], point: Sequence[float], errors: Sequence[float]) -> Forecast:
    """A point forecast with the interval its method's own past errors (actual minus forecast) give."""
    tail = (1 - INTERVAL) / 2
    lo, hi = quantile(errors, tail), quantile(errors, 1 - tail)
    return Forecast(
        method, tuple(future), tuple(point), tuple(max(0.0, p + lo) for p in point), tuple(p + hi for p in point)
    )


def resample(points: Sequence[tuple[float, float]], step_s: float) -> Series:
    """Points (time, value) averaged into buckets of `step_s`; a bucket without points is left out."""
    sums: dict[int, list[float]] = {}
    for t, v in points:
        if math.isfinite(t) and math.isfinite(v):
            sums.setdefault(int(t // step_s), []).append(v)
    keys = sorted(sums)
    return Series(tuple(k * step_s for k in keys), tuple(sum(sums[k]) / len(sums[k]) for k in keys))


def last_value(history: Series, future: Sequence[float]) -> Forecast:
    """Tomorrow is today's last reading; the interval from its one-step errors over the history."""
    errors = [b - a for a, b in zip(history.values, history.values[1:], strict=False)]
    return _banded("last-value", future, [history.values[-1]] * len(future), errors)


def seasonal_naive(history: Series, future: Sequence[float], season_s: float) -> Forecast:
    """Each time takes the value one (or more) whole seasons before it, the latest the history holds."""
    step = history.step_s or 1.0
    lag = max(1, round(season_s / step))
    t0 = history.ts[0]
    at = {round((t - t0) / step): v for t, v in zip(history.ts, history.values, strict=True)}
    last = max(at)
    point = []
    for t in future:
        i = round((t - t0) / step)
        while i > last or (i not in at and i >= 0):
            i -= lag
        point.append(at.get(i, history.values[-1]))
    return _banded("seasonal-naive", future, point, [v - at[i - lag] for i, v in at.items() if i - lag in at])


def prophet(
    history: Series,
    future: Sequence[float],
    *,
    holidays: Sequence[tuple[str, float, float]] = (),
) -> Forecast:
    """Prophet: a piecewise-linear trend, daily seasonality from two days of history, weekly from two weeks.

    Fitted to the square root of the rates: request counts are Poisson-like, their spread grows with their
    level, and the root makes it even (and keeps the forecast from going below zero). The trend may bend
    more than Prophet's default (changepoint prior 0.5, not 0.05): a request rate's level moves within the
    hour, and a stiff trend carries an old slope into the forecast.
    `holidays` are past events (name, start, end) in the history, so their spikes are learned as their own
    effect and do not lift the baseline.
    """
    # cmdstanpy sets its logger to INFO at its first fit (two lines per fit), and Prophet says at import that
    # plotly is missing: neither is for an operator's terminal.
    logging.getLogger("cmdstanpy").disabled = True
    logging.getLogger("prophet.plot").disabled = True
    import pandas as pd
    from prophet import Prophet

    frame = pd.DataFrame(
        {"ds": pd.to_datetime(list(history.ts), unit="s"), "y": [math.sqrt(max(0.0, v)) for v in history.values]}
    )
    hol = None
    if holidays:
        step = history.step_s or 60.0
        rows = [
            {"holiday": name, "ds": pd.Timestamp(start + k * step, unit="s")}
            for name, start, end in holidays
            for k in range(max(1, math.ceil((end - start) / step)))
        ]
        hol = pd.DataFrame(rows)
    model = Prophet(
        interval_width=INTERVAL,
        changepoint_prior_scale=0.5,
        daily_seasonality=history.span_s >= 2 * DAY_S,
        weekly_seasonality=history.span_s >= 14 * DAY_S,
        yearly_seasonality=False,
        holidays=hol,
        uncertainty_samples=200,
    )
    model.fit(frame)
    out = model.predict(pd.DataFrame({"ds": pd.to_datetime(list(future), unit="s")}))
    # The trend goes on for a quarter of the history's span, then holds: a slope fitted on four days and
    # carried a month says more about the fit than about the event (the event's growth is its multiplier).
    until = history.ts[-1] + TREND_REACH * history.span_s
    held = model.predict(pd.DataFrame({"ds": pd.to_datetime([min(t, until) for t in future], unit="s")}))
    shift = [float(a) - float(b) for a, b in zip(held["trend"], out["trend"], strict=True)]

    def back(col: str) -> tuple[float, ...]:
        return tuple(max(0.0, float(v) + d) ** 2 for v, d in zip(out[col], shift, strict=True))

    return Forecast("prophet", tuple(future), back("yhat"), back("yhat_lower"), back("yhat_upper"))


# --- how good a forecast was -------------------------------------------------------------------------------


def smape(actual: Sequence[float], forecast: Sequence[float]) -> float:
    """Symmetric MAPE in percent (0..200); a pair of zeros is a perfect forecast."""
    terms = [0.0 if a == f == 0 else 2 * abs(f - a) / (abs(a) + abs(f)) for a, f in zip(actual, forecast, strict=True)]
    return 100 * sum(terms) / len(terms) if terms else math.nan


def mape(actual: Sequence[float], forecast: Sequence[float]) -> float:
    """MAPE in percent over the non-zero actuals (a zero actual has no percentage error)."""
    terms = [abs(f - a) / abs(a) for a, f in zip(actual, forecast, strict=True) if a != 0]
    return 100 * sum(terms) / len(terms) if terms else math.nan


def coverage(actual: Sequence[float], lower: Sequence[float], upper: Sequence[float]) -> float:
    """The share of actuals inside the interval, in percent."""
    inside = [lo <= a <= hi for a, lo, hi in zip(actual, lower, upper, strict=True)]
    return 100 * sum(inside) / len(inside) if inside else math.nan
