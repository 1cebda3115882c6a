"""Making the fleet's past for a Prometheus about to start: the twin's simulation written as OpenMetrics
(`console.twin.history`) and turned into blocks by promtool as it goes (`console.procs.backfill`) — from
scratch, or continued from a kept history (`console.twin.history_cache`) when the clock runs on from its end.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from console.procs.backfill import Backfill, size_bytes
from console.twin.history import Written, rehearsal, write_history
from console.twin.history_cache import HistoryCache, Kept, block_end_ms, link_tree
from console.twin.sim import Twin

MAX_CLOCK_DRIFT_S = 60.0  # how far a continued clock may stand from the one asked for (the first start's build)


@dataclass(frozen=True)
class Made:
    twin: Twin  # held at the history's end: resume it there
    written: Written  # what this start wrote (all of it, or the time since the kept history)
    since: datetime  # where the history the console reads begins, in fleet time
    blocks: int
    reused: int  # of them, blocks taken from the cache
    size: int  # bytes of TSDB
    cache_note: str  # why the cache was not used, "" if it was (or there is none)
    seconds: float


def _continues(
    kept: Kept, wall_now: float, live_from: datetime, pinned: bool, history_s: float
) -> tuple[datetime | None, str]:
    """Where the kept twin's clock stands now, when that is the start asked for; else None and why not (the
    start is pinned, the clock runs at another rate or the kept end is older than the history itself, or this
    start's window would hold another past event)."""
    speed = kept.twin.clock.speed
    gap = wall_now - kept.wall_end
    at = kept.sim_end + timedelta(seconds=gap * speed)
    drift = abs((at - live_from).total_seconds())
    if pinned or gap < 0 or gap * speed > history_s or drift > MAX_CLOCK_DRIFT_S * speed:
        return None, "the kept history does not run on to this start"
    if rehearsal(kept.twin.catalog, at - timedelta(seconds=history_s), at) != kept.twin.past_events:
        return None, "this start's past event is not the kept one"
    return at, ""


def make_history(
    fresh: Twin,
    live_from: datetime,
    step_s: float,
    blocks: Path,
    target: tuple[tuple[str, str], ...],
    *,
    history_s: float,
    pinned: bool,
    cache: HistoryCache | None = None,
    say: Callable[[str], None] = lambda line: None,
    wall_now: float | None = None,
) -> Made:
    """`fresh`, built at `live_from - history_s`, stepped to `live_from` — or the kept twin stepped on from its
    end — with its samples made into blocks under `blocks` (a Prometheus data folder, before it starts).
    Raises ValueError, OSError or BackfillError; a failed start leaves the cache as it was. `wall_now`: the
    machine's time this start is taken at (the clock a kept history runs on by); now unless given."""
    began = time.time()
    t0 = began if wall_now is None else wall_now
    kept, note = cache.load() if cache else (None, "")
    at = None
    if kept:
        at, note = _continues(kept, t0, live_from, pinned, history_s)
    blocks.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="gpuops-history-", dir=blocks.parent))
    progress = lambda k, n: say(f"history: step {k}/{n}")  # noqa: E731
    reused = 0
    try:
        backfill = Backfill(blocks)
        if kept and at is not None:
            twin = kept.twin
            wall_end = kept.wall_end + (at - kept.sim_end).total_seconds() / twin.clock.speed
            since_ms = int((wall_end - history_s / twin.clock.speed) * 1000)
            for b in kept.blocks:  # those still in this start's window
                if block_end_ms(b) >= since_ms:
                    link_tree(b, blocks / b.name)
                    reused += 1
            say(f"history: {reused} kept blocks; stepping on to now")
            written = write_history(twin, at, step_s, scratch, wall_end, target, progress=progress,
                                    on_file=backfill.submit, continued=True)  # fmt: skip
            since = at - timedelta(seconds=history_s)
        else:
            twin, wall_end = fresh, t0
            written = write_history(twin, live_from, step_s, scratch, wall_end, target, progress=progress,
                                    on_file=backfill.submit)  # fmt: skip
            since = written.start
        made = backfill.wait()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if cache:
        try:  # a history not kept costs the next start time, never this one
            cache.save(twin, wall_end, written.end, blocks)
        except OSError as e:
            say(f"history: not kept in {cache.folder}: {e}")
    return Made(twin, written, since, made, reused, size_bytes(blocks), note, time.time() - began)
