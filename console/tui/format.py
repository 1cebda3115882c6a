"""Cell formatting shared by the screens: numbers, ages and the load colours (idle, normal, hot)."""

from __future__ import annotations

from rich.text import Text

IDLE_PCT, HOT_PCT = 10.0, 85.0


def load(pct: float) -> Text:
    style = "dim" if pct < IDLE_PCT else "bold red" if pct >= HOT_PCT else "green"
    return Text(f"{pct:5.1f}", style=style, justify="right")


def num(x: float) -> Text:
    return Text(f"{x:g}" if x == int(x) else f"{x:.2f}", justify="right")


def age(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 5400:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"
