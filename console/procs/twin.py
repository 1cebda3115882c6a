"""The twin as a child process (`gpuops twin`), as the demo and the e2e tests run it."""

from __future__ import annotations

import sys
from pathlib import Path

from console.procs.ports import free_port
from console.procs.process import Server


def twin(workdir: Path, *args: str, port: int | None = None) -> Server:
    port = port or free_port()
    argv = [sys.executable, "-m", "console.cli", "twin", "--port", str(port), *args]
    return Server("twin", argv, f"http://127.0.0.1:{port}", "/healthz", workdir / "twin.log")
