"""`gpuops demo` in a real terminal (tmux): the pools screen appears, q quits, nothing is left running."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from tests.e2e.conftest import ROOT, wait_for


def _tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], capture_output=True, text=True, check=False).stdout


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # the process ended while we looked
        if text in args:
            found.append(f"{cmdline.parent.name}: {args}")
    return found


def test_demo_in_tmux(tmp_path):
    workdir = tmp_path / "demo"
    session = f"gpuops-demo-{int(time.time())}"
    gpuops = Path(sys.executable).parent / "gpuops"
    cmd = f"cd {ROOT} && {gpuops} demo --keep {workdir} --scrape-interval 1"
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "150", "-y", "40", cmd], check=True)
    try:
        screen = wait_for(
            lambda: (s := _tmux("capture-pane", "-p", "-t", session)) and "train-h100" in s and s,
            timeout=90,
            what="the pools screen",
        )
        assert "Pool" in screen and "infer-l4" in screen and "ctx twin" in screen
        assert _processes_mentioning(str(workdir)), "the demo's servers run while the console is open"
        _tmux("send-keys", "-t", session, "q")
        wait_for(
            lambda: session not in _tmux("list-sessions", "-F", "#{session_name}"), timeout=30, what="the demo to exit"
        )
        wait_for(lambda: not _processes_mentioning(str(workdir)), timeout=15, what="no process left")
    finally:
        _tmux("kill-session", "-t", session)
