"""One console over three clusters: the twin with one Kubernetes API and /metrics per region
(`gpuops twin --clusters per-region`), a real Prometheus per cluster with its `cluster` external label, and the
global view (a Prometheus taking their remote writes), or each cluster's Prometheus read on its own. The merged
Pools view equals the catalog; `cluster_down` on one: the banner names it, its rows stay (stale), the other two
keep refreshing; `:ctx NAME` narrows the views to one cluster and `:ctx all` merges them again."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from console.catalog import load_catalog
from console.codegen.mixin import build_rules, split_for_global
from console.fleet.queries import records_only_keep
from console.procs.clusters import RunningClusters, running_clusters
from console.tui.app import GpuopsApp
from console.tui.table import KeyedTable
from console.wiring import connect
from tests.e2e.conftest import FLEET_START, ROOT, wait_for
from tests.e2e.console_helpers import cell, rows, until
from tests.fleetdoc import doc, gpus_per_pool

INTERVAL = 0.5
LOST = "eu-west"
# How long after a change in traffic the recorded request rates hold all of it: their rate window (1m), and a
# scrape and an evaluation after it.
RATE_WINDOW_S = 70.0
# Without the global view, the clusters whose own Prometheus runs the rules (the lost one is read raw).
RULED = ("us-east", "ap-southeast")
ALL = ("us-east", "eu-west", "ap-southeast")


@pytest.fixture(scope="module", params=["global", "global-all", "per-cluster"])
def clusters(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningClusters]:
    work = tmp_path_factory.mktemp(f"clusters-{request.param}")
    glob = request.param.startswith("global")
    # `global` (the demo's layout): each cluster runs the rules and sends the global view its records alone,
    # the global view evaluating ClusterDown. `global-all`: the global view takes every series and evaluates
    # the rules over them. Without it, one cluster's Prometheus records the rules' series and the others have
    # none: the console reads both ways.
    built = build_rules(load_catalog(ROOT / "fleet.yaml"), work / "rules", speed=60)
    rules: tuple[Path, ...] = (built.rules, built.alerts) if glob else ()
    ruled: dict[str, tuple[Path, ...]] = {} if glob else {c: (built.rules,) for c in RULED}
    forward = None
    if request.param == "global":
        split = split_for_global(built)
        rules, ruled, forward = split.global_view, dict.fromkeys(ALL, split.cluster), records_only_keep()
    # The twin's clock starts on a date the test sets, not today's: its day decides each region's demand, and a
    # catalog event (a year-end gala) triples it.
    start = ("--start", FLEET_START.strftime("%Y-%m-%dT%H:%M:%S"))
    with running_clusters(
        ROOT / "fleet.yaml",
        work,
        speed=60,
        global_view=glob,
        rule_files=rules,
        cluster_rules=ruled,
        twin_args=start,
        forward=forward,
    ) as rc:
        yield rc


def query(url: str, promql: str) -> dict[str, float]:
    r = httpx.get(f"{url}/api/v1/query", params={"query": promql}, timeout=10)
    r.raise_for_status()
    return {s["metric"].get("cluster", ""): float(s["value"][1]) for s in r.json()["data"]["result"]}


def test_the_global_view_holds_every_cluster_under_its_own_label(clusters: RunningClusters) -> None:
    nodes = {r["name"]: sum(p["nodes"].get(r["name"], 0) for p in doc()["pools"]) for r in doc()["regions"]}
    for name, url in clusters.prometheus.items():
        # A cluster's own Prometheus holds its nodes only; the external label is not on its local series.
        wait_for(lambda url=url: query(url, "count(kube_node_info)"), what=f"{name}'s first scrape")
        assert query(url, "count(kube_node_info)") == {"": nodes[name]}
    if holds_records(clusters):
        # The records of every cluster's nodes, and no node or GPU series: those stay in the clusters.
        got = wait_for(
            lambda: (
                (v := query(clusters.global_url, "sum by (cluster) (gpuops:pool_region:nodes:count)")) == nodes and v
            ),
            what="every cluster's node records in the global view",
        )
        assert got == nodes
        for raw in ("kube_node_info", "DCGM_FI_DEV_GPU_UTIL", "kube_pod_info"):
            assert query(clusters.global_url, f"count({raw})") == {}, raw
        assert query(clusters.global_url, "count by (cluster) (up)").keys() == nodes.keys()
    elif clusters.global_url:
        got = wait_for(
            lambda: (v := query(clusters.global_url, "count by (cluster) (kube_node_info)")) == nodes and v,
            what="every cluster's nodes in the global view",
        )
        assert got == nodes


def holds_records(clusters: RunningClusters) -> bool:
    """Whether the stack's global view holds the records alone (as the catalog it wrote says, read plainly)."""
    import yaml

    return (yaml.safe_load(clusters.catalog_path.read_text()).get("global") or {}).get("holds") == "records"


async def test_merged_pools_a_lost_cluster_stays_stale_and_ctx_narrows(clusters: RunningClusters) -> None:
    catalog = load_catalog(clusters.catalog_path)
    want = {f"{p}/{r}": g for (p, r), g in gpus_per_pool(cpu=True).items()}
    # Each Prometheus is read by the rules' records where they are, raw where they are not.
    for where in [clusters.global_url] if clusters.global_url else [clusters.prometheus[c] for c in RULED]:
        wait_for(lambda w=where: query(w, "count(gpuops:pool_region:nodes:count)"), what="the rules' first records")
    reads = (
        {"prometheus": "recorded"}
        if clusters.global_url
        else {f"cluster {c}": "recorded" if c in RULED else "raw" for c in clusters.prometheus}
    )
    conn = connect(catalog, "", str(clusters.kubeconfig), None)
    assert conn.context == "all" and conn.contexts()[0] == "all"
    try:
        app = GpuopsApp(conn, interval=INTERVAL, operator="tester")
        async with app.run_test(size=(160, 40)) as pilot:
            pools = app.query_one("#table-pools", KeyedTable)

            def merged() -> bool:
                return set(rows(pools)) == set(want) and all(float(cell(pools, k, "total")) == want[k] for k in want)

            await until(pilot, merged, what=f"the merged pools to equal the catalog's {want}")
            assert app.snapshot is not None and app.snapshot.reads == reads
            # Every row says its cluster: the cluster of its region, in this layout one per region.
            assert {k: cell(pools, k, "cluster") for k in want} == {k: k.split("/")[1] for k in want}

            # `:ctx us-east`: that cluster's rows only; `:ctx all`: every cluster again.
            app.run_command("ctx us-east")
            await until(pilot, lambda: {k.split("/")[1] for k in rows(pools)} == {"us-east"}, what="us-east only")
            app.run_command("ctx all")
            await until(pilot, lambda: set(rows(pools)) == set(want), what="all clusters again")

            # A drill-down reads the pool's nodes and a node's GPUs where their raw series are: in its cluster's
            # own Prometheus when the global view holds the records alone.
            pool = next(p for p in doc()["pools"] if p["nodes"].get("ap-southeast") and not p.get("mig"))
            key = f"{pool['name']}/ap-southeast"
            pools.move_cursor(row=pools.get_row_index(key))
            await pilot.press("enter")
            count = pool["nodes"]["ap-southeast"]
            await until(pilot, lambda: len(rows(pools)) == count and key not in rows(pools), what=f"{count} nodes")
            pools.move_cursor(row=0)
            await pilot.press("enter")
            gpus = pool["gpus_per_node"]
            await until(pilot, lambda: pools.row_count == gpus, what=f"the node's {gpus} GPUs")
            await pilot.press("escape")
            await pilot.press("escape")
            await until(pilot, lambda: set(rows(pools)) == set(want), what="the pools again")

            # One cluster goes down: its API and /metrics stop answering.
            r = httpx.post(
                f"{clusters.twin['us-east']}/twin/faults",
                json={"kind": "cluster_down", "target": {"cluster": LOST}, "duration_s": 36000},
            )
            assert r.status_code == 201, r.text
            banner = app.query_one("#banner")
            # Shown, not merely there: a hidden banner keeps the text of the last failure (a fresh stack's first
            # refreshes fail until the rules have recorded every cluster).
            await until(
                pilot, lambda: banner.display and f"cluster {LOST} failing" in str(banner.render()), what="the banner"
            )
            # The lost cluster's rows stay on screen with their last figures; the others keep refreshing.
            assert set(rows(pools)) == set(want)
            assert all(float(cell(pools, k, "total")) == want[k] for k in want if k.endswith(LOST))
            seen = app.refreshes
            await until(pilot, lambda: app.refreshes >= seen + 3, what="three more refreshes")
            snap = app.snapshot
            assert snap is not None
            now = snap.taken_at
            for name in ("us-east", "ap-southeast"):
                live = snap.sources[f"cluster {name}"]
                assert live.ok and live.last_success is not None
                assert (now - live.last_success).total_seconds() < 2 * INTERVAL + snap.build_s
            lost = snap.sources[f"cluster {LOST}"]
            assert not lost.ok and lost.last_success is not None and lost.failing_since is not None
            assert all(r.cluster != LOST or r.region == LOST for r in snap.services)

            # The fault ended, the cluster answers again and the banner goes.
            faults = httpx.get(f"{clusters.twin['ap-southeast']}/twin/faults").json()["faults"]
            fid = next(f["id"] for f in faults if f["kind"] == "cluster_down" and f["target"]["cluster"] == LOST)
            assert httpx.delete(f"{clusters.twin['ap-southeast']}/twin/faults/{fid}").status_code == 200
            await until(pilot, lambda: not banner.display, timeout=60, what="the banner to clear")
            assert app.snapshot is not None and not app.snapshot.failing()
    finally:
        conn.close()


async def test_each_clusters_own_alertmanager_shows_its_alerts_and_takes_their_silences(
    clusters: RunningClusters, tmp_path: Path
) -> None:
    """us-east and eu-west each run their own Alertmanager (ap-southeast none), named in the catalog: the Alerts
    view shows both clusters' alerts with their Cluster, a silence goes to the Alertmanager holding the alert,
    and with eu-west's Alertmanager gone the banner names it while its alert stays (stale)."""
    from console.procs.alertmanager import alertmanager
    from console.tui.dialogs import SilenceDialog

    ams = {}
    try:
        for name in ("us-east", "eu-west"):
            (tmp_path / name).mkdir()
            ams[name] = alertmanager(tmp_path / name).start()
        for name, am in ams.items():  # Alertmanager's own HTTP API, as a cluster's Prometheus would send them
            alert = {"labels": {"alertname": "GpuNodeXidErrors", "severity": "critical", "team": "sre", "node": name}}
            assert httpx.post(f"{am.base_url}/api/v2/alerts", json=[alert]).status_code == 200
        base = load_catalog(clusters.catalog_path)
        catalog = base.model_copy(
            update={
                "clusters": [
                    c.model_copy(update={"alertmanager": ams[c.name].base_url if c.name in ams else ""})
                    for c in base.clusters
                ]
            }
        )
        conn = connect(catalog, "", str(clusters.kubeconfig), None)
        try:
            app = GpuopsApp(conn, interval=INTERVAL, operator="sre-on-call")
            async with app.run_test(size=(160, 40)) as pilot:
                await pilot.press("4")
                alerts = app.query_one("#table-alerts", KeyedTable)

                def by_cluster() -> dict[str, str]:
                    return {
                        cell(alerts, k, "cluster"): k
                        for k in rows(alerts)
                        if "GpuNodeXidErrors" in cell(alerts, k, "alert")
                    }

                await until(pilot, lambda: set(by_cluster()) == set(ams), what="each cluster's alert, with its cluster")
                key = by_cluster()["eu-west"]
                alerts.move_cursor(row=alerts.get_row_index(key))
                await pilot.press("s")
                await until(pilot, lambda: isinstance(app.screen, SilenceDialog), what="the confirmation dialog")
                assert "cluster eu-west's Alertmanager" in str(app.screen.query_one("#silence-where").render())
                await pilot.click("#silence-confirm")
                await until(pilot, lambda: cell(alerts, key, "state") == "silenced", what="the alert silenced")

                def silences(name: str) -> list[dict]:
                    got = httpx.get(f"{ams[name].base_url}/api/v2/silences").json()
                    return [s for s in got if s["createdBy"] == "sre-on-call" and s["status"]["state"] == "active"]

                [made] = silences("eu-west")
                assert {m["name"]: m["value"] for m in made["matchers"]}["node"] == "eu-west"
                assert silences("us-east") == []
                assert cell(alerts, by_cluster()["us-east"], "state") == "firing"

                ams["eu-west"].stop()
                banner = app.query_one("#banner")
                await until(
                    pilot,
                    lambda: banner.display and "alertmanager eu-west failing" in str(banner.render()),
                    what="the banner",
                )
                assert set(by_cluster()) == set(ams)  # its alert stays on screen, stale
        finally:
            conn.close()
    finally:
        for am in ams.values():
            am.stop()


def test_console_refuses_to_start_without_any_prometheus(tmp_path: Path) -> None:
    import subprocess
    import sys

    r = subprocess.run(
        [sys.executable, "-m", "console.cli", "console", "--catalog", str(ROOT / "fleet.yaml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2 and "--prometheus is required" in r.stderr, r.stderr


def test_region_failover_moves_weight_between_clusters_and_rolls_back(
    clusters: RunningClusters, tmp_path: Path
) -> None:
    """A lost cluster's service fails over to another cluster: the target's weight rises in its own cluster's
    routing config map (the lost one does not answer, and keeps its own), the journal records which cluster each
    change was made in, and the rollback puts it back there. Without a global view the runbook is given a third
    cluster's Prometheus: the target's checks are read in the target's own, its traffic over every cluster's."""
    import json
    import math
    import re
    import subprocess
    import sys
    import time

    svc = next(s for s in doc()["services"] if s["name"] == "llm-chat")
    source, target = LOST, "us-east"
    assert target in RULED and source not in RULED
    kc = str(clusters.kubeconfig)

    def weight(context: str, region: str) -> str:
        out = subprocess.run(
            ["kubectl", "--kubeconfig", kc, "--context", context, "-n", svc["namespace"], "get", "configmap",
             f"{svc['deployment']}-routing", "-o", f"jsonpath={{.data.weight\\.{region}}}"],
            capture_output=True, text=True, timeout=30, check=True,
        )  # fmt: skip
        return out.stdout

    before = weight(target, target)
    assert before == "100"  # each single-region cluster starts its own region at the whole weight
    # The rules have recorded the target's nodes and capacity and the service's requests: the preconditions.
    ready = f'gpuops:region:nodes_ready:sum{{region="{target}"}}'
    requests = f'sum(gpuops:service_region:requests:rate1m{{service="{svc["name"]}"}})'
    capacity = f'sum(gpuops:service_region:capacity_rps{{service="{svc["name"]}", region="{target}"}})'
    own = clusters.global_url or clusters.prometheus[target]  # where the target's records are
    everywhere = [clusters.global_url] if clusters.global_url else [clusters.prometheus[c] for c in RULED]

    def headroom() -> float:
        """1 - the service's requests over every surviving cluster / the target's capacity, read here."""
        total = sum(query(url, requests).get("", 0.0) for url in everywhere)
        return 1 - total / query(own, capacity).get("", math.nan)

    wait_for(
        lambda: query(own, ready) and math.isfinite(headroom()) and all(query(u, requests) for u in everywhere),
        timeout=90,
        what="the rules to record the target's capacity and the service's requests",
    )
    # The target is sized first to carry the whole service, as an SRE pre-scales it before a failover: the
    # service's requests in every cluster (raw, in each one's own Prometheus) with a quarter to spare, at what one
    # of its ready replicas serves (the recorded capacity over its replicas). Without it, whether it could depends
    # on the hour of the twin's day, which depends on this machine's speed (60 simulated s a second).
    raw = f'sum(rate(service_requests_total{{service="{svc["name"]}"}}[1m]))'
    dep = f"{svc['deployment']}-{target}"
    kubectl = ["kubectl", "--kubeconfig", kc, "--context", target, "-n", svc["namespace"]]

    def available() -> int:
        out = subprocess.run([*kubectl, "get", "deployment", dep, "-o", "jsonpath={.status.availableReplicas}"],
                             capture_output=True, text=True, timeout=30, check=True)  # fmt: skip
        return int(out.stdout or 0)

    def scraped_for(url: str) -> float:
        """Seconds of samples a Prometheus holds (of `up`, over the last 5 minutes)."""
        r = httpx.get(f"{url}/api/v1/query", params={"query": "up[5m]"}, timeout=10)
        firsts = [float(s["values"][0][0]) for s in r.json()["data"]["result"] if s["values"]]
        return time.time() - min(firsts, default=time.time())

    # The rates count a whole window only once each Prometheus holds one: read earlier, they are still rising.
    wait_for(
        lambda: all(scraped_for(url) > RATE_WINDOW_S for url in clusters.prometheus.values()),
        timeout=120,
        what="a rate window of samples in every cluster's Prometheus",
    )
    had = available()
    per_replica = query(own, capacity)[""] / had
    demand = sum(query(url, raw).get("", 0.0) for url in clusters.prometheus.values())
    replicas = max(had, math.ceil(1.25 * demand / per_replica))
    subprocess.run([*kubectl, "patch", "deployment", dep, "--type", "merge", "-p",
                    json.dumps({"spec": {"replicas": replicas}})], capture_output=True, timeout=30, check=True)  # fmt: skip
    wait_for(lambda: available() == replicas, timeout=60, what=f"{replicas} ready replicas of {dep}")
    # The clock stops before the cluster goes, so the demand holds still: once a rate window has passed since the
    # fault, the survivors' rates hold the lost cluster's traffic too (the global balancer moved it) and stop
    # moving. The preconditions read them then, not the rates from before the loss.
    assert httpx.post(f"{clusters.twin[target]}/twin/clock", json={"speed": 0}).status_code == 200
    r = httpx.post(
        f"{clusters.twin[target]}/twin/faults",
        json={"kind": "cluster_down", "target": {"cluster": source}, "duration_s": 36000},
    )
    assert r.status_code == 201, r.text
    lost_at, totals = time.time(), []

    def settled() -> bool:
        totals.append(sum(query(url, requests).get("", 0.0) for url in everywhere))
        steady = len(totals) > 1 and abs(totals[-1] - totals[-2]) <= 0.01 * totals[-1]
        return time.time() > lost_at + RATE_WINDOW_S and steady

    wait_for(settled, timeout=240, every=5, what="the survivors' rates to hold the lost cluster's traffic")
    assert query(own, capacity)[""] == pytest.approx(per_replica * replicas, rel=1e-6)
    assert headroom() >= 0.05, (headroom(), totals)
    journal = tmp_path / "journal.jsonl"
    base = [sys.executable, "-m", "console.cli", "runbook"]
    given = clusters.global_url or clusters.prometheus["ap-southeast"]  # without one: a cluster not the target's
    conn = ["--catalog", str(clusters.catalog_path), "--prometheus", given, "--kubeconfig", kc,
            "--context", target, "--journal", str(journal), "--operator", "tester"]  # fmt: skip
    low = headroom()
    run = subprocess.run(
        [*base, "run", "region-failover", f"service={svc['name']}", f"source={source}", f"target={target}",
         "headroom=0", *conn, "--execute"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    high = headroom()
    assert httpx.post(f"{clusters.twin[target]}/twin/clock", json={"speed": 60}).status_code == 200
    out = run.stdout + run.stderr
    assert run.returncode == 0, out
    assert f"cluster {source} does not answer" in out, out
    # The plan says where each precondition was read, and the headroom it read is the one computed here from
    # the same records (the rates move while the run plans: between the readings before and after it).
    fleet = "the global view" if clusters.global_url else "every cluster's Prometheus"
    assert f"read in cluster {target}'s Prometheus" in out, out
    assert f"read its traffic over {fleet}, its capacity in cluster {target}'s Prometheus" in out, out
    got = float(re.search(r"the target can carry all the traffic with headroom: (-?[\d.]+)", out).group(1))
    assert min(low, high) - 0.02 <= got <= max(low, high) + 0.02, (got, low, high)
    assert weight(target, target) == "200"
    changes = [rec for rec in map(json.loads, journal.read_text().splitlines()) if rec["event"] == "change_start"]
    assert [(c["change"]["target"].get("cluster"), c["change"]["path"]) for c in changes] == [
        (target, ["data", f"weight.{target}"])
    ], changes
    run_id = changes[0]["run"]

    # The lost cluster comes back (its weight never moved); the rollback puts the target's weight back in its
    # own cluster.
    faults = httpx.get(f"{clusters.twin[target]}/twin/faults").json()["faults"]
    for f in faults:
        if f["kind"] == "cluster_down" and f["end"] > f["start"]:
            httpx.delete(f"{clusters.twin[target]}/twin/faults/{f['id']}")
    assert weight(source, source) == "100"
    back = subprocess.run([*base, "rollback", run_id, *conn], capture_output=True, text=True, timeout=300)
    assert back.returncode == 0, back.stdout + back.stderr
    assert weight(target, target) == before and weight(source, source) == "100"
    subprocess.run([*kubectl, "patch", "deployment", dep, "--type", "merge", "-p",
                    json.dumps({"spec": {"replicas": had}})], capture_output=True, timeout=30, check=True)  # fmt: skip


def test_doctor_checks_each_cluster_where_the_console_reads_it(clusters: RunningClusters) -> None:
    """`gpuops doctor` on a catalog of clusters: the global view (every cluster under its label, the rules), each
    cluster's own Prometheus and its context's pools (those of its regions only), each line naming its cluster.
    A lost cluster is unreachable there, exit 2, and the others are still checked."""
    import json

    import yaml
    from click.testing import CliRunner

    from console.cli import main

    plain = yaml.safe_load(clusters.catalog_path.read_text())  # the catalog the stack wrote, read plainly
    names = [c["name"] for c in plain["clusters"]]
    regions = {c["name"]: c["regions"] for c in plain["clusters"]}

    def doctor() -> tuple[int, dict]:
        args = ["doctor", "--catalog", str(clusters.catalog_path), "--kubeconfig", str(clusters.kubeconfig)]
        r = CliRunner().invoke(main, [*args, "--format", "json"])
        assert r.output.startswith("{"), r.output  # no --prometheus needed: the catalog names each one
        return r.exit_code, json.loads(r.output)

    def by(doc: dict) -> dict[tuple[str, str], dict]:
        return {(c["cluster"], c["name"]): c for c in doc["checks"]}

    def scraped() -> dict | None:
        code, doc = doctor()
        got = by(doc)
        ok = all(got.get((c, "dcgm-exporter series"), {}).get("verdict") == "ok" for c in names)
        # A cluster back from a loss (an earlier test's) sends its records again once its rules have run.
        records = [got.get(("global view", f"cluster {c}'s records in the global view"), {}) for c in names]
        ok = ok and (not holds_records(clusters) or all(r.get("verdict") == "ok" for r in records))
        return doc if ok and code in (0, 1) else None

    got = by(wait_for(scraped, timeout=60, what="the doctor to find every cluster's exporters"))
    for c in names:
        for name in ("dcgm-exporter series", "kube-state-metrics series", "node labels exported"):
            assert got[(c, name)]["verdict"] == "ok", got[(c, name)]
        pools = {k[1] for k in got if k[0] == c and k[1].startswith("pool ")}
        assert pools == {f"pool {p['name']}" for p in plain["pools"] if any(p["nodes"].get(r) for r in regions[c])}
        for p in plain["pools"]:
            planned = sum(p["nodes"].get(r, 0) for r in regions[c])
            if planned:
                check = got[(c, f"pool {p['name']}")]
                assert check["verdict"] == "ok" and check["detail"].startswith(f"{planned} nodes"), check
    rules = {k[0]: v["verdict"] for k, v in got.items() if k[1] == "gpuops rules loaded"}
    if holds_records(clusters):  # the rules run in each cluster, ClusterDown in the global view
        assert rules == {"global view": "ok", **dict.fromkeys(names, "ok")}
        for c in names:
            check = got[("global view", f"cluster {c}'s records in the global view")]
            assert check["verdict"] == "ok", check
        assert not any(k == ("global view", "dcgm-exporter series") for k in got)
    elif clusters.global_url:
        assert rules == {"global view": "ok"}
        assert all(got[("global view", f"cluster {c} in the global view")]["verdict"] == "ok" for c in names)
    else:
        assert rules == {c: "ok" if c in RULED else "miss" for c in names}
    misses = {k for k, v in got.items() if v["verdict"] != "ok"}
    assert misses == ({(LOST, "gpuops rules loaded")} if not clusters.global_url else set()), misses

    r = httpx.post(
        f"{clusters.twin['us-east']}/twin/faults",
        json={"kind": "cluster_down", "target": {"cluster": LOST}, "duration_s": 3600},
    )
    assert r.status_code == 201, r.text
    try:
        code, doc = doctor()
        # Its Prometheus answers, with no exporter series once a scrape has failed: the targets down are named,
        # not an exporter to install.
        dcgm = wait_for(
            lambda: "targets are down" in (d := by(doctor()[1])[(LOST, "dcgm-exporter series")])["detail"] and d,
            timeout=30,
            what="the lost cluster's Prometheus to find its targets down",
        )
    finally:
        httpx.delete(f"{clusters.twin['us-east']}/twin/faults/{r.json()['id']}")
    assert dcgm["verdict"] == "miss" and dcgm["fix"].startswith("bring the down targets back"), dcgm
    got = by(doc)
    assert code == 2 and got[(LOST, "reachable")]["area"] == "kubernetes", doc["unreachable"]
    assert any(u.startswith(f"{LOST}: ") for u in doc["unreachable"]), doc["unreachable"]
    assert all(got[(c, "dcgm-exporter series")]["verdict"] == "ok" for c in names if c != LOST)


def test_costs_read_every_clusters_pods(clusters: RunningClusters) -> None:
    """The Costs view's month prices the GPU pods of every cluster: through the global view where it holds every
    series, else from each cluster's own Prometheus (a global view of the records alone has no pod series)."""
    catalog = load_catalog(clusters.catalog_path)
    regions = {r["name"] for r in doc()["regions"]}
    conn = connect(catalog, "", str(clusters.kubeconfig), None)
    try:

        def priced() -> set[str]:
            month = conn.costs()
            return {r.region for r in month.period.report.rows if r.namespace != "__idle__" and r.gpu_hours > 0}

        got = wait_for(lambda: (v := priced()) == regions and v, timeout=120, every=5, what="every region's pods")
        assert got == regions
        if holds_records(clusters):
            assert query(clusters.global_url, 'count(kube_pod_container_resource_requests{node!=""})') == {}
    finally:
        conn.close()
