"""Comparing two SVG screenshots of the console: exact in layout, styles and letters, tolerant in numbers.

Rates read from a real Prometheus move in their last digit with scrape timing, so a number matches within
2 % or one unit of its last digit.
"""

from __future__ import annotations

import html
import re

_TEXT = re.compile(r">([^<]*)<")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
# Rich names the SVG's clip paths by a hash of the screen's text, so a digit changes every id.
_IDS = re.compile(r"terminal-\d+")


def _shape(svg: str) -> str:
    """The SVG with the digits of its text masked: layout, styles and every letter, not the values."""
    return _TEXT.sub(lambda m: ">" + re.sub(r"\d", "#", m.group(1)) + "<", _IDS.sub("terminal-id", svg))


def _numbers(svg: str) -> list[str]:
    # The ids are masked first: they hash the screen's text, so one digit moved changes every id.
    return [n for m in _TEXT.finditer(_IDS.sub("terminal-id", svg)) for n in _NUMBER.findall(m.group(1))]


def _close(a: str, b: str) -> bool:
    x, y = float(a), float(b)
    unit = 10.0 ** -len(a.partition(".")[2])
    # A hair of slack for binary floats: 8.4 - 8.3 is 0.10000000000000142, one unit, not more.
    return abs(x - y) <= max(0.02 * max(abs(x), abs(y)), unit) * (1 + 1e-9)


def same_screen(old: str, new: str) -> bool:
    if _shape(old) != _shape(new):
        return False
    return all(_close(a, b) for a, b in zip(_numbers(old), _numbers(new), strict=True))


_TEXT_AT = re.compile(r'<text[^>]*\bx="([\d.]+)" y="([\d.]+)"[^>]*>([^<]*)</text>')


def _runs(svg: str) -> list[list[str]]:
    """The screen's text row by row, each row as its runs of text (an SVG places each run on its own)."""
    rows: dict[float, list[tuple[float, str]]] = {}
    for m in _TEXT_AT.finditer(svg):
        rows.setdefault(float(m.group(2)), []).append((float(m.group(1)), html.unescape(m.group(3))))
    return [[t.replace("\xa0", " ") for _, t in sorted(runs)] for _, runs in sorted(rows.items())]


def _same_run(x: str, y: str) -> bool:
    # The tolerance of `same_screen`, run by run: rows whose numbers only moved by scrape timing are not listed.
    nx, ny = _NUMBER.findall(x), _NUMBER.findall(y)
    return re.sub(r"\d", "#", x) == re.sub(r"\d", "#", y) and all(map(_close, nx, ny))


def differences(old: str, new: str, limit: int = 8) -> str:
    """The rows whose text differs, old above new; or a note that only styles or places differ."""
    a, b = _runs(old), _runs(new)
    out = [f"rows {len(a)} -> {len(b)}"] if len(a) != len(b) else []
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if len(x) != len(y) or not all(map(_same_run, x, y)):
            out += [f"row {i}: -{''.join(x).rstrip()!r}", f"row {i}: +{''.join(y).rstrip()!r}"]
    if not out:
        return "no row differs in its text (numbers within tolerance): a style or a position does"
    return "\n".join(out[: 2 * limit] + ["..."] * (len(out) > 2 * limit))
