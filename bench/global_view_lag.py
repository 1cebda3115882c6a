"""How far the global view trails each cluster's own Prometheus: the demo fleet as a cluster per region, each
with its Prometheus remote-writing into a global one; every second, the newest sample of `kube_node_info` per
cluster in the global view against the same in the cluster's Prometheus.

    .venv/bin/python bench/global_view_lag.py [--seconds 60] [--scrape 2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from console.procs.clusters import running_clusters

ROOT = Path(__file__).resolve().parent.parent
NEWEST = "max by (cluster) (timestamp(kube_node_info))"


def newest(url: str) -> dict[str, float]:
    r = httpx.get(f"{url}/api/v1/query", params={"query": NEWEST}, timeout=10)
    r.raise_for_status()
    return {s["metric"].get("cluster", ""): float(s["value"][1]) for s in r.json()["data"]["result"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--scrape", type=float, default=2.0)
    args = ap.parse_args()
    lags: dict[str, list[float]] = {}
    with (
        tempfile.TemporaryDirectory(prefix="bench-lag-") as tmp,
        running_clusters(ROOT / "fleet.yaml", Path(tmp), scrape_interval_s=args.scrape) as rc,
    ):
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(newest(rc.global_url)) < len(rc.prometheus):
            time.sleep(1)
        end = time.monotonic() + args.seconds
        while time.monotonic() < end:
            glob = newest(rc.global_url)
            for name, url in rc.prometheus.items():
                own = newest(url).get("", 0.0)
                if name in glob and own:
                    lags.setdefault(name, []).append(own - glob[name])
            time.sleep(1)
    print(
        f"demo fleet, {len(lags)} clusters, scrape every {args.scrape:g} s, remote write every 1 s, "
        f"{args.seconds:g} s sampled every 1 s: the global view's newest sample behind the cluster's own"
    )
    for name, xs in lags.items():
        print(f"  {name:<13} median {statistics.median(xs):.1f} s, max {max(xs):.1f} s ({len(xs)} samples)")


if __name__ == "__main__":
    main()
