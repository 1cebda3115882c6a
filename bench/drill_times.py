"""Each shipped drill scenario on its own twin: time to detect and to mitigate (simulated), and wall time.

    .venv/bin/python bench/drill_times.py [--speed 20] [--only NAME ...]

Runs `gpuops drill run NAME --speed N` as an operator would (it starts a twin of fleet.yaml, Prometheus and
Alertmanager, and stops them), with journals in a temporary folder, then reads the figures from the drill
journal. The wall time is the drill's own (drill_start to drill_end, including its wait for a minute of
Prometheus history), and the command's (with starting and stopping the servers).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from console.catalog import load_catalog
from console.drills.load import default_folder, load_scenarios
from console.drills.report import build_report, drills, mmss
from console.runbooks import load_runbooks
from console.runbooks.journal import Journal
from console.twin.sim import Twin

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--speed", type=float, default=20.0)
    ap.add_argument("--only", nargs="*", help="scenario names (default: every shipped one)")
    args = ap.parse_args()
    cat = load_catalog(ROOT / "fleet.yaml")
    scenarios = load_scenarios(default_folder(ROOT / "runbooks"), cat, load_runbooks(ROOT / "runbooks"))
    twin = Twin(cat, speed=0, warmup_s=0)
    gpus = sum(len(n.gpus) for n in twin.nodes.values())
    print(f"fleet: fleet.yaml, {len(twin.nodes)} nodes, {gpus} GPUs; twin at {args.speed:g}x; {os.cpu_count()} CPUs")
    print(f"{'scenario':<20} {'result':<7} {'detect':>7} {'target':>7} {'mitigate':>9} {'target':>7} "
          f"{'drill wall':>10} {'command wall':>12}")  # fmt: skip
    failed = 0
    for name in args.only or sorted(scenarios):
        sc = scenarios[name]
        with tempfile.TemporaryDirectory() as d:
            env = {**os.environ, "GPUOPS_JOURNAL": f"{d}/rb.jsonl", "GPUOPS_DRILL_JOURNAL": f"{d}/drills.jsonl"}
            t0 = time.monotonic()
            r = subprocess.run(
                [sys.executable, "-m", "console.cli", "drill", "run", name, "--speed", f"{args.speed:g}",
                 "--report-dir", f"{d}/reports"],
                cwd=ROOT, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL,
            )  # fmt: skip
            command_s = time.monotonic() - t0
            records = Journal(Path(d) / "drills.jsonl").records()
        ids = drills(records)
        rep = build_report(records, ids[-1]) if ids else None
        if rep is None:
            print(f"{name:<20} no drill ran (exit {r.returncode}): {r.stderr.strip().splitlines()[-1:]}")
            failed += 1
            continue
        failed += rep.status != "passed"
        start = next(x for x in records if x["event"] == "drill_start")
        end = next(x for x in records if x["event"] == "drill_end")
        wall = (datetime.fromisoformat(end["wall"]) - datetime.fromisoformat(start["wall"])).total_seconds()
        print(f"{name:<20} {rep.status:<7} {mmss(rep.ttd_s):>7} {sc.targets.detect:>7} {mmss(rep.ttm_s):>9} "
              f"{sc.targets.mitigate:>7} {wall:>9.0f}s {command_s:>11.0f}s")  # fmt: skip
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
