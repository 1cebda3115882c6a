"""A written history kept for the next start (`gpuops twin --history-cache`): its TSDB blocks, the twin as it
stood at the history's end, and where that end lies in wall and fleet time.

Blocks carry wall times, so a later start cannot simply load them again: the fleet has lived on since. It can
continue them — when its clock runs on from that end (same catalog and options, `--start` not pinned), the
twin is loaded as it stood, stepped only through the time since, and the kept blocks are linked into the new
Prometheus' data folder beside the few new ones. One folder per key (a hash of the catalog and the options);
each save replaces it whole (written beside it, then renamed), so a stop mid-save leaves the last one intact.

The twin is kept with pickle, which runs code when loaded: a folder that another user owns, or that others
may write, is not read.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import stat
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from console.twin.sim import Twin

FORMAT = 4  # bumped when what is kept changes shape: an older folder is then not read
MAX_META_BYTES = 1 << 20
MAX_TWIN_BYTES = 1 << 30


@dataclass(frozen=True)
class Kept:
    twin: Twin  # held at `sim_end`
    wall_end: float  # Unix time of the history's last samples
    sim_end: datetime
    blocks: tuple[Path, ...]  # TSDB block folders, oldest first


def cache_key(*parts: bytes | str) -> str:
    h = hashlib.sha256()
    for p in (FORMAT.to_bytes(2, "big"), *parts):
        b = p.encode() if isinstance(p, str) else p
        h.update(len(b).to_bytes(8, "big") + b)
    return h.hexdigest()[:32]


def block_end_ms(block: Path) -> int:
    """The block's last millisecond (its meta.json `maxTime`); -1 when that cannot be read."""
    try:
        with (block / "meta.json").open("rb") as f:
            meta = json.loads(f.read(MAX_META_BYTES))
        return int(meta["maxTime"])
    except (OSError, ValueError, KeyError, TypeError):
        return -1


def _blocks(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_dir() and (p / "meta.json").is_file())


def _private(path: Path) -> bool:
    """Owned by this user and writable by no one else: safe to unpickle from."""
    try:
        st = path.stat()
    except OSError:
        return False
    return st.st_uid == os.getuid() and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def link_tree(src: Path, dest: Path) -> None:
    """`src` copied to `dest`, its files hard-linked where the file system allows (blocks are written once:
    Prometheus replaces, never edits, a block's files, so a link is as good as a copy)."""
    dest.mkdir(parents=True, exist_ok=True)
    for p in src.rglob("*"):
        target = dest / p.relative_to(src)
        if p.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        try:
            os.link(p, target)
        except OSError:
            shutil.copy2(p, target)


class HistoryCache:
    def __init__(self, root: Path, key: str):
        self.root = root
        self.folder = root / key

    def load(self) -> tuple[Kept | None, str]:
        """The kept history and "", or None and why not (none yet, another format, a folder not ours)."""
        meta_path, twin_path = self.folder / "meta.json", self.folder / "twin.pickle"
        if not meta_path.is_file() or not twin_path.is_file():
            return None, "none kept yet"
        if not (_private(self.root) and _private(self.folder) and _private(twin_path)):
            return None, f"{self.folder} is not this user's alone: not read"
        try:
            if twin_path.stat().st_size > MAX_TWIN_BYTES:
                return None, f"{twin_path}: over {MAX_TWIN_BYTES >> 20} MB"
            with meta_path.open("rb") as f:
                meta = json.loads(f.read(MAX_META_BYTES))
            if meta.get("format") != FORMAT:
                return None, "kept by another version"
            with twin_path.open("rb") as f:
                twin = pickle.load(f)  # this user's own private folder, checked above
            kept = Kept(twin, float(meta["wall_end"]), datetime.fromisoformat(meta["sim_end"]),
                        tuple(_blocks(self.folder / "blocks")))  # fmt: skip
        except (OSError, ValueError, KeyError, TypeError, pickle.UnpicklingError, AttributeError, EOFError) as e:
            return None, f"{self.folder}: unreadable ({e})"
        if not isinstance(kept.twin, Twin):
            return None, f"{twin_path}: not a twin"
        return kept, ""

    def save(self, twin: Twin, wall_end: float, sim_end: datetime, blocks: Path) -> int:
        """Keep `twin` (held at `sim_end`) and the blocks under `blocks` (this start's history: the kept blocks
        still in its window, and the new ones); the previous folder is replaced only once this one is whole.
        Returns the blocks kept."""
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = Path(tempfile.mkdtemp(prefix=f".{self.folder.name}-", dir=self.root))
        try:
            kept = _blocks(blocks)
            for b in kept:
                link_tree(b, tmp / "blocks" / b.name)
            with (tmp / "twin.pickle").open("wb") as f:
                pickle.dump(twin, f, protocol=pickle.HIGHEST_PROTOCOL)
            meta = {"format": FORMAT, "wall_end": wall_end, "sim_end": sim_end.isoformat(), "blocks": len(kept)}
            (tmp / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
            old = self.root / f".{self.folder.name}-old"
            shutil.rmtree(old, ignore_errors=True)
            if self.folder.exists():
                self.folder.rename(old)
            tmp.rename(self.folder)
            shutil.rmtree(old, ignore_errors=True)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return len(kept)
