"""Dashboards: build time, count and panels; and what a publish costs in round-trips to Grafana.

    .venv/bin/python bench/dashboards_publish.py [--repeat 5]

The publish runs against tests/fake_grafana.py (Grafana's documented API on loopback; Grafana itself cannot be
installed here): a first publish into an empty Grafana, then a second one of the same build, which should
be reads only, then one with a single dashboard changed.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from console.catalog import load_catalog
from console.codegen.dashboards import build_all
from console.codegen.publish import publish
from console.sources.grafana import GrafanaClient
from tests.fake_grafana import FakeGrafana

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    cat = load_catalog(ROOT / "fleet.yaml")
    times = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        built = build_all(cat)
        times.append(time.perf_counter() - t0)
    panels = sum(len(list(b.panels())) for b in built)
    queries = sum(len(p.get("targets", [])) for b in built for p in b.panels())
    print(f"catalog: {len(cat.pools)} pools, {len(cat.services)} services, {len(cat.events)} events")
    print(f"dashboards: {len(built)}, panels: {panels}, panel queries: {queries}")
    print(
        f"build (load files, grafanalib, normalise): first {times[0] * 1000:.0f} ms (with imports), then median "
        f"{statistics.median(times[1:] or times) * 1000:.1f} ms over {max(args.repeat - 1, 1)} runs"
    )
    changed = [copy.deepcopy(b) for b in built]
    changed[0].model["description"] = "changed"
    with FakeGrafana({"t": "Editor"}) as g:
        for label, dashboards in (
            ("first (empty Grafana)", built),
            ("second, unchanged", built),
            ("one changed", changed),
        ):
            client = GrafanaClient(g.url, "t")
            t0 = time.perf_counter()
            _, report = publish(dashboards, client, "gpuops", "GPU fleet", "bench")
            dt = time.perf_counter() - t0
            reqs = ", ".join(f"{n} {m}" for m, n in sorted(client.requests.items()))
            print(
                f"publish {label}: {reqs}; created {len(report.created)}, updated {len(report.updated)}, "
                f"unchanged {len(report.unchanged)}; {dt * 1000:.0f} ms on loopback"
            )
            client.close()


if __name__ == "__main__":
    main()
