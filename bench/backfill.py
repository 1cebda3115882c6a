"""What writing the fleet's past costs: the twin's own simulation stepped through N days (console.twin.history)
and promtool's blocks made beside it (console.procs.backfill), as `gpuops demo --history` does.

Prints, per fleet size: days, step, series, samples, blocks, TSDB size, and the seconds to write and to make the
blocks (wall time on this machine; the two overlap, as in the demo).

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
from console.procs.backfill import Backfill, size_bytes
from console.twin.history import target_labels, write_history
from console.twin.sim import Twin

END = datetime(2026, 12, 1, tzinfo=UTC)


def run(gpus: int, days: float, step_s: float) -> None:
    cat = load_catalog(ROOT / "fleet.yaml") if gpus == 0 else scaled_catalog(gpus)
    t0 = time.perf_counter()
    twin = Twin(cat, speed=1.0, start=END - timedelta(days=days))
    built = time.perf_counter() - t0
    n_gpus = sum(len(n.gpus) for n in twin.nodes.values())
    with tempfile.TemporaryDirectory() as tmp:
        blocks = Path(tmp) / "tsdb"
        backfill = Backfill(blocks)
        t1 = time.perf_counter()
        w = write_history(twin, END, step_s, Path(tmp) / "om", END.timestamp(), target_labels("twin", "x:1"),
                          on_file=backfill.submit)  # fmt: skip
        written = time.perf_counter() - t1
        made = backfill.wait()
        total = time.perf_counter() - t1
        print(
            f"{n_gpus:6d} GPUs  {days:g} d at {step_s:g}s: {w.series} series, {w.samples} samples, {made} blocks, "
            f"{size_bytes(blocks) / 1e6:.1f} MB TSDB; build {built:.1f} s, written in {written:.1f} s, blocks done "
            f"{total:.1f} s after the start ({w.samples / total / 1e3:.0f}k samples/s); families: {len(w.families)}",
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
