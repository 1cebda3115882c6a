"""A month's cost report (allocation, pricing, budgets, savings) at 1,000 and at 10,000 GPUs.

    .venv/bin/python bench/cost_scale.py [--sizes 1000 10000] [--history 90] [--repeat 3]

The demo catalog scaled to the size (bench/fleetgen.py), with its services' replicas, jobs' pods and quotas
scaled in proportion, so the pods charged grow with the fleet. Each size runs its own twin (real time) and a
real Prometheus scraping it every 5 s; after `--history` seconds of samples, `read_month` (what the Costs view
and `gpuops cost report` run) is timed: the median over repeats, the requests it sends, the pods it charges,
and the Python memory it allocates at its peak (tracemalloc). The 10,000-GPU time is also given as a ratio
to the 1,000-GPU one, in the same process.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.fleetgen import ROOT, scaled_catalog
from console.catalog import load_catalog
from console.catalog.model import Catalog
from console.cost.gather import read_month
from console.procs import prometheus as prom
from console.sources.prometheus import PrometheusSource
from console.sources.twin import REAL_TIME
from console.twin.server import TwinServer
from console.twin.sim import Twin


def busy_catalog(gpus: int) -> Catalog:
    """`scaled_catalog(gpus)` with as many pods, per GPU, as the demo fleet."""
    base = load_catalog(ROOT / "fleet.yaml")
    f = gpus / sum(p.gpus_in(r) for p in base.pools for r in p.nodes)
    cat = scaled_catalog(gpus)
    services = [
        s.model_copy(update={"replicas": {r: max(1, round(n * f)) for r, n in s.replicas.items()}})
        for s in cat.services
    ]
    jobs = [j.model_copy(update={"pods": max(1, round(j.pods * f))}) for j in cat.jobs]
    teams = [t.model_copy(update={"quota_gpus": {ns: q * f for ns, q in t.quota_gpus.items()}}) for t in cat.teams]
    return cat.model_copy(update={"services": services, "jobs": jobs, "teams": teams})


def measure(gpus: int, history_s: float, repeat: int) -> tuple[int, float, int, int, float, float]:
    cat = busy_catalog(gpus)
    twin = Twin(cat, speed=1, warmup_s=5)
    server = TwinServer(twin)
    server.start()
    with tempfile.TemporaryDirectory(prefix="bench-cost-") as tmp:
        p = prom.prometheus(Path(tmp), server.url.removeprefix("http://"), scrape_interval_s=5.0)
        p.start()
        try:
            print(f"{gpus} GPUs: {history_s:g} s of history …", file=sys.stderr)
            time.sleep(history_s)
            src = PrometheusSource(p.base_url, timeout_s=120)
            times, reqs = [], 0
            for _ in range(repeat):
                before = src.requests
                t = time.perf_counter()
                month = read_month(src, cat, REAL_TIME)
                times.append(time.perf_counter() - t)
                reqs = src.requests - before
            tracemalloc.start()
            read_month(src, cat, REAL_TIME)
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            pods = sum(1 for r in month.period.report.rows if not r.idle)
            gpu_h = sum(r.gpu_hours for r in month.period.report.rows)
            return gpus, statistics.median(times), reqs, pods, peak / 2**20, gpu_h
        finally:
            p.stop()
            server.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000])
    ap.add_argument("--history", type=float, default=90.0, help="seconds of samples before timing")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    results = [measure(n, args.history, args.repeat) for n in args.sizes]
    base = results[0][1]
    for gpus, med, reqs, pods, mib, gpu_h in results:
        print(
            f"{gpus:>6} GPUs: month's cost report {med * 1000:.0f} ms median ({med / base:.1f}x the "
            f"{results[0][0]}-GPU run), {reqs} requests, {pods} pods charged, {gpu_h:.1f} GPU-hours, "
            f"{mib:.1f} MiB peak Python allocation"
        )


if __name__ == "__main__":
    main()
