"""Cell formatting shared by the screens: numbers, ages, bars, sparklines and the load colours."""

from __future__ import annotations

from datetime import datetime

from rich.text import Text

from console.fleet.snapshot import CRIT_RATIO, WARN_RATIO
from console.timefmt import age

IDLE_PCT, HOT_PCT = 10.0, 85.0  # load under IDLE_PCT is dim, at or over HOT_PCT is hot
SEVERITY_STYLE = {"critical": "bold red", "warning": "yellow", "info": "cyan"}
_SPARK = "▁▂▃▄▅▆▇█"


def load(pct: float) -> Text:
    style = "dim" if pct < IDLE_PCT else "bold red" if pct >= HOT_PCT else "green"
    return Text(f"{pct:5.1f}", style=style, justify="right")


def num(x: float, digits: int = 2) -> Text:
    return Text(f"{x:g}" if x == int(x) else f"{x:.{digits}f}", justify="right")


def flag(x: float, style: str) -> Text:
    """A number that should catch the eye when it is not zero (idle GPUs, XID errors)."""
    t = num(x)
    if x:
        t.stylize(style)
    return t


def ratio_style(r: float) -> str:
    return "bold red" if r >= CRIT_RATIO else "yellow" if r >= WARN_RATIO else ""


def used_of(used: float, hard: float | None, unit: str = "") -> Text:
    if hard is None:
        return Text(f"{used:g}{unit} / —", style="dim", justify="right")
    return Text(f"{used:g}{unit} / {hard:g}{unit}", style=ratio_style(used / hard if hard else 0), justify="right")


def bar(ratio: float, width: int = 10) -> Text:
    """`82% ████████░░`: the number first, so a column of bars sorts by it."""
    full = round(max(0.0, min(1.0, ratio)) * width)
    return Text(f"{ratio * 100:3.0f}% " + "█" * full + "░" * (width - full), style=ratio_style(ratio))


def sparkline(values: list[float], width: int, top: float = 100.0) -> Text:
    tail = values[-width:]
    chars = "".join(_SPARK[min(len(_SPARK) - 1, int(v / top * len(_SPARK)))] if top else _SPARK[0] for v in tail)
    style = "bold red" if tail and tail[-1] >= HOT_PCT else "green" if tail and tail[-1] >= IDLE_PCT else "dim"
    return Text(chars.rjust(width), style=style)


def gib(mem_bytes: float) -> float:
    return round(mem_bytes / 1024**3, 1)


def since(now: datetime, then: datetime) -> str:
    return age((now - then).total_seconds())
