"""The first painted pools of `gpuops console` in a real terminal (tmux), for the benchmarks that time it."""

from __future__ import annotations

import compileall
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
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


@dataclass(frozen=True)
class Paint:
    wall_s: float  # median wall time from the start to a pool row on screen (NaN if none showed within 60 s)
    cpu_s: float  # median CPU time the console had used by then: its own cost, whatever else the cores ran

    def __str__(self) -> str:
        return f"{self.wall_s:.2f} s (console CPU {self.cpu_s:.2f} s)"


def first_paint(console_args: list[str], repeat: int = 3, width: int = 140) -> Paint:
    """Start `gpuops console ARGS` in tmux `repeat` times, timing each to a pool row on its screen; call inside
    `tmux_server()`.

    The pane's output is streamed to a file (`tmux pipe-pane`) and read as it grows: polling `capture-pane`
    every 10 ms started a tmux client a hundred times a second on the cores the console starts on (measured at
    10,000 GPUs: 3.0 s polled against 2.1-2.3 s streamed, the same stack). Once the mark is in the stream, the
    screen is captured once to confirm it is painted there. The project's modules are byte-compiled first, as an
    installed package's are (an editable install's are not, and with PYTHONDONTWRITEBYTECODE each start would
    compile them again)."""
    compileall.compile_dir(str(ROOT / "console"), quiet=1)
    cmd = " ".join([str(Path(sys.executable).parent / "gpuops"), "console", *console_args])
    times, cpus = [], []
    with tempfile.TemporaryDirectory(prefix="bench-paint-") as tmp:
        for i in range(repeat):
            session, stream = f"bench-paint-{os.getpid()}-{i}", Path(tmp) / f"pane-{i}"
            stream.touch()
            t0 = time.monotonic()
            subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", str(width), "-y", "40", cmd], check=True)
            try:
                # The console's first frame comes a second later: the pipe is in place long before.
                subprocess.run(["tmux", "pipe-pane", "-t", session, f"cat >> {stream}"], check=True)
                pid = subprocess.run(["tmux", "display", "-p", "-t", session, "#{pane_pid}"],
                                     capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
                seen = b""
                with stream.open("rb") as f:
                    while time.monotonic() - t0 < 60 and MARK.encode() not in seen:
                        seen = seen[-len(MARK) :] + f.read()
                        time.sleep(0.01)
                at, cpu = time.monotonic() - t0, cpu_s(pid)
                pane = subprocess.run(["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True)
                if MARK in pane.stdout:
                    times.append(at)
                    cpus.append(cpu)
                else:  # what it showed instead (a banner, an error): the reason, not only a missing figure
                    shown = [line.strip() for line in pane.stdout.splitlines() if line.strip()]
                    print(f"no pools on screen after {at:.0f} s; it showed: " + " | ".join(shown[:6]), file=sys.stderr)
            finally:
                subprocess.run(["tmux", "kill-session", "-t", session], check=False, capture_output=True)
    nan = float("nan")
    return Paint(statistics.median(times) if times else nan, statistics.median(cpus) if cpus else nan)


def cpu_s(pid: str) -> float:
    """A process's user and system CPU seconds so far (the pane's shell execs the console: the same pid)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rfind(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
