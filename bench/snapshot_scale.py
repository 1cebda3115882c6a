"""Snapshot build time and request count at 1,000 and at 10,000 GPUs (the count must not grow).

    .venv/bin/python bench/snapshot_scale.py [--sizes 1000 10000] [--repeat 5]

Each size runs its own twin and a real Prometheus; the figures are medians over repeated builds, and the
10,000-GPU time is also given as a ratio to the 1,000-GPU one measured in the same process.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.fleetgen import scaled_catalog
from console.fleet.build import SnapshotBuilder
from console.procs import prometheus as prom
from console.sources.kube import KubeSource
from console.sources.prometheus import PrometheusSource
from console.twin.kubeconfig import write_kubeconfig
from console.twin.server import TwinServer
from console.twin.sim import Twin


def measure(gpus: int, repeat: int) -> tuple[int, float, float, int, int]:
    cat = scaled_catalog(gpus)
    twin = Twin(cat, speed=1, warmup_s=5)
    server = TwinServer(twin)
    server.start()
    with tempfile.TemporaryDirectory(prefix="bench-snap-") as tmp:
        kc = write_kubeconfig(Path(tmp) / "kc.yaml", {"twin": server.url})
        p = prom.prometheus(Path(tmp), server.url.removeprefix("http://"), scrape_interval_s=5.0)
        p.start()
        try:
            # ttl 0: every build re-reads Kubernetes, the worst case of the slow poll.
            b = SnapshotBuilder(cat, PrometheusSource(p.base_url, timeout_s=30), KubeSource(str(kc), "twin", ttl_s=0))
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                s = b.build()
                if s.pools and sum(x.gpus_total for x in s.pools) == gpus and any(n.fb_total_mib for n in s.nodes):
                    break
                time.sleep(1)
            times, reqs = [], set()
            for _ in range(repeat):
                s = b.build()
                times.append(s.build_s)
                reqs.add(s.requests)
            b.close()
            return gpus, statistics.median(times), min(times), max(reqs), len(s.nodes)
        finally:
            p.stop()
            server.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    results = [measure(n, args.repeat) for n in args.sizes]
    base = results[0][1]
    for gpus, med, best, reqs, rows in results:
        print(
            f"{gpus:>6} GPUs: snapshot build {med * 1000:.0f} ms median (best {best * 1000:.0f} ms, "
            f"{med / base:.1f}x the {results[0][0]}-GPU run), {reqs} requests, {rows} node rows"
        )


if __name__ == "__main__":
    main()
