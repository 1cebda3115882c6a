"""The console at fleet scale: requests per refresh, its own CPU per refresh against Prometheus's query time,
CPU and memory at a 1 s interval, and the time from `gpuops console` to the first painted data.

    .venv/bin/python bench/console_scale.py [--gpus 10000] [--small 1000] [--namespaces 200]
                                            [--refreshes 300] [--interval 1.0]

The twin runs as its own process (`gpuops twin`) and a real Prometheus scrapes it, so the CPU time measured
here (this process: the sources, the snapshot, the Textual app under Pilot) excludes both. Prometheus's time
for the same queries is its own measure (`stats=all`, execTotalTime), taken in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.fleetgen import scaled_catalog, write_catalog
from bench.paint import Paint, first_paint, tmux_server
from console.catalog.model import Catalog
from console.fleet import queries as q
from console.procs import prometheus as prom
from console.procs import twin as tw
from console.procs.process import Server
from console.tui.app import GpuopsApp
from console.wiring import Connections, connect

SCRAPE_S = 5.0  # a 10,000-GPU scrape takes about 1.5 s


@dataclass
class Fleet:
    catalog: Catalog
    gpus: int
    twin: Server
    prometheus: Server
    kubeconfig: Path

    def stop(self) -> None:
        self.prometheus.stop()
        self.twin.stop()


def start_fleet(gpus: int, namespaces: int, workdir: Path) -> Fleet:
    cat = scaled_catalog(gpus, namespaces=namespaces)
    path = write_catalog(cat, workdir / "fleet.yaml")
    kc = workdir / "kubeconfig.yaml"
    twin = tw.twin(workdir, "--catalog", str(path), "--kubeconfig", str(kc), "--warmup", "5")
    twin.start(timeout_s=180)
    p = prom.prometheus(workdir, twin.base_url.removeprefix("http://"), scrape_interval_s=SCRAPE_S)
    p.start()
    return Fleet(cat, gpus, twin, p, kc)


def connected(fleet: Fleet) -> Connections:
    conn = connect(fleet.catalog, fleet.prometheus.base_url, str(fleet.kubeconfig), "twin")
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        s = conn.snapshot()
        if sum(p.gpus_total for p in s.pools) == fleet.gpus and len(s.quotas) >= len(fleet.catalog.teams):
            return conn
        time.sleep(1)
    raise SystemExit(f"the {fleet.gpus}-GPU fleet never showed in Prometheus")


def requests_per_refresh(conn: Connections, n: int = 5) -> tuple[int, int]:
    """(most requests in a refresh, requests with a pool and one of its nodes drilled into); the HPA list's
    cache is emptied first, so each figure is the worst case."""
    conn.builder.kube.invalidate()  # type: ignore[union-attr]
    most = max(conn.snapshot().requests for _ in range(n))
    pool = next((p.pool, p.region) for p in conn.snapshot().pools if p.gpus_allocated)
    node = next(x.name for x in conn.snapshot(detail_pool=pool).nodes if x.gpus_allocated)
    conn.builder.kube.invalidate()  # type: ignore[union-attr]
    return most, conn.snapshot(detail_pool=pool, detail_node=node).requests


def prometheus_query_s(url: str, repeat: int = 5) -> float:
    """Prometheus's own execution time for one refresh's queries (median of `repeat`)."""
    runs = []
    with httpx.Client(base_url=url, timeout=60) as http:
        for _ in range(repeat):
            total = 0.0
            for expr in q.SNAPSHOT.values():
                r = http.get("/api/v1/query", params={"query": expr, "stats": "all"})
                r.raise_for_status()
                total += r.json()["data"]["stats"]["timings"]["execTotalTime"]
            runs.append(total)
    return statistics.median(runs)


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def run_console(conn: Connections, refreshes: int, interval: float, early: int = 30) -> dict[str, float]:
    app = GpuopsApp(conn, interval=interval)
    marks: dict[int, tuple[float, float, float]] = {}
    async with app.run_test(size=(120, 40)):
        last = -1
        while app.refreshes < refreshes:
            if app.refreshes != last:
                last = app.refreshes
                if last in (early, refreshes - 1) or last % 50 == 0:
                    marks[last] = (time.monotonic(), time.process_time(), rss_mib())
                    print(f"  refresh {last}: RSS {marks[last][2]:.1f} MiB", file=sys.stderr, flush=True)
            await asyncio.sleep(0.1)  # not pilot.pause: waiting for idle would add its own CPU
        marks[app.refreshes] = (time.monotonic(), time.process_time(), rss_mib())
    (w0, c0, m0), (w1, c1, m1) = marks[early], marks[refreshes]
    n = refreshes - early
    return {"cpu_per_refresh_s": (c1 - c0) / n, "core_share": (c1 - c0) / (w1 - w0), "rss_early": m0, "rss_late": m1}


def paint(fleet: Fleet) -> Paint:
    """Median first paint of `gpuops console` on `fleet`, in tmux."""
    with tempfile.TemporaryDirectory() as tmp, tmux_server():
        catalog = write_catalog(fleet.catalog, Path(tmp) / "fleet.yaml")
        args = [
            "--catalog",
            str(catalog),
            "--prometheus",
            fleet.prometheus.base_url,
            "--kubeconfig",
            str(fleet.kubeconfig),
        ]
        return first_paint(args, width=120)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gpus", type=int, default=10_000)
    ap.add_argument("--small", type=int, default=1_000, help="the smaller fleet the request count is compared with")
    ap.add_argument("--namespaces", type=int, default=200)
    ap.add_argument("--refreshes", type=int, default=300)
    ap.add_argument("--interval", type=float, default=1.0)
    args = ap.parse_args()
    if not shutil.which("tmux"):
        raise SystemExit("tmux is needed for the first-paint figure (./dev installs it)")

    with tempfile.TemporaryDirectory(prefix="bench-console-small-") as tmp:
        small = start_fleet(args.small, args.namespaces, Path(tmp))
        try:
            conn = connected(small)
            small_reqs = requests_per_refresh(conn)
            conn.close()
        finally:
            small.stop()

    with tempfile.TemporaryDirectory(prefix="bench-console-big-") as tmp:
        big = start_fleet(args.gpus, args.namespaces, Path(tmp))
        try:
            conn = connected(big)
            nodes = sum(p.nodes for p in conn.snapshot().pools)
            print(
                f"fleet: {args.gpus} GPUs on {nodes} nodes, 3 regions, {args.namespaces} namespaces;"
                f" Prometheus scrapes every {SCRAPE_S:g} s",
                flush=True,
            )
            big_reqs = requests_per_refresh(conn)
            print(
                f"requests per refresh: {small_reqs[0]} at {args.small} GPUs, {big_reqs[0]} at {args.gpus} GPUs"
                f" ({small_reqs[1]} and {big_reqs[1]} with a pool's nodes and a node's GPUs open)",
                flush=True,
            )
            prom_s = prometheus_query_s(big.prometheus.base_url)
            live = asyncio.run(run_console(conn, args.refreshes, args.interval))
            conn.close()
            ratio = live["cpu_per_refresh_s"] / prom_s if prom_s else float("nan")
            print(
                f"console CPU per refresh: {live['cpu_per_refresh_s'] * 1000:.1f} ms; Prometheus query time for the"
                f" same queries: {prom_s * 1000:.1f} ms; ratio {ratio:.2f}"
            )
            print(
                f"at a {args.interval:g} s interval: {100 * live['core_share']:.1f} % of one core"
                f" over refreshes 30 to {args.refreshes}"
            )
            growth = 100 * (live["rss_late"] / live["rss_early"] - 1)
            print(
                f"memory (RSS): {live['rss_early']:.1f} MiB after 30 refreshes, {live['rss_late']:.1f} MiB after"
                f" {args.refreshes} ({growth:+.1f} %)",
                flush=True,
            )
            painted = paint(big)
            print(f"gpuops console to first painted data: {painted} (median of 3, in tmux)")
        finally:
            big.stop()


if __name__ == "__main__":
    main()
