"""The twin at fleet scale: /metrics render time and size, and the series Prometheus holds.

    .venv/bin/python bench/twin_scale.py [--gpus 10000] [--repeat 5]

Times are reported beside a reference run (the demo fleet) in the same process, as a ratio, because the
machine is shared and noisy.
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
from console.catalog import load_catalog
from console.procs import prometheus as prom
from console.sources.prometheus import PrometheusSource
from console.twin.metrics import render
from console.twin.server import TwinServer
from console.twin.sim import Twin

ROOT = Path(__file__).resolve().parent.parent


def time_render(twin: Twin, repeat: int) -> tuple[float, int]:
    times, size = [], 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        text = render(twin)
        times.append(time.perf_counter() - t0)
        size = len(text.encode())
    return statistics.median(times), size


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gpus", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()

    ref = Twin(load_catalog(ROOT / "fleet.yaml"), speed=0)
    ref_s, ref_size = time_render(ref, args.repeat)
    ref_gpus = sum(len(n.gpus) for n in ref.nodes.values())

    t0 = time.perf_counter()
    big = Twin(scaled_catalog(args.gpus), speed=1, warmup_s=5)
    build_s = time.perf_counter() - t0
    gpus = sum(len(n.gpus) for n in big.nodes.values())
    big_s, big_size = time_render(big, args.repeat)
    print(
        f"fleet: {len(big.nodes)} nodes ({sum(1 for n in big.nodes.values() if n.gpus)} with GPUs), {gpus} GPUs, "
        f"{len(big.pods)} pods; twin built in {build_s:.2f} s"
    )
    print(f"reference (demo fleet, {ref_gpus} GPUs): /metrics render {ref_s * 1000:.1f} ms, {ref_size / 1e6:.2f} MB")
    print(
        f"/metrics render at {gpus} GPUs: {big_s * 1000:.0f} ms median of {args.repeat} "
        f"({big_s / ref_s:.1f}x the reference), {big_size / 1e6:.1f} MB, "
        f"{sum(1 for line in render(big).splitlines() if line and not line.startswith('#'))} samples"
    )

    server = TwinServer(big)
    server.start()
    with tempfile.TemporaryDirectory(prefix="bench-prom-") as tmp:
        p = prom.prometheus(Path(tmp), server.url.removeprefix("http://"), scrape_interval_s=5.0)
        p.start()
        try:
            src = PrometheusSource(p.base_url, timeout_s=30)
            deadline = time.monotonic() + 120
            series = 0.0
            while time.monotonic() < deadline:
                up = src.query('up{job="twin"}')
                if up and up[0].value == 1:
                    head = src.query('count({job="twin"})')
                    series = head[0].value if head else 0.0
                    if series:
                        break
                time.sleep(1)
            dur = src.query('scrape_duration_seconds{job="twin"}')
            samples = src.query('scrape_samples_scraped{job="twin"}')
            if dur and samples:
                print(
                    f'Prometheus: {series:.0f} series from the twin (count({{job="twin"}})), '
                    f"scrape_samples_scraped {samples[0].value:.0f}, scrape_duration_seconds {dur[0].value:.2f} s"
                )
            else:
                print("Prometheus: no scrape completed")
        finally:
            p.stop()
            server.stop()


if __name__ == "__main__":
    main()
