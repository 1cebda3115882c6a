"""How long `gpuops readiness` takes on the demo catalog with 14 days of history, and what it sized on.

    .venv/bin/python bench/readiness_time.py [--days 14] [--speed 3600] [--runs 3]

Starts a twin of fleet.yaml (its clock from --start, run at --speed so that --days simulated days pass in
days x 86400 / speed wall seconds), Prometheus scraping it every second and Alertmanager; then, at real time,
runs `gpuops readiness year-end-gala --format json` --runs times and prints the wall seconds of each, the
forecast method and coverage of each service x region, and the fleet's size. Stops the servers.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from console.catalog import load_catalog
from console.cli.demo import stack_with_rules
from console.sources.twin import TwinControl
from console.twin.sim import Twin

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=float, default=14.0)
    ap.add_argument("--speed", type=float, default=3600.0)
    ap.add_argument("--start", default="2026-12-10T00:00:00")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    catalog = ROOT / "fleet.yaml"
    cat = load_catalog(catalog)
    twin_model = Twin(cat, speed=0, warmup_s=0)
    gpus = sum(len(n.gpus) for n in twin_model.nodes.values())
    rows = sum(len(cat.service(s).regions) for s in cat.event("year-end-gala").services)
    print(f"fleet: fleet.yaml, {len(twin_model.nodes)} nodes, {gpus} GPUs; year-end-gala: {rows} service x region rows")
    start = datetime.fromisoformat(args.start)
    with tempfile.TemporaryDirectory() as d:
        work = Path(d)
        twin_args = ("--start", args.start, "--warmup", "2")
        with stack_with_rules(cat, catalog, work, speed=args.speed, scrape_interval_s=1.0,
                              twin_args=twin_args, say=lambda line: None) as stack:  # fmt: skip
            twin = TwinControl(stack.twin_url)
            t0 = time.monotonic()
            until = start.replace(tzinfo=twin.clock().sim.tzinfo) + timedelta(days=args.days)
            while twin.clock().sim < until:
                print(f"\r  history: {twin.clock().sim:%Y-%m-%d %H:%M} of {until:%Y-%m-%d}", end="", file=sys.stderr)
                time.sleep(2)
            twin.set_speed(1)
            twin.close()
            print(f"\n{args.days:g} simulated days of history in {time.monotonic() - t0:.0f} s wall", file=sys.stderr)
            time.sleep(5)
            for run in range(1, args.runs + 1):
                t = time.monotonic()
                p = subprocess.run(
                    [sys.executable, "-m", "console.cli", "readiness", "year-end-gala", "--format", "json",
                     "--catalog", str(catalog), "--prometheus", stack.prom_url, "--kubeconfig", str(stack.kubeconfig),
                     "--context", "twin", "--drill-journal", str(work / "drills.jsonl")],
                    cwd=ROOT, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                    env={**os.environ, "GPUOPS_JOURNAL": str(work / "rb.jsonl")},
                )  # fmt: skip
                took = time.monotonic() - t
                if p.returncode not in (0, 1):
                    print(p.stderr, file=sys.stderr)
                    return 1
                doc = json.loads(p.stdout)
                print(f"run {run}: gpuops readiness answered in {took:.1f} s (exit {p.returncode}, {doc['verdict']})")
            for r in doc["services"]:
                f = r["forecast"] or {}
                cover = "-" if f.get("coverage") is None else f"{100 * f['coverage']:.0f}% of {f['backtest_windows']}"
                print(f"  {r['service']:<18} {r['region']:<13} {f.get('method', '-'):<14} P95 peak "
                      f"{f.get('peak_rps', 0):>8.1f} rps  cover {cover}  {f.get('note', '')}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
