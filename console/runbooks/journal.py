"""The runbook journal: append-only JSON lines, each flushed and fsynced before the action it records goes
on, each carrying the hash of the record before it, so an edit or a deletion breaks the chain where it is.

One file holds every run; appends from several processes are serialised with an exclusive `flock`, taken
while the last record's hash is read and the new one written.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

GENESIS = "0" * 64


def default_path() -> Path:
    env = os.environ.get("GPUOPS_JOURNAL")
    if env:
        return Path(env)
    state = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    return state / "gpuops" / "journal.jsonl"


class JournalError(Exception):
    """The chain does not verify: names the line and what is wrong with it."""


def _digest(prev: str, record: dict[str, Any]) -> str:
    body = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256((prev + body).encode()).hexdigest()


class Journal:
    def __init__(self, path: Path):
        self.path = path

    @contextmanager
    def _locked(self) -> Iterator[int]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield fd
        finally:
            os.close(fd)  # closing releases the lock

    def append(self, run: str, event: str, **data: Any) -> dict[str, Any]:
        """Write one record and fsync it; returns it with its hash."""
        with self._locked() as fd:
            prev = _last_hash(fd)
            record = {"time": datetime.now(UTC).isoformat(timespec="milliseconds"), "run": run, "event": event, **data}
            record["prev"] = prev
            record["hash"] = _digest(prev, record)
            os.write(fd, (json.dumps(record, sort_keys=True, ensure_ascii=False) + "\n").encode())
            os.fsync(fd)
            return record

    def records(self, verify: bool = True) -> list[dict[str, Any]]:
        """Every record, oldest first; with `verify`, raises JournalError at the first broken link."""
        if not self.path.exists():
            return []
        out = []
        prev = GENESIS
        with self.path.open(encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError as e:
                    raise JournalError(f"{self.path}:{n}: not a JSON record ({e.msg})") from None
                if verify:
                    want = rec.get("hash")
                    body = {k: v for k, v in rec.items() if k != "hash"}
                    if rec.get("prev") != prev:
                        raise JournalError(
                            f"{self.path}:{n}: prev: the chain is broken here (a record before it was changed, "
                            "removed or inserted)"
                        )
                    if _digest(prev, body) != want:
                        raise JournalError(f"{self.path}:{n}: hash: this record was changed after it was written")
                    prev = want
                out.append(rec)
        return out


def _last_hash(fd: int) -> str:
    size = os.lseek(fd, 0, os.SEEK_END)
    if size == 0:
        return GENESIS
    # Read back from the end until the last full line is in hand.
    chunk = 4096
    while True:
        start = max(0, size - chunk)
        data = os.pread(fd, size - start, start)
        lines = data.rstrip(b"\n").split(b"\n")
        if len(lines) > 1 or start == 0:
            return str(json.loads(lines[-1])["hash"])
        chunk *= 2


# --- runs, as the journal tells them -----------------------------------------------------------------------
@dataclass
class RunSummary:
    id: str
    runbook: str
    operator: str
    context: str
    started: str
    params: dict[str, Any]
    status: str  # running | succeeded | failed | rolled-back | interrupted | refused
    ended: str = ""
    detail: str = ""
    records: list[dict[str, Any]] = field(default_factory=list)


def _alive(host: str, pid: int) -> bool:
    if host != socket.gethostname():
        return True  # another machine's run: its process cannot be checked from here
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def runs(records: list[dict[str, Any]]) -> list[RunSummary]:
    by_id: dict[str, RunSummary] = {}
    for rec in records:
        rid = rec["run"]
        if rec["event"] == "run_start":
            by_id[rid] = RunSummary(
                rid,
                rec.get("runbook", ""),
                rec.get("operator", ""),
                rec.get("context", ""),
                rec["time"],
                rec.get("params", {}),
                "running",
            )
        run = by_id.get(rid)
        if run is None:
            continue
        run.records.append(rec)
        if rec["event"] == "run_end":
            run.status, run.ended, run.detail = rec["status"], rec["time"], rec.get("detail", "")
    for run in by_id.values():
        start = run.records[0]
        if run.status == "running" and not _alive(start.get("host", ""), int(start.get("pid", 0))):
            run.status = "interrupted"
            run.detail = f"process {start.get('pid')} on {start.get('host')} ended without finishing the run"
    return list(by_id.values())


def find_run(records: list[dict[str, Any]], run_id: str) -> RunSummary | None:
    return next((r for r in runs(records) if r.id == run_id), None)
