"""A demand series from a CSV file (a time column and a value column), checked row by row: every refusal
names the file, the line and the column. Pure file reading; bucketing is `forecast.resample`.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from console.readiness.forecast import DAY_S

MAX_BYTES = 512 * 1024 * 1024  # years of one-minute points fit many times over; more is not a series
MAX_LINE = 64 * 1024  # a row of a series is short: a longer line is not one


class SeriesFileError(ValueError):
    """`file:line: column: why`, ready for stderr."""


@dataclass(frozen=True)
class Point:
    t: float  # Unix seconds
    value: float
    line: int


def parse_time(text: str) -> float:
    """Unix seconds from ISO 8601 (`2015-02-26 21:42:53`, `...T...Z`, with an offset) or a number of
    seconds since the epoch; a time without an offset is UTC."""
    text = text.strip()
    try:
        return float(text) if text and text.lstrip("-").replace(".", "", 1).isdigit() else _iso(text)
    except (ValueError, OverflowError):
        raise ValueError(f"{text[:40]!r} is not a time (ISO 8601, or Unix seconds)") from None


def _iso(text: str) -> float:
    t = datetime.fromisoformat(text)
    return (t if t.tzinfo else t.replace(tzinfo=UTC)).timestamp()


def read_points(path: Path, time_column: str = "timestamp", value_column: str = "value") -> list[Point]:
    """The rows in time order. Refuses a file that is not UTF-8 CSV text, a missing column, a time or value
    that does not parse, and a gap of more than a day between rows (whole days unknown)."""
    try:
        size = path.stat().st_size
    except OSError as e:
        raise SeriesFileError(f"{path}: {e.strerror or e}") from None
    if size > MAX_BYTES:
        raise SeriesFileError(f"{path}:1: {size / 2**20:.0f} MiB: over the {MAX_BYTES // 2**20} MiB a series may be")
    points = _rows(path, time_column, value_column)
    if not points:
        raise SeriesFileError(f"{path}:2: no rows after the header")
    points.sort(key=lambda p: p.t)
    gap = first_gap([p.t for p in points])
    if gap is not None:
        before, p = points[gap - 1], points[gap]
        raise SeriesFileError(
            f"{path}:{p.line}: {time_column}: {(p.t - before.t) / 3600:.1f} h after the row before it "
            f"(line {before.line}): a gap longer than a day leaves whole days unknown"
        )
    return points


def first_gap(ts: Sequence[float]) -> int | None:
    """The index of the first time (in order) more than a day after the one before it, if any."""
    return next((i for i in range(1, len(ts)) if ts[i] - ts[i - 1] > DAY_S), None)


def _lines(path: Path) -> Iterator[str]:
    """The file's lines as text, refusing binary content where it starts (bounded reads: a file without
    newlines is not read whole)."""
    with path.open("rb") as f:
        n = 0
        while raw := f.readline(MAX_LINE + 1):
            n += 1
            if len(raw) > MAX_LINE:
                raise SeriesFileError(f"{path}:{n}: a line over {MAX_LINE} bytes: not a row of a series")
            if b"\x00" in raw:
                raise SeriesFileError(f"{path}:{n}: a NUL byte: a binary file, not CSV text")
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise SeriesFileError(f"{path}:{n}: not UTF-8 text (a binary file?)") from None
            yield text.removeprefix("\ufeff") if n == 1 else text


def _rows(path: Path, time_column: str, value_column: str) -> list[Point]:
    out: list[Point] = []
    reader = csv.reader(_lines(path))
    try:
        header = next(reader, None)
        if header is None:
            raise SeriesFileError(f"{path}:1: empty file: no header line")
        cols = [c.strip() for c in header]
        for name in (time_column, value_column):
            if name not in cols:
                shown = ", ".join(repr(c[:40]) for c in cols[:10])
                raise SeriesFileError(f"{path}:1: {name}: no such column (columns: {shown})")
        ti, vi = cols.index(time_column), cols.index(value_column)
        for row in reader:
            if row:
                out.append(_point(path, reader.line_num, row, (ti, time_column), (vi, value_column)))
    except csv.Error as e:
        raise SeriesFileError(f"{path}:{reader.line_num + 1}: not CSV: {e}") from None
    return out


def _point(path: Path, line: int, row: list[str], t: tuple[int, str], v: tuple[int, str]) -> Point:
    for i, name in (t, v):
        if i >= len(row):
            raise SeriesFileError(f"{path}:{line}: {name}: missing (the row has {len(row)} fields)")
    try:
        when = parse_time(row[t[0]])
    except ValueError as e:
        raise SeriesFileError(f"{path}:{line}: {t[1]}: {e}") from None
    try:
        value = float(row[v[0]])
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise SeriesFileError(f"{path}:{line}: {v[1]}: {row[v[0]][:40]!r} is not a finite number")
    return Point(when, value, line)
