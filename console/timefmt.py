"""Durations as operators read them: the console's header and views, and the headless reports."""

from __future__ import annotations

from datetime import timedelta


def age(seconds: float) -> str:
    if seconds < 90:
        return f"{max(0.0, seconds):.0f}s"
    if seconds < 5400:
        return f"{seconds / 60:.0f}m"
    if seconds < 86400 * 2:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.0f}d"


def countdown(delta: timedelta) -> str:
    """`36d 04:12:09`, or `04:12:09` inside a day."""
    s = max(0, int(delta.total_seconds()))
    days, rest = divmod(s, 86400)
    clock = f"{rest // 3600:02d}:{rest % 3600 // 60:02d}:{rest % 60:02d}"
    return f"{days}d {clock}" if days else clock


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> float:
    """Seconds in a Prometheus-style duration: `30m`, `1d`, `1h30m`, `90s`; ValueError on anything else."""
    import re

    t = text.strip()
    if not t or not re.fullmatch(r"(?:\d+(?:\.\d+)?[smhdw])+", t):
        raise ValueError(f"{text!r} is not a duration (e.g. 30m, 1d, 1h30m)")
    return sum(float(n) * _UNITS[u] for n, u in re.findall(r"(\d+(?:\.\d+)?)([smhdw])", t))
