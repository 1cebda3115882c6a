"""Writing files so that a reader never sees half of one: write a temp file beside it, fsync, rename."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

PUBLISHED = 0o644  # what others read: builds for CI to publish, reports; the default keeps secrets private


def write_atomic(path: Path, text: str, mode: int = 0o600) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
