"""The first painted pools of `gpuops console` in a real terminal (tmux), for the benchmarks that time it."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

MARK = "train-h100"  # a pool every benchmark fleet has: its row on screen is the first painted data


@contextmanager
def tmux_server() -> Iterator[None]:
    """A tmux server for a whole run, held by a session that outlives the measured ones: killing the last
    session stops the server, and a new session right after may meet it exiting. Started before any server a
    benchmark starts, it runs at the benchmark's priority and is not that benchmark's child (tmux detaches)."""
    keeper = f"bench-keep-{os.getpid()}"
    subprocess.run(["tmux", "new-session", "-d", "-s", keeper, "sleep 86400"], check=True)
    try:
        yield
    finally:
        subprocess.run(["tmux", "kill-session", "-t", keeper], check=False, capture_output=True)


def first_paint_s(console_args: list[str], repeat: int = 3, width: int = 140) -> float:
    """Median wall time from starting `gpuops console ARGS` in tmux to a pool row on its screen (NaN if none
    showed within 60 s); call inside `tmux_server()`."""
    cmd = " ".join([str(Path(sys.executable).parent / "gpuops"), "console", *console_args])
    times = []
    for i in range(repeat):
        session = f"bench-paint-{os.getpid()}-{i}"
        t0 = time.monotonic()
        subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", str(width), "-y", "40", cmd], check=True)
        try:
            while time.monotonic() - t0 < 60:
                pane = subprocess.run(["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True)
                if MARK in pane.stdout:
                    times.append(time.monotonic() - t0)
                    break
                time.sleep(0.01)
        finally:
            subprocess.run(["tmux", "kill-session", "-t", session], check=False, capture_output=True)
    return statistics.median(times) if times else float("nan")
