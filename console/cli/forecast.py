"""`gpuops forecast backtest`: how each peak forecaster would have sized the last N days of a demand series."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from console.cli.options import prometheus_option

if TYPE_CHECKING:
    from console.readiness.forecast import Series
    from console.readiness.peak_backtest import Score

DEFAULT_FORECASTERS = ("peak-ensemble", "naive1d", "naive7d", "max7")


def _fail(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(2)


def _duration(text: str, option: str) -> float:
    from console.timefmt import parse_duration

    try:
        return parse_duration(text)
    except ValueError as e:
        _fail(f"{option}: {e}")


def _when(text: str, option: str) -> float:
    """What `cost report` takes: now, month, -60d, or ISO 8601 (UTC unless it says otherwise)."""
    from datetime import UTC, datetime

    from console.cost.gather import parse_when

    try:
        return parse_when(text, datetime.now(UTC)).timestamp()
    except ValueError as e:
        _fail(f"{option}: {e}")


def _from_csv(path: Path, time_column: str, value_column: str, bucket_s: float) -> Series:
    from console.readiness.forecast import resample
    from console.readiness.series_file import SeriesFileError, read_points

    try:
        points = read_points(path, time_column, value_column)
    except SeriesFileError as e:
        _fail(str(e))
    return resample([(p.t, p.value) for p in points], bucket_s)


def _from_prometheus(url: str, query: str, start: float, end: float, bucket_s: float) -> Series:
    from console.readiness.forecast import resample
    from console.readiness.series_file import first_gap
    from console.sources.prometheus import MAX_RANGE_POINTS, PrometheusSource

    if end <= start:
        _fail(f"--from must be before --to ({start:.0f} >= {end:.0f})")
    prom = PrometheusSource(url, timeout_s=60.0)
    pieces = max(1, math.ceil((end - start) / (MAX_RANGE_POINTS * bucket_s)))
    bar = Progress("reading Prometheus", pieces)
    try:
        got = prom.query_range_chunked(query, start, end, bucket_s, progress=lambda done, n: bar.update(done))
    except Exception as e:  # refused, unreachable, a bad query: say which, exit 2
        bar.close()
        _fail(f"{url}: {query}: {e}")
    bar.close()
    if len(got) != 1:
        what = "no series" if not got else f"{len(got)} series"
        _fail(f"{url}: {query}: {what}; the back-test takes one (aggregate it, e.g. sum(...))")
    samples = [(t, v) for t, v in got[0].samples if math.isfinite(v)]
    gap = first_gap([t for t, _ in samples])
    if gap is not None:
        t0, t1 = samples[gap - 1][0], samples[gap][0]
        _fail(f"{url}: {query}: no samples for {(t1 - t0) / 3600:.1f} h before {t1:.0f}: gaps longer than a day")
    return resample(samples, bucket_s)


def render_table(source: str, scores: dict[str, Score], default: str, bucket: str, lead: str) -> str:
    first = next(iter(scores.values()))
    head = f"{source}: {bucket} buckets, forecast {lead} before each day's end, {first.test_days} test days"
    from console.readiness.peaks import FALLBACK
    from console.readiness.render import text_table

    cols = ("forecaster", "pinball95", "coverage", "over_median", "under_days", "MASE", "short history")
    rows = [
        (
            name + (" *" if name == default else ""),
            f"{s.pinball95:.4f}",
            f"{100 * s.coverage:.1f} %",
            f"{s.over_median:.2f}",
            f"{s.under_days}/{s.test_days}",
            "-" if s.mase is None else f"{s.mase:.3f}",
            f"{s.fallback_days} d on {FALLBACK}" if s.fallback_days else "",
        )
        for name, s in scores.items()
    ]
    lines = [head, "", *text_table(cols, rows)]
    lines += ["", "* the default (readiness sizes on it); pinball95 is scaled by the mean actual daily peak"]
    return "\n".join(lines)


def as_json(scores: dict[str, Score], default: str) -> str:
    def clean(v: Any) -> Any:
        return None if isinstance(v, float) and not math.isfinite(v) else v

    doc = {"default": default, "forecasters": {n: {k: clean(v) for k, v in s.as_dict().items()}
                                                for n, s in scores.items()}}  # fmt: skip
    return json.dumps(doc, indent=2)


@click.group("forecast")
def forecast() -> None:
    """Forecasts of demand peaks, and how well they would have done."""


@forecast.command("backtest")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, path_type=Path), help="A demand series file.")
@click.option("--time-column", default="timestamp", show_default=True, help="Its time column (ISO 8601 or Unix s).")
@click.option("--value-column", default="value", show_default=True, help="Its value column.")
@prometheus_option(required=False, help="Or read the series from this Prometheus (with --query, --from).")
@click.option("--query", help="PromQL giving one series (e.g. sum(rate(service_requests_total[5m]))).")
@click.option("--from", "from_", help="Start: -60d, month, now, or ISO 8601.")
@click.option("--to", "to", default="now", show_default=True, help="End, as --from.")
@click.option("--bucket", default="30m", show_default=True, help="Bucket width: values are averaged into it.")
@click.option("--lead", default="1d", show_default=True, help="Forecast made this long before each day's end.")
@click.option("--days", type=click.IntRange(1, 3650), default=28, show_default=True, help="Test days: the last N.")
@click.option(
    "--forecasters",
    default=",".join(DEFAULT_FORECASTERS),
    show_default=True,
    help="Comma-separated, from: peak-ensemble, naive1d, naive7d, max7, prophet (slow: a fit per day).",
)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def backtest_cmd(
    csv_path: Path | None,
    time_column: str,
    value_column: str,
    prom_url: str | None,
    query: str | None,
    from_: str | None,
    to: str,
    bucket: str,
    lead: str,
    days: int,
    forecasters: str,
    fmt: str,
) -> None:
    """Back-test the peak forecasters on the last DAYS days of a demand series.

    \b
    Each test day's peak is forecast from only the buckets that ended LEAD before the day's end
    (--lead 1d: at the day's midnight; 7d: a week ahead), as a P95: the method's forecast times the
    95th percentile of its own past ratios actual ÷ forecast. Per forecaster:
      pinball95    pinball loss at 0.95 of the daily peak ÷ the mean actual daily peak (lower is better)
      coverage     share of test days whose actual peak is at or under the P95 (aim: about 95 %)
      over_median  median of P95 ÷ actual peak (the GPUs paid for and not used)
      under_days   test days the actual peak went over the P95
      MASE         the day curve's error ÷ the in-sample one-day seasonal-naive error (max7: no curve)
    Days are UTC days. Exit 2 on bad input (file:line: column: why on stderr, nothing on stdout).
    """
    from console.readiness.peak_backtest import NAMES
    from console.readiness.peaks import DEFAULT

    names = [n.strip() for n in forecasters.split(",") if n.strip()]
    unknown = [n for n in names if n not in NAMES]
    if unknown or not names:
        _fail(f"--forecasters: {', '.join(unknown) or 'none given'}: known are {', '.join(NAMES)}")
    bucket_s, lead_s = _duration(bucket, "--bucket"), _duration(lead, "--lead")
    if not 0 < bucket_s <= 86400 or 86400 % bucket_s:
        _fail(f"--bucket {bucket}: must divide a day evenly (e.g. 5m, 15m, 30m, 1h)")
    if (csv_path is None) == (prom_url is None):
        _fail("give either --csv FILE or --prometheus URL --query PROMQL --from T")
    if csv_path is not None:
        series, source = _from_csv(csv_path, time_column, value_column, bucket_s), str(csv_path)
    else:
        if not query or not from_:
            _fail("--prometheus needs --query and --from")
        start, end = _when(from_, "--from"), _when(to, "--to")
        series, source = _from_prometheus(str(prom_url), query, start, end, bucket_s), query
    scores = _run(series, names, days, lead_s, source)
    click.echo(render_table(source, scores, DEFAULT, bucket, lead) if fmt == "table" else as_json(scores, DEFAULT))


def _run(series: Series, names: Sequence[str], days: int, lead_s: float, source: str) -> dict[str, Score]:
    from console.readiness.peak_backtest import BacktestError, backtest, check

    try:
        check(series, days, lead_s)  # before any progress: bad input prints its error alone
    except BacktestError as e:
        _fail(f"{source}: {e}")
    bar = Progress("back-testing", days)
    try:
        return backtest(series, names, days, lead_s, progress=lambda done, total: bar.update(done))
    finally:
        bar.close()


class Progress:
    """A one-line progress bar on stderr, drawn only on a terminal (a log or a pipe gets nothing)."""

    def __init__(self, label: str, total: int):
        self.label, self.total = label, total
        self.live = sys.stderr.isatty()

    def update(self, done: int) -> None:
        if self.live:
            filled = round(30 * done / max(1, self.total))
            sys.stderr.write(f"\r{self.label} [{'#' * filled}{'.' * (30 - filled)}] {done}/{self.total}")
            sys.stderr.flush()

    def close(self) -> None:
        if self.live:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()
