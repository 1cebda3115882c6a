"""Prometheus' own backfill: `promtool tsdb create-blocks-from openmetrics`, one input file per two-hour
block (promtool reads its whole input once per block it makes: a file per block reads each sample once),
run beside the writer so that the blocks are made while the history is still being written."""

from __future__ import annotations

import subprocess
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from console.procs.process import find_binary


class BackfillError(RuntimeError):
    pass


class Backfill:
    """Turns OpenMetrics files into TSDB blocks under `blocks`, `workers` at a time; each input file is removed
    once its blocks are made."""

    def __init__(self, blocks: Path, workers: int = 1):
        self.blocks = blocks
        self.promtool = find_binary("promtool")
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="promtool")
        self._jobs: list[Future[None]] = []

    def submit(self, path: Path) -> None:
        self._jobs.append(self._pool.submit(self._one, path))

    def _one(self, path: Path) -> None:
        r = subprocess.run(
            [self.promtool, "tsdb", "create-blocks-from", "openmetrics", "-q", str(path), str(self.blocks)],
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
        )
        if r.returncode != 0:
            raise BackfillError(f"promtool on {path.name}: {(r.stderr or r.stdout).strip()[-2000:]}")
        path.unlink(missing_ok=True)

    def wait(self) -> int:
        """Blocks made (raises BackfillError with promtool's own words on the first file it refused)."""
        try:
            for job in self._jobs:
                job.result()
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)
        return sum(1 for p in self.blocks.iterdir() if p.is_dir()) if self.blocks.is_dir() else 0


def size_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
