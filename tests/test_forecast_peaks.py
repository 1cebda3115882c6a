"""`gpuops forecast backtest` on a small series made here (daily shape, weekly shape, spikes), every figure
checked against a computation written here from the definitions, with numpy; and its refusals of bad input.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from console.readiness.demand import MAX_SEEN, forecast_demand
from console.readiness.forecast import Series
from console.sources.prometheus import PrometheusSource, Range

ROOT = Path(__file__).resolve().parent.parent
START = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday
DAYS, TEST_DAYS, PER_DAY = 30, 8, 24  # hourly buckets
SPIKES = {9: 3.0, 17: 2.2, 24: 2.8, 27: 1.9}  # day -> how much higher its 20:00 hour runs


def level(day: int, hour: int) -> float:
    daily = 100 + 60 * math.sin(2 * math.pi * (hour - 6) / 24)  # low at midnight, high at noon
    weekly = 0.6 if (START + timedelta(days=day)).weekday() >= 5 else 1.0
    growth = 1 + 0.01 * day
    wobble = 1 + 0.05 * math.sin(day * 7.3 + hour * 1.7)  # deterministic noise
    spike = SPIKES.get(day, 1.0) if hour == 20 else 1.0
    return daily * weekly * growth * wobble * spike


@pytest.fixture(scope="module")
def values() -> np.ndarray:
    return np.array([[level(d, h) for h in range(PER_DAY)] for d in range(DAYS)])


@pytest.fixture(scope="module")
def series_csv(tmp_path_factory: pytest.TempPathFactory, values: np.ndarray) -> Path:
    path = tmp_path_factory.mktemp("series") / "demand.csv"
    rows = ["when,requests"]
    for d in range(DAYS):
        for h in range(PER_DAY):
            # Two rows per hour (at :00 and :30) that average to the hour's value: bucketing is exercised.
            t = START + timedelta(days=d, hours=h)
            rows += [f"{t:%Y-%m-%d %H:%M:%S},{values[d, h] - 1:.6f}", f"{t:%Y-%m-%dT%H:30:00Z},{values[d, h] + 1:.6f}"]
    path.write_text("\n".join(rows) + "\n")
    return path


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "console.cli", "forecast", "backtest", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )  # fmt: skip


# --- the definitions, written out: day x's forecast reads days up to x - 1 (a one-day lead) -------------


def q95(xs: list[float]) -> float:
    return float(np.quantile(xs, 0.95))  # linear interpolation between order statistics


def weekday_factor(xs: np.ndarray, x: int) -> float:
    logs = []
    for y in range(x - 7, -1, -7):
        if y - 7 < 0:
            break
        logs.append(math.log(xs[y] / np.median(xs[y - 7 : y])))
    return math.exp(0.5 * float(np.median(logs))) if logs else 1.0


def by_hand(values: np.ndarray) -> dict[str, dict[str, float]]:
    peaks, levels = values.max(axis=1), np.median(values, axis=1)

    def ensemble(x: int) -> float | None:
        if x < 7:
            return None
        week = slice(x - 7, x)
        views = [
            np.median(peaks[week]) * weekday_factor(peaks, x),
            np.median(levels[week]) * weekday_factor(levels, x),
            np.median(levels[week]) * weekday_factor(levels, x) * np.median(peaks[week] / levels[week]),
            peaks[x - 7],
        ]
        return float(np.median(views))

    def ensemble_curve(x: int) -> np.ndarray:
        return (np.median(values[x - 7 : x], axis=0) * weekday_factor(levels, x) + values[x - 7]) / 2

    methods = {
        "naive1d": (lambda x: peaks[x - 1] if x >= 1 else None, lambda x: values[x - 1]),
        "naive7d": (lambda x: peaks[x - 7] if x >= 7 else None, lambda x: values[x - 7]),
        "max7": (lambda x: peaks[x - 7 : x].max() if x >= 7 else None, None),
        "peak-ensemble": (ensemble, ensemble_curve),
    }
    first = DAYS - TEST_DAYS
    flat = values.ravel()
    scale = np.mean(np.abs(flat[PER_DAY : first * PER_DAY] - flat[: (first - 1) * PER_DAY]))
    out = {}
    for name, (point, curve) in methods.items():
        p95s = []
        for d in range(first, DAYS):
            ratios = [peaks[x] / point(x) for x in range(d) if point(x) is not None]
            p95s.append(point(d) * q95(ratios))
        actual, p95 = peaks[first:], np.array(p95s)
        loss = np.where(actual >= p95, 0.95 * (actual - p95), 0.05 * (p95 - actual))
        mase = None
        if curve is not None:
            mase = float(np.mean([np.abs(values[d] - curve(d)).mean() for d in range(first, DAYS)]) / scale)
        out[name] = {
            "pinball95": float(loss.mean() / actual.mean()),
            "coverage": float(np.mean(actual <= p95)),
            "over_median": float(np.median(p95 / actual)),
            "under_days": int(np.sum(actual > p95)),
            "test_days": TEST_DAYS,
            "mase": mase,
        }
    return out


def test_each_figure_matches_the_definitions_by_hand(series_csv: Path, values: np.ndarray):
    p = cli("--csv", str(series_csv), "--time-column", "when", "--value-column", "requests",
            "--bucket", "1h", "--days", str(TEST_DAYS), "--format", "json")  # fmt: skip
    assert p.returncode == 0, p.stderr
    got = json.loads(p.stdout)
    want = by_hand(values)
    assert got["default"] == "peak-ensemble" and set(got["forecasters"]) == set(want)
    for name, figures in want.items():
        for key, value in figures.items():
            if value is None:
                assert got["forecasters"][name][key] is None, (name, key)
            else:
                assert got["forecasters"][name][key] == pytest.approx(value, rel=1e-6), (name, key)
        assert got["forecasters"][name]["fallback_days"] == 0
    # The spikes are what the P95 is for: a day with one is under at least one method's P95 here.
    assert any(w["under_days"] for w in want.values())


def test_the_table_says_the_same(series_csv: Path, values: np.ndarray):
    p = cli("--csv", str(series_csv), "--time-column", "when", "--value-column", "requests",
            "--bucket", "1h", "--days", str(TEST_DAYS))  # fmt: skip
    assert p.returncode == 0, p.stderr
    want = by_hand(values)
    rows = {ln.split()[0]: ln.split() for ln in p.stdout.splitlines() if ln.split() and ln.split()[0] in want}
    assert rows["peak-ensemble"][1] == "*"
    for name, figures in want.items():
        cells = [c for c in rows[name][1:] if c != "*"]
        pinball, coverage, _pct, over, under = cells[:5]
        assert float(pinball) == pytest.approx(figures["pinball95"], abs=6e-5)
        assert float(coverage) == pytest.approx(100 * figures["coverage"], abs=0.06)
        assert float(over) == pytest.approx(figures["over_median"], abs=0.006)
        assert under == f"{figures['under_days']}/{TEST_DAYS}"


def test_a_week_ahead_reads_nothing_of_the_last_six_days(series_csv: Path, values: np.ndarray, tmp_path: Path):
    """With --lead 7d each forecast is made six days before its day begins: changing those six days of a
    test day's past must not change its figures. Checked on the last test day: the rows of days 23..28
    are rescaled, and only the scores whose test days saw them may move."""
    args = ("--time-column", "when", "--value-column", "requests", "--bucket", "1h", "--days", "1",
            "--lead", "7d", "--format", "json")  # fmt: skip
    base = json.loads(cli("--csv", str(series_csv), *args).stdout)
    lines = series_csv.read_text().splitlines()
    changed = [lines[0]]
    for ln in lines[1:]:
        when, v = ln.split(",")
        day = (datetime.fromisoformat(when.replace("Z", "+00:00")).replace(tzinfo=UTC) - START).days
        changed.append(f"{when},{float(v) * (5 if 23 <= day <= 28 else 1):.6f}")
    other = tmp_path / "changed.csv"
    other.write_text("\n".join(changed) + "\n")
    after = json.loads(cli("--csv", str(other), *args).stdout)
    for name in ("peak-ensemble", "naive1d", "naive7d", "max7"):
        for key in ("pinball95", "coverage", "under_days"):
            assert after["forecasters"][name][key] == base["forecasters"][name][key], (name, key)


@pytest.mark.parametrize(
    ("content", "args", "message"),
    [
        ("timestamp,value\n2026-03-02 00:00:00,1\nyesterday,2\n", (), ":3: timestamp: 'yesterday' is not a time"),
        ("time,value\n2026-03-02 00:00:00,1\n", (), ":1: timestamp: no such column (columns: 'time', 'value')"),
        ("timestamp,value\n2026-03-02 00:00:00,1\n2026-03-02 01:00:00,lots\n", (), ":3: value: 'lots' is not"),
        ("timestamp,value\n2026-03-02 00:00:00,1\n2026-03-04 00:00:00,1\n", (), ":3: timestamp: 48.0 h after"),
        ("timestamp,value\n2026-03-02 00:00:00,1\n2026-03-02 00:00:00\x00,1\n", (), ":3: a NUL byte"),
        (
            "timestamp,value\n"
            + "".join(f"2026-03-{d:02d} {h:02d}:00:00,1\n" for d in range(2, 12) for h in range(24)),
            ("--days", "5"),
            "10 complete days; 5 test days with a 1 d lead need 11",
        ),
    ],
    ids=["time", "column", "value", "gap", "binary", "too-few-days"],
)
def test_bad_input_names_file_line_and_column_and_prints_nothing_else(tmp_path: Path, content, args, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    p = cli("--csv", str(path), "--bucket", "1h", *args)
    assert p.returncode == 2 and p.stdout == "", (p.returncode, p.stdout)
    assert p.stderr.startswith(f"error: {path}") and message in p.stderr, p.stderr
    assert len(p.stderr.strip().splitlines()) == 1 and "Traceback" not in p.stderr


def test_a_long_range_is_read_in_pieces_under_prometheus_limit(monkeypatch: pytest.MonkeyPatch):
    calls: list[tuple[float, float, float]] = []

    def fake(self, promql: str, start: float, end: float, step_s: float) -> list[Range]:
        calls.append((start, end, step_s))
        n = round((end - start) / step_s) + 1
        return [Range({"job": "x"}, tuple((start + i * step_s, 1.0) for i in range(n)))]

    monkeypatch.setattr(PrometheusSource, "query_range", fake)
    prom = PrometheusSource("http://127.0.0.1:1")
    got = prom.query_range_chunked("up", 0.0, 30 * 86400.0, 60.0)
    assert all(round((e - s) / step) + 1 <= 11_000 for s, e, step in calls) and len(calls) == 5
    ts = [t for t, _ in got[0].samples]
    assert ts == [i * 60.0 for i in range(30 * 1440 + 1)]  # every step once, in order, none twice


def _hourly(days: int, now: float) -> Series:
    ts = [now - 3600.0 * k for k in range(days * 24, 0, -1)]
    return Series(tuple(ts), tuple(100 + 50 * math.sin(2 * math.pi * t / 86400) for t in ts))


def test_readiness_says_what_it_sized_on_and_falls_back_by_name():
    now = datetime(2026, 12, 20, tzinfo=UTC).timestamp()
    start, end = now + 3 * 86400 + 18 * 3600, now + 3 * 86400 + 23 * 3600  # 18:00-23:00, three days out
    # Weeks of history: the default, with its coverage on the service's own past windows.
    d = forecast_demand(_hourly(28, now), start, end, now, 2.0)
    window_hours = [now + 3600.0 * k for k in range(-28 * 24, 0) if 18 <= (k % 24) < 23]
    highest = max(100 + 50 * math.sin(2 * math.pi * t / 86400) for t in window_hours)
    assert d is not None and d.method == "peak-ensemble" and d.note == ""
    assert d.checked > 0 and d.coverage is not None and 0 <= d.coverage <= 1
    assert d.peak_rps == pytest.approx(2 * highest, rel=0.02)  # a curve that repeats: its P95 is its peak
    assert set(d.baselines) == {"naive1d", "naive7d", "max7"}
    # Ten days: too few for the default, enough for naive1d, and it says so.
    d = forecast_demand(_hourly(10, now), start, end, now, 2.0)
    assert d is not None and d.method == "naive1d" and "peak-ensemble needs" in d.note and "naive1d instead" in d.note
    # Two days: nothing can be calibrated; the highest rate seen in those hours, named.
    d = forecast_demand(_hourly(2, now), start, end, now, 2.0)
    assert d is not None and d.method == MAX_SEEN and "too little to calibrate" in d.note
    assert "47.0h of history (48 points 60m apart)" in d.note  # the hourly points it read, and their spacing
    assert d.peak_rps == pytest.approx(2 * highest, rel=0.02) and d.coverage is None
    # Two readings, none in the window's clock hours: the highest of what there is, and it says so.
    short = Series((now - 12 * 3600, now - 11 * 3600), (40.0, 55.0))  # 12:00 and 13:00
    d = forecast_demand(short, start, end, now, 2.0)
    assert d is not None and d.method == MAX_SEEN and d.peak_rps == 110.0
    assert "none of it in the window's hours" in d.note
