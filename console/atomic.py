"""Writing files so that a reader never sees half of one: write a temp file beside it, fsync, rename; or
append a whole line in one write."""

from __future__ import annotations

import fcntl
import json
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


def append_line(path: Path, doc: object) -> None:
    """`doc` as one JSON line at the end of `path`, in one write to a file opened for appending and under an
    exclusive lock, so that concurrent writers (threads or processes) never interleave their lines."""
    data = (json.dumps(doc, ensure_ascii=False) + "\n").encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, data)
    finally:
        os.close(fd)  # closing releases the lock
