"""What writing the fleet's past costs: the twin's own simulation stepped through N days (console.twin.history)
and promtool's blocks made beside it (console.procs.backfill), as `gpuops demo --history` does — cold, then
cached: a second start on the same history cache continues the kept history (console.twin.history_cache).

Prints, per fleet size and start: days, step, series, samples written, blocks (of them kept), TSDB size, and
the seconds to the blocks being done (wall time on this machine; writing and promtool overlap, as in the demo).

    .venv/bin/python bench/backfill.py [--days 14] [--gpus 0 10000] [--gpu-days 1]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.fleetgen import ROOT, scaled_catalog
from console.catalog import load_catalog
from console.procs.history import make_history
from console.twin.history import RECENT_S, RECENT_STEP_S, target_labels
from console.twin.history_cache import HistoryCache
from console.twin.sim import Twin


def run(gpus: int, days: float, step_s: float) -> None:
    cat = load_catalog(ROOT / "fleet.yaml") if gpus == 0 else scaled_catalog(gpus)
    with tempfile.TemporaryDirectory() as tmp:
        cache = HistoryCache(Path(tmp) / "cache", "bench")
        for start in ("cold", "cached"):
            now = datetime.now(UTC)
            t0 = time.perf_counter()
            twin = Twin(cat, speed=1.0, start=now - timedelta(days=days))
            built = time.perf_counter() - t0
            n_gpus = sum(len(n.gpus) for n in twin.nodes.values())
            m = make_history(twin, now, step_s, Path(tmp) / start / "tsdb", target_labels("twin", "twin"),
                             history_s=days * 86400, pinned=False, cache=cache)  # fmt: skip
            total = time.perf_counter() - t0
            w = m.written
            print(
                f"{n_gpus:6d} GPUs  {days:g} d at {step_s:g}s ({RECENT_STEP_S:g}s over the last "
                f"{RECENT_S / 3600:g} h), {start:6s}: {w.series} series, {w.samples} samples "
                f"written, {m.blocks} blocks ({m.reused} kept), {m.size / 1e6:.1f} MB TSDB; twin built {built:.1f} s, "
                f"blocks done and kept {total:.1f} s after the start; families: {len(w.families)}"
                + (f"; cache not used: {m.cache_note}" if m.cache_note else ""),
                flush=True,
            )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--days", type=float, default=14.0, help="history of the demo fleet")
    ap.add_argument("--gpus", type=int, nargs="*", default=[0, 10000], help="fleet sizes (0: the demo catalog)")
    ap.add_argument("--gpu-days", type=float, default=1.0, help="history of the scaled fleets")
    ap.add_argument("--step", type=float, default=300.0)
    a = ap.parse_args()
    for g in a.gpus:
        run(g, a.days if g == 0 else a.gpu_days, a.step)


if __name__ == "__main__":
    main()
