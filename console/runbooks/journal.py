"""The runbook journal: append-only JSON lines, each flushed and fsynced before the action it records goes
on, each carrying the hash of the record before it, so an edit or a deletion breaks the chain where it is.

One file holds every run; appends from several processes are serialised with an exclusive `flock`, taken
while the last record's hash is read and the new one written.

A chain alone cannot see its own end cut off, so a head file beside the journal (`journal.jsonl.head`,
replaced atomically after each append) holds the record count and the last hash: a journal shorter than
its head, or whose record there differs, fails the check, naming the line.
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

from console.atomic import write_atomic

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
            head = self._head()
            count = head[0] if head and head[1] == prev else self._recount(fd, head)
            os.write(fd, (json.dumps(record, sort_keys=True, ensure_ascii=False) + "\n").encode())
            os.fsync(fd)
            write_atomic(self.head_path, json.dumps({"records": count + 1, "hash": record["hash"]}) + "\n")
            return record

    @property
    def head_path(self) -> Path:
        return self.path.with_name(self.path.name + ".head")

    def _head(self) -> tuple[int, str] | None:
        """The head file's (record count, last hash), or None where there is none or it is unreadable."""
        try:
            d = json.loads(self.head_path.read_text(encoding="utf-8"))
            return int(d["records"]), str(d["hash"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _recount(self, fd: int, head: tuple[int, str] | None) -> int:
        """The head is missing or behind the file. Behind by records whose head update a crash cut off is
        fine; a file shorter than its head was cut, and writing on would hide that: refuse."""
        lines = _count_lines(fd)
        if head is not None and head[0] > lines:
            raise JournalError(
                f"{self.path}:{lines + 1}: the journal ends here, but its head file says {head[0]} records: "
                f"{head[0] - lines} removed from the end; nothing more is written to it"
            )
        return lines

    def _check_tail(self, records: list[dict[str, Any]]) -> None:
        head = self._head()
        if head is None:
            if records:
                raise JournalError(
                    f"{self.head_path}:1: records, hash: missing or unreadable, so a cut-off end of "
                    f"{self.path.name} cannot be ruled out"
                )
            return
        count, last = head
        if len(records) < count:
            raise JournalError(
                f"{self.path}:{len(records) + 1}: the journal ends here, but its head file says {count} records: "
                f"{count - len(records)} removed from the end"
            )
        if count and records[count - 1].get("hash") != last:
            raise JournalError(f"{self.path}:{count}: hash: differs from the head file's: the end was replaced")

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
        if verify:
            self._check_tail(out)
        return out


def _count_lines(fd: int) -> int:
    """Records in the file: counted only when the head file is missing or behind (a crash between the two)."""
    size = os.lseek(fd, 0, os.SEEK_END)
    n, pos = 0, 0
    while pos < size:
        block = os.pread(fd, min(1 << 20, size - pos), pos)
        n += block.count(b"\n")
        pos += len(block)
    return n


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
