"""A kept history: a second start continues the first one's twin and blocks, stepping only the time since;
a start it does not run on to (a pinned clock, another user's folder) writes afresh and says why."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from console.catalog import load_catalog
from console.catalog.load import dump_catalog, parse_catalog
from console.procs.history import make_history
from console.twin.history import target_labels
from console.twin.history_cache import HistoryCache
from console.twin.sim import Twin

ROOT = Path(__file__).resolve().parents[1]
CATALOG = load_catalog(ROOT / "fleet.yaml")
HOURS = 4
TARGET = target_labels("twin", "twin")


def start(
    tmp: Path,
    name: str,
    cache: HistoryCache,
    at: datetime,
    *,
    wall: datetime | None = None,
    pinned: bool = False,
    hours: float = HOURS,
):
    """A history of `hours` started at `at` by the twin's clock and at `wall` by the machine's (default: `at`),
    so how far a kept history runs on is the test's to set, however long the starts take here."""
    fresh = Twin(CATALOG, speed=1.0, start=at - timedelta(hours=hours))
    return make_history(fresh, at, 300.0, tmp / name / "tsdb", TARGET, history_s=hours * 3600, pinned=pinned,
                        cache=cache, wall_now=(wall or at).timestamp())  # fmt: skip


def served(twin: Twin) -> dict[tuple[str, str], float]:
    return {k: s.ok_total + s.err_total for k, s in twin.services.items()}


def test_a_second_start_continues_the_kept_history(tmp_path: Path) -> None:
    cache = HistoryCache(tmp_path / "cache", "key")
    # The test's own clock, the machine's too for the cache (`wall`): the same fleet (and the same pods) each run,
    # however long a start takes here.
    t = datetime(2026, 12, 3, 12, 0, 10, tzinfo=UTC)
    first = start(tmp_path, "a", cache, t)
    assert (first.reused, first.cache_note) == (0, "none kept yet") and first.blocks >= HOURS // 2
    before = served(first.twin)
    second = start(tmp_path, "b", cache, t + timedelta(seconds=20))  # 20 s on, by both clocks
    # Every kept block that reaches into the second start's window (a block of the first start's first
    # seconds alone may not, when those lay just before a two-hour boundary).
    since_ms = (second.written.wall_end - HOURS * 3600) * 1000
    reaching = [
        b
        for b in (tmp_path / "a" / "tsdb").iterdir()
        if json.loads((b / "meta.json").read_text())["maxTime"] >= since_ms
    ]
    assert second.cache_note == "" and second.reused == len(reaching) >= first.blocks - 1
    # Only the time since was stepped: a step or two of every series, not four hours of them.
    assert second.written.samples <= 2 * first.written.series
    kept = {p.name for p in reaching}
    assert kept < {p.name for p in (tmp_path / "b" / "tsdb").iterdir()}
    # The same fleet going on: its pods, and counters that grew from where the first start left them.
    assert set(second.twin.pods) == set(first.twin.pods)
    after = served(second.twin)
    assert after.keys() == before.keys() and all(after[k] >= before[k] for k in before)
    assert sum(after.values()) > sum(before.values())
    assert second.since == second.written.end - timedelta(hours=HOURS)


# The decisions below are the cache's, not the history's: a quarter of an hour of it is enough to make them on.
T = datetime(2026, 12, 3, 12, 0, 10, tzinfo=UTC)


def test_a_pinned_start_or_a_folder_others_may_write_is_written_afresh(tmp_path: Path) -> None:
    cache = HistoryCache(tmp_path / "cache", "key")
    start(tmp_path, "a", cache, T, hours=0.25)
    pinned = start(tmp_path, "b", cache, T + timedelta(seconds=10), pinned=True, hours=0.25)
    assert pinned.reused == 0 and "does not run on" in pinned.cache_note
    # A clock an hour ahead of the machine's, which moved 20 s.
    elsewhere = start(tmp_path, "c", cache, T + timedelta(hours=1), wall=T + timedelta(seconds=20), hours=0.25)
    assert elsewhere.reused == 0 and "does not run on" in elsewhere.cache_note
    os.chmod(cache.folder, 0o777)
    shared = start(tmp_path, "d", cache, T + timedelta(seconds=30), hours=0.25)
    assert shared.reused == 0 and "not this user's alone" in shared.cache_note
    # Each of them kept its own afresh: the folder is private again and the next start continues it.
    assert oct(cache.folder.stat().st_mode & 0o777) == "0o700"
    assert start(tmp_path, "e", cache, T + timedelta(seconds=40), hours=0.25).cache_note == ""


def test_a_cache_of_another_format_or_garbage_is_not_read(tmp_path: Path) -> None:
    cache = HistoryCache(tmp_path / "cache", "key")
    start(tmp_path, "a", cache, T, hours=0.25)
    (cache.folder / "twin.pickle").write_bytes(b"\x80\x05not a pickle")
    made = start(tmp_path, "b", cache, T + timedelta(seconds=10), hours=0.25)
    assert made.reused == 0 and "unreadable" in made.cache_note
    (cache.folder / "meta.json").write_text('{"format": 0}')
    assert "another version" in start(tmp_path, "c", cache, T + timedelta(seconds=20), hours=0.25).cache_note


def test_the_catalog_copy_reads_back_equal_with_the_past_event() -> None:
    ev = CATALOG.events[0]
    past = ev.model_copy(
        update={"name": "past", "start": ev.start - timedelta(days=7), "end": ev.end - timedelta(days=7)}
    )
    cat = CATALOG.model_copy(update={"events": [*CATALOG.events, past]})
    text = dump_catalog(cat, "made by a test\nsecond line")
    assert text.startswith("# made by a test\n# second line\n")
    assert parse_catalog(text, "copy.yaml") == cat
