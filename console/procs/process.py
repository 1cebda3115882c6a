"""A child server process that is always stopped: its own process group, terminated then killed."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import httpx


class ServerError(RuntimeError):
    pass


def find_binary(*names: str) -> str:
    for n in names:
        path = shutil.which(n)
        if path:
            return path
    raise ServerError(
        f"none of {', '.join(names)} is installed (Debian: apt-get install prometheus prometheus-alertmanager)"
    )


@dataclass
class Server:
    name: str
    argv: list[str]
    base_url: str
    ready_path: str
    log_path: Path
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def ready_url(self) -> str:
        return self.base_url + self.ready_path

    def start(self, timeout_s: float = 30.0) -> Server:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            self.argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
        log.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerError(
                    f"{self.name} exited with {self.proc.returncode}; its log "
                    f"({self.log_path}) ends:\n{self.log_tail()}"
                )
            try:
                if httpx.get(self.ready_url, timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise ServerError(f"{self.name} was not ready at {self.ready_url} within {timeout_s:.0f}s:\n{self.log_tail()}")

    def log_tail(self, n: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout_s: float = 10.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)


@dataclass
class Started:
    """The servers one stack started, each stopped when `stack` closes (in reverse order), however it closes."""

    stack: ExitStack
    say: Callable[[str], None]
    servers: list[Server] = field(default_factory=list)

    def start(self, server: Server, what: str, timeout_s: float = 30.0) -> Server:
        self.say(f"starting {what} …")
        self.stack.callback(server.stop)
        self.servers.append(server.start(timeout_s=timeout_s))
        return server

    def stopping(self) -> str:
        return "stopping " + ", ".join(s.name for s in reversed(self.servers)) + " …"
