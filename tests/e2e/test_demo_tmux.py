"""`gpuops demo` in a real terminal (tmux): the pools screen appears; `:quotas`, `/team-` and `?` work as
typed; q quits and nothing is left running."""

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

        def shown(text: str) -> str:
            return wait_for(
                lambda: (s := _tmux("capture-pane", "-p", "-t", session)) and text in s and s, timeout=15, what=text
            )

        _tmux("send-keys", "-t", session, ":quotas", "Enter")
        screen = shown("GPU used/hard")
        assert "team-llm" in screen and "llm-platform" in screen
        _tmux("send-keys", "-t", session, "/team-")
        screen = shown("/team-")
        assert all(ns in screen for ns in ("team-llm", "team-media", "team-research", "team-video"))
        _tmux("send-keys", "-t", session, "r")  # typing on narrows the table as you type

        def narrowed() -> str:
            table = _tmux("capture-pane", "-p", "-t", session).split("GPU used/hard", 1)[-1]
            return "/team-r" in table and "team-research" in table and "team-llm" not in table and table

        table = wait_for(narrowed, timeout=15, what="the quotas narrowed to team-r…")
        assert "team-media" not in table and "team-research-batch" in table
        _tmux("send-keys", "-t", session, "Enter")
        time.sleep(0.5)
        _tmux("send-keys", "-t", session, "?")
        screen = shown("Commands")
        assert ":ctx NAME" in screen and "filter the current table" in screen
        _tmux("send-keys", "-t", session, "Escape")
        wait_for(lambda: "Commands" not in _tmux("capture-pane", "-p", "-t", session), timeout=10, what="help closed")
        _tmux("send-keys", "-t", session, "q")
        wait_for(
            lambda: session not in _tmux("list-sessions", "-F", "#{session_name}"), timeout=30, what="the demo to exit"
        )
        wait_for(lambda: not _processes_mentioning(str(workdir)), timeout=15, what="no process left")
    finally:
        _tmux("kill-session", "-t", session)
