"""Reading a fleet cluster by cluster: requests per refresh, the console's CPU per refresh and Prometheus's query
time per refresh, at 1, 3 and 10 clusters of one fleet (10,000 GPUs in all by default), each cluster its own
twin API and Prometheus (`cluster` external label), read two ways: each cluster's Prometheus on its own
(concurrently), and the global view (a Prometheus taking every cluster's remote writes of its records, `up` and
the few raw series the refresh joins: `global.holds: records`; `--global-holds all` sends it every series).

    .venv/bin/python bench/clusters_scale.py [--gpus 10000] [--clusters 1 3 10] [--refreshes 20]

It also times the first painted pools of `gpuops console` in tmux (median of 3), each way: once with every server
at the console's priority (this machine's two cores shared by the twin's fleet, every Prometheus and the
console), and once with the servers this bench started reniced to 10, to see how much of it is the console
losing the cores to them (the console then comes first for a core, and Prometheus's answers wait behind it).

Each cluster's Prometheus runs the catalog's recording rules (as kube-prometheus runs them in each cluster); their
records reach the global view by the remote writes, so the console reads recorded series both ways (the snapshot
says so, and the run stops if it does not). Prometheus's time is given for the refresh's raw queries (per cluster;
through the global view only when it holds every series) and for its recorded ones, and beside them the time
the rules take to evaluate once (each rule group's `evaluationTime`), which is where the raw queries' cost goes.

Prometheus's time is its own measure (`stats=all`, execTotalTime) for the refresh's queries: summed over the
clusters (the work), and the slowest cluster's (what a concurrent refresh waits for). The console's CPU is this
process's CPU time per snapshot build (sources and composition; no Textual). The 1-cluster run is the reference
each other figure is given against, measured in the same process.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.fleetgen import regional_catalog
from bench.paint import first_paint, tmux_server
from console.atomic import write_atomic
from console.catalog.clusters import per_region
from console.catalog.load import dump_catalog, load_catalog
from console.catalog.model import Catalog
from console.codegen.mixin import build_rules
from console.fleet import queries as q
from console.fleet.scope import for_catalog, for_global
from console.procs.clusters import RunningClusters, running_clusters
from console.wiring import Connections

SCRAPE_S = 5.0
# kube-prometheus evaluates its rules every 30 s: at 10,000 GPUs one evaluation of the mixin takes seconds, and
# every 5 s it would hold this 2-core machine's cores busy (measured: 4.1 s an evaluation at 1 cluster).
EVAL_S = 30.0


def query_ms(url: str, exprs: list[str]) -> float:
    """Prometheus's own execution time for `exprs`, ms (median of 3)."""
    runs = []
    # Raw reads of 10,000 GPUs through a global view that is taking every cluster's writes on this machine's two
    # cores have taken over a minute: a slow answer is a figure, not the end of the run.
    with httpx.Client(base_url=url, timeout=300) as http:
        for _ in range(3):
            total = 0.0
            for expr in exprs:
                r = http.get("/api/v1/query", params={"query": expr, "stats": "all"})
                r.raise_for_status()
                total += r.json()["data"]["stats"]["timings"]["execTotalTime"]
            runs.append(total * 1000)
    return statistics.median(runs)


def own_metrics(url: str) -> dict[str, float]:
    """A Prometheus's own series in memory and CPU seconds used, from its /metrics (the global view scrapes
    nothing, itself included)."""
    want = {"prometheus_tsdb_head_series": "series", "process_cpu_seconds_total": "cpu_s"}
    out = {}
    for line in httpx.get(f"{url}/metrics", timeout=30).text.splitlines():
        name, _, value = line.partition(" ")
        if name in want:
            out[want[name]] = float(value)
    return out


def rules_ms(url: str) -> float:
    """The time one evaluation of every rule group takes on a Prometheus, ms (its own last measure)."""
    groups = httpx.get(f"{url}/api/v1/rules", timeout=30).json()["data"]["groups"]
    return sum(float(g.get("evaluationTime", 0.0)) for g in groups) * 1000


def connected(catalog: Catalog, rc: RunningClusters, gpus: int) -> Connections:
    """A console's connections, once a refresh shows the whole fleet, read from the rules' recorded series."""
    conn = Connections(catalog, "", str(rc.kubeconfig), None)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        s = conn.snapshot()
        whole = round(sum(p.gpus_total for p in s.pools)) == gpus and not s.failing()
        if whole and s.read_as() == "recorded":
            return conn
        time.sleep(2)
    raise SystemExit(
        f"the {gpus}-GPU fleet never showed whole from recorded series: read {s.reads}, "
        f"{[x.error for x in s.failing()]}"
    )


def builds(conn: Connections, n: int) -> tuple[float, int]:
    """(median CPU ms per build, most requests in a build)."""
    cpu, reqs = [], 0
    for _ in range(n):
        c0 = time.process_time()
        s = conn.snapshot()
        cpu.append((time.process_time() - c0) * 1000)
        reqs = max(reqs, s.requests)
    return statistics.median(cpu), reqs


def paint(out: dict[str, float], key: str, catalog: Path, kubeconfig: Path) -> None:
    p = first_paint(["--catalog", str(catalog), "--kubeconfig", str(kubeconfig)])
    out[f"{key} paint_s"], out[f"{key} paint_cpu_s"] = p.wall_s, p.cpu_s


def renice_servers(niceness: int) -> int:
    """Every thread of every process this bench started (twins, Prometheus; not tmux, which detaches) to
    `niceness`; how many processes. Linux sets a niceness per thread, hence each task of each process."""
    parent: dict[int, int] = {}
    for d in Path("/proc").iterdir():
        try:
            stat = (d / "stat").read_text() if d.name.isdigit() else ""
        except OSError:
            continue  # gone meanwhile
        if stat:
            parent[int(d.name)] = int(stat[stat.rfind(")") + 2 :].split()[1])
    mine, todo = set(), [os.getpid()]
    while todo:
        pid = todo.pop()
        kids = [c for c, pp in parent.items() if pp == pid]
        mine.update(kids)
        todo.extend(kids)
    for pid in mine:
        try:
            for task in Path(f"/proc/{pid}/task").iterdir():
                os.setpriority(os.PRIO_PROCESS, int(task.name), niceness)
        except (OSError, ValueError):
            continue
    return len(mine)


def measure(gpus: int, clusters: int, refreshes: int, work: Path, holds: str) -> dict[str, float]:
    path = work / "fleet.yaml"
    write_atomic(path, dump_catalog(regional_catalog(gpus, clusters)))
    out: dict[str, float] = {}
    say = lambda line: print(f"  [{clusters} clusters] {line}", file=sys.stderr, flush=True)  # noqa: E731
    built = build_rules(regional_catalog(gpus, clusters), work / "rules")
    with running_clusters(path, work, scrape_interval_s=SCRAPE_S, eval_interval_s=EVAL_S, twin_timeout_s=600,
                          twin_args=("--warmup", "5"),
                          cluster_rules={c.name: (built.rules,) for c in per_region(load_catalog(path))},
                          forward=q.records_only_keep() if holds == "records" else None, say=say) as rc:  # fmt: skip
        both = load_catalog(rc.catalog_path)
        alone = both.model_copy(update={"global_view": None})
        # What holding the clusters' series costs the global view while the console reads: its series in memory
        # and the share of a core it uses (taking the remote writes, evaluating its rules, answering).
        g0, t0 = own_metrics(rc.global_url), time.monotonic()
        for mode, cat in (("per-cluster", alone), ("global", both)):
            conn = connected(cat, rc, gpus)
            out[f"{mode} cpu_ms"], out[f"{mode} requests"] = builds(conn, refreshes)
            conn.close()
        for how, exprs in (("raw", q.SNAPSHOT), ("recorded", q.SNAPSHOT_RECORDED)):
            mine = [for_catalog(alone)(e) for e in exprs.values()]
            each = [query_ms(url, mine) for url in rc.prometheus.values()]
            out[f"per-cluster {how} prom_ms_sum"], out[f"per-cluster {how} prom_ms_max"] = sum(each), max(each)
            if how == "recorded" or holds == "all":  # a global view of the records alone holds no raw series
                out[f"global {how} prom_ms"] = query_ms(rc.global_url, [for_global(both)(e) for e in exprs.values()])
            else:
                out[f"global {how} prom_ms"] = float("nan")
        g1, t1 = own_metrics(rc.global_url), time.monotonic()
        out["global head_series"], out["global cores"] = g1["series"], (g1["cpu_s"] - g0["cpu_s"]) / (t1 - t0)
        evals = [rules_ms(url) for url in rc.prometheus.values()]
        out["rules_ms_sum"], out["rules_ms_max"] = sum(evals), max(evals)
        each_path = work / "per-cluster.yaml"
        write_atomic(each_path, dump_catalog(alone))
        paint(out, "per-cluster", each_path, rc.kubeconfig)
        paint(out, "global", rc.catalog_path, rc.kubeconfig)
        out["servers reniced"] = renice_servers(10)
        paint(out, "per-cluster niced", each_path, rc.kubeconfig)
        paint(out, "global niced", rc.catalog_path, rc.kubeconfig)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gpus", type=int, default=10_000)
    ap.add_argument("--clusters", type=int, nargs="+", default=[1, 3, 10])
    ap.add_argument("--refreshes", type=int, default=20)
    ap.add_argument(
        "--global-holds",
        choices=["records", "all"],
        nargs="+",
        default=["records"],
        help="what the clusters send the global view: their records (the demo's layout) or every series; "
        "both (`records all`) measure each on its own stack, in this process",
    )
    args = ap.parse_args()
    results = {}
    with tmux_server():
        for n in args.clusters:
            for holds in args.global_holds:
                with tempfile.TemporaryDirectory(prefix=f"bench-clusters-{n}-") as tmp:
                    results[(n, holds)] = measure(args.gpus, n, args.refreshes, Path(tmp), holds)
                    print(f"  [{n} clusters, {holds}] {results[(n, holds)]}", file=sys.stderr, flush=True)
    ref = results[(args.clusters[0], args.global_holds[0])]
    print(
        f"{args.gpus} GPUs in all, scrape every {SCRAPE_S:g} s, rules every {EVAL_S:g} s, {args.refreshes} refreshes "
        "each ('records': the global view holds the records, up and the refresh's joins; 'all': every series), "
        "read from the rules' recorded series; requests are the busiest refresh's: 3 Prometheus queries a "
        "cluster (3 in all through the global view), plus each cluster's Kubernetes lists in the refreshes where "
        "their 10 s cache expires. Prometheus time: the refresh's queries, recorded and raw"
    )
    for (n, holds), r in results.items():
        pc, gl = (
            f"{r['per-cluster cpu_ms'] / ref['per-cluster cpu_ms']:.2f}",
            f"{r['global cpu_ms'] / ref['global cpu_ms']:.2f}",
        )
        print(
            f"{n:>3} clusters, global view of {holds}: each cluster's Prometheus: "
            f"{r['per-cluster requests']:.0f} requests a refresh, console "
            f"CPU {r['per-cluster cpu_ms']:.0f} ms ({pc}x), Prometheus recorded "
            f"{r['per-cluster recorded prom_ms_sum']:.1f} ms in all (slowest cluster "
            f"{r['per-cluster recorded prom_ms_max']:.1f} ms), raw {r['per-cluster raw prom_ms_sum']:.0f} ms "
            f"(slowest {r['per-cluster raw prom_ms_max']:.0f} ms); the rules' evaluation {r['rules_ms_sum']:.0f} ms "
            f"in all (slowest {r['rules_ms_max']:.0f} ms) | global view: {r['global requests']:.0f} requests, "
            f"console CPU {r['global cpu_ms']:.0f} ms ({gl}x), Prometheus recorded {r['global recorded prom_ms']:.1f} "
            f"ms, raw {r['global raw prom_ms']:.0f} ms; it holds {r['global head_series']:.0f} series and used "
            f"{r['global cores']:.2f} of a core meanwhile | first painted pools (tmux, median of 3): "
            f"{r['per-cluster paint_s']:.2f} s per cluster, {r['global paint_s']:.2f} s through the global view "
            f"(console CPU by then {r['per-cluster paint_cpu_s']:.2f} and {r['global paint_cpu_s']:.2f} s); "
            f"with the {r['servers reniced']:.0f} server processes at nice 10: {r['per-cluster niced paint_s']:.2f} s "
            f"and {r['global niced paint_s']:.2f} s"
        )


if __name__ == "__main__":
    main()
