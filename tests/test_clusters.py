"""A fleet split into clusters: the twin serving one Kubernetes API and /metrics per cluster on one clock, the
global load balancer across them, `cluster_down`, and the catalog's per-cluster Prometheus and global view."""

from __future__ import annotations

import http.client
from collections import Counter
from datetime import UTC, datetime
from urllib.parse import urlsplit

import httpx
import pytest
from kubernetes import client, config

from console.catalog.clusters import per_region
from console.catalog.load import CatalogError, parse_catalog
from console.twin.clusters import ClusterSet, Router, split_clusters
from console.twin.kubeconfig import write_kubeconfig
from console.twin.model import SimClock
from console.twin.server import TwinServer
from console.twin.sim import Twin
from tests.fleetdoc import ROOT, doc, gpus_per_pool

START = datetime(2026, 12, 28, 20, tzinfo=UTC)


@pytest.fixture(scope="module")
def clusters(catalog, tmp_path_factory):
    clock, router = SimClock(START, 0), Router()
    parts = split_clusters(catalog, per_region(catalog))
    twins = {c.name: Twin(cat, clock=clock, router=router, warmup_s=0) for c, cat in parts}
    servers = {name: TwinServer(t, clusters=ClusterSet(twins)) for name, t in twins.items()}
    for s in servers.values():
        s.start()
    kc = tmp_path_factory.mktemp("kube") / "kubeconfig.yaml"
    write_kubeconfig(kc, {name: s.url for name, s in servers.items()})
    yield twins, servers, kc
    for s in servers.values():
        s.stop()


def _core(kc, context: str) -> client.CoreV1Api:
    return client.CoreV1Api(config.new_client_from_config(config_file=str(kc), context=context))


def _tick(twins) -> None:
    for _ in range(2):  # the router learns every cluster's demand in the first round
        for t in twins.values():
            with t.lock:
                t.tick(1.0)


def test_each_cluster_serves_its_regions_nodes_and_deployments(clusters) -> None:
    twins, servers, kc = clusters
    plain = doc()
    assert set(twins) == {r["name"] for r in plain["regions"]}
    gpus = gpus_per_pool()
    for region in twins:
        nodes = _core(kc, region).list_node().items
        assert {n.metadata.labels["topology.kubernetes.io/region"] for n in nodes} == {region}
        assert len(nodes) == sum(p["nodes"].get(region, 0) for p in plain["pools"])
        total = sum(int(n.status.allocatable.get("nvidia.com/gpu", "0")) for n in nodes)
        assert total == sum(g for (_, r), g in gpus.items() if r == region and not _mig(plain, _))
        apps = client.AppsV1Api(config.new_client_from_config(config_file=str(kc), context=region))
        deps = {d.metadata.name for d in apps.list_deployment_for_all_namespaces().items}
        want = {f"{s['deployment']}-{region}" for s in plain["services"] if region in s["regions"]}
        assert want <= deps and all(d.endswith(f"-{region}") for d in deps)
    # Every cluster's /metrics holds its own nodes only.
    for region, s in servers.items():
        text = httpx.get(f"{s.url}/metrics").text
        regions = Counter(line.split('region="')[1].split('"')[0] for line in text.splitlines() if 'region="' in line)
        assert set(regions) == {region}


def _mig(plain, pool_name: str) -> bool:
    return bool(next(p for p in plain["pools"] if p["name"] == pool_name).get("mig"))


def test_cluster_down_drops_its_api_and_metrics_and_the_balancer_moves_its_traffic(clusters) -> None:
    twins, servers, kc = clusters
    _tick(twins)
    svc = next(s for s in doc()["services"] if len(s["regions"]) == 3)
    before = {r: twins[r].services[(svc["name"], r)].last.demand_rps for r in svc["regions"]}
    lost = svc["regions"][0]
    survivors = [r for r in svc["regions"] if r != lost]
    # Posted to a surviving cluster's twin endpoint: it names the cluster it takes away.
    r = httpx.post(
        f"{servers[survivors[0]].url}/twin/faults",
        json={"kind": "cluster_down", "target": {"cluster": lost}, "duration_s": 3600},
    )
    assert r.status_code == 201, r.text
    fault = r.json()
    _tick(twins)
    with pytest.raises(Exception) as e:  # the client wraps the dropped connection its own way
        _core(kc, lost).list_node(_request_timeout=3)
    assert "RemoteDisconnected" in repr(e.value) or "ProtocolError" in repr(e.value), repr(e.value)
    # The console's reads say so in one line: the context, its server, the cause under urllib3's wrappers.
    from console.sources.kube import KubeError, KubeSource

    with pytest.raises(KubeError) as ke:
        KubeSource(str(kc), lost).hpas()
    where = urlsplit(servers[lost].url).netloc
    assert str(ke.value).startswith(f"503 Unreachable: {lost} at {where}: no answer: "), str(ke.value)
    assert "RemoteDisconnected" in str(ke.value) and "MaxRetryError" not in str(ke.value), str(ke.value)
    host = urlsplit(servers[lost].url)
    conn = http.client.HTTPConnection(host.hostname, host.port, timeout=3)
    conn.request("GET", "/metrics")
    with pytest.raises(http.client.RemoteDisconnected):
        conn.getresponse()
    for other in survivors:
        assert _core(kc, other).list_node().items
    after = {r: twins[r].services[(svc["name"], r)].last for r in svc["regions"]}
    assert after[lost].served_rps == 0
    # The lost cluster's demand went to the others, in proportion to theirs: the total is conserved.
    assert sum(after[r].demand_rps for r in survivors) == pytest.approx(sum(before.values()), rel=1e-9)
    for other in survivors:
        assert after[other].demand_rps > before[other]
    # The fault ends through any cluster's endpoint, and the lost cluster answers again.
    assert httpx.delete(f"{servers[survivors[1]].url}/twin/faults/{fault['id']}").status_code == 200
    _tick(twins)
    assert _core(kc, lost).list_node().items
    back = {r: twins[r].services[(svc["name"], r)].last.demand_rps for r in svc["regions"]}
    assert back == pytest.approx(before, rel=1e-9)


def test_an_unknown_cluster_fault_is_refused(clusters) -> None:
    _twins, servers, _kc = clusters
    url = next(iter(servers.values())).url
    r = httpx.post(f"{url}/twin/faults", json={"kind": "cluster_down", "target": {"cluster": "mars"}})
    assert r.status_code == 422 and "unknown cluster 'mars'" in r.text


def test_a_region_in_two_clusters_or_none_is_refused(catalog) -> None:
    two = [*per_region(catalog), per_region(catalog)[0].model_copy(update={"name": "again"})]
    with pytest.raises(ValueError, match="is in clusters"):
        split_clusters(catalog, two)
    with pytest.raises(ValueError, match="regions in no cluster"):
        split_clusters(catalog, per_region(catalog)[1:])


def test_clusters_read_one_by_one_may_not_share_a_region() -> None:
    text = (ROOT / "fleet.yaml").read_text()
    old = "    production: true\n    readonly: true\n"
    assert old in text
    # Both clusters of the demo catalog hold ap-southeast: with a Prometheus each, it would count twice.
    bad = text.replace("    production: false\n", "    production: false\n    prometheus: http://a:9090\n", 1)
    bad = bad.replace(old, old + "    prometheus: http://b:9090\n", 1)
    line = next(i for i, ln in enumerate(bad.splitlines(), 1) if "regions: [ap-southeast]" in ln)
    with pytest.raises(CatalogError) as e:
        parse_catalog(bad, "bad.yaml")
    issues = [str(i) for i in e.value.issues]
    assert any(f"bad.yaml:{line}" in i and "already in cluster 'twin'" in i for i in issues), issues
    # A global view reads every cluster: the same overlap is refused without a Prometheus on either.
    glob = text + "\nglobal:\n  prometheus: http://global:9090\n"
    with pytest.raises(CatalogError) as e:
        parse_catalog(glob, "glob.yaml")
    assert any("glob.yaml:" in str(i) and "already in cluster" in str(i) for i in e.value.issues)
    # And a global view needs a URL.
    with pytest.raises(CatalogError) as e:
        parse_catalog(text + "\nglobal:\n  prometheus: not-a-url\n", "url.yaml")
    assert any("url.yaml:" in str(i) and "global.prometheus" in str(i) for i in e.value.issues), e.value.issues


def test_runbooks_plan_each_change_in_the_cluster_its_target_lives_in(clusters, catalog) -> None:
    """Pre-scale, degrade and a node's cordon, planned over three clusters: each change (and its lock and dry
    run) goes to the cluster of its region or node; a cluster that does not answer is left with a note."""
    from console.runbooks.load import load_runbooks
    from console.runbooks.params import resolve
    from console.runbooks.plan import describe_plan, make_plan

    twins, servers, kc = clusters
    cat, _, src = _sources(catalog, kc)
    rbs = load_runbooks(ROOT / "runbooks")

    def plan(name: str, **params: str):
        return make_plan(rbs[name], resolve(rbs[name], cat, params), src)

    def where(p) -> set[tuple[str, str, str]]:
        return {(c.target.kind, c.target.cluster, c.lock.cluster if c.lock else "-") for c in p.changes}

    svc = next(s for s in doc()["services"] if len(s["regions"]) == 3 and s["fallback"]["mode"] == "rules")
    region = svc["regions"][1]
    p = plan("pre-scale", service=svc["name"], region=region, replicas="30")
    assert where(p) >= {("deployment", region, region)} and {c for _, c, _ in where(p)} == {region}, where(p)
    assert all(line.endswith("accepted") for s in p.steps for line in s.dry_run), [s.dry_run for s in p.steps]
    # Degrade: the mode key in every cluster the service runs in, each its own routing config map.
    p = plan("degrade-llm-to-rules", service=svc["name"])
    assert {(k, c) for k, c, _ in where(p) if k == "configmap"} == {("configmap", r) for r in svc["regions"]}
    # Its Lease in each of them, one name: the plan says whose each is.
    leases = describe_plan(p).split("\nleases: ")[1].split("\n")[0].split(", ")
    lease = f"{svc['namespace']}/gpuops-runbook-service-{svc['name']}"
    assert sorted(leases) == sorted(f"{lease} in cluster {r}" for r in svc["regions"]), leases
    # Its silence (of the service's alerts, in every region) in each cluster's own Alertmanager, where the
    # catalog names them; with none, the plan refuses it.
    assert not any(c.target.kind == "silence" for c in p.changes) and any("silence" in x for x in p.problems)
    src.ams = {r: object() for r in svc["regions"]}  # type: ignore[misc]  # planning only names them
    p = plan("degrade-llm-to-rules", service=svc["name"])
    src.ams = {}
    assert {c for k, c, _ in where(p) if k == "silence"} == set(svc["regions"])
    assert f"for 2h in cluster {region}'s Alertmanager" in describe_plan(p)
    # A node's cordon in the cluster that has the node (found by asking each).
    node = next(n.name for n in twins[region].nodes.values())
    p = plan("gpu-node-xid", node=node)
    assert {c for k, c, _ in where(p) if k != "silence"} == {region}, where(p)
    # One cluster down: degrade changes the others and says which did not answer.
    lost = svc["regions"][0]
    r = httpx.post(f"{servers[region].url}/twin/faults",
                   json={"kind": "cluster_down", "target": {"cluster": lost}, "duration_s": 3600})  # fmt: skip
    assert r.status_code == 201, r.text
    try:
        _tick(twins)
        p = plan("degrade-llm-to-rules", service=svc["name"])
        assert {c for k, c, _ in where(p) if k == "configmap"} == set(svc["regions"]) - {lost}
        assert any(f"cluster {lost} does not answer" in (s.note or "") for s in p.steps), [s.note for s in p.steps]
    finally:
        assert httpx.delete(f"{servers[region].url}/twin/faults/{r.json()['id']}").status_code == 200
        _tick(twins)
        src.close()


def test_a_denial_in_one_cluster_refuses_the_runs_that_change_it_and_no_other(clusters, catalog, tmp_path) -> None:
    """The access review of a change goes to its target's cluster: a deny in one cluster refuses a pre-scale
    there before anything changes, and leaves the same review in another cluster allowed."""
    from console.runbooks.engine import Refused, Runner
    from console.runbooks.journal import Journal
    from console.runbooks.load import load_runbooks
    from console.runbooks.params import resolve
    from console.runbooks.plan import make_plan
    from console.twin.kubeapi import DenyRule

    twins, _, kc = clusters
    cat, kubes, src = _sources(catalog, kc)
    svc = next(s for s in doc()["services"] if len(s["regions"]) == 3)
    denied, other = svc["regions"][1], svc["regions"][2]
    ns = svc["namespace"]
    rule = DenyRule.parse(f"patch deployments/scale {ns}")
    twins[denied].api.deny.append(rule)  # what `gpuops twin --deny-in` gives that cluster alone
    try:
        assert kubes[denied].may("patch", "deployment", ns, svc["name"])[0] is False
        assert kubes[other].may("patch", "deployment", ns, svc["name"])[0] is True
        rb = load_runbooks(ROOT / "runbooks")["pre-scale"]
        plan = make_plan(rb, resolve(rb, cat, {"service": svc["name"], "region": denied, "replicas": "30"}), src)
        before = {n: d.spec.replicas for n, d in _deployments(kc, denied).items()}
        with pytest.raises(Refused, match=rf"Kubernetes denies this identity: patch .*{svc['name']}.*Nothing was"):
            Runner(src, Journal(tmp_path / "journal.jsonl"), operator="tester").execute(plan)
        assert {n: d.spec.replicas for n, d in _deployments(kc, denied).items()} == before
    finally:
        twins[denied].api.deny.remove(rule)
        src.close()


def _sources(catalog, kc):
    """(catalog, each cluster's API, a runbook's Sources) for the three clusters, with no Prometheus: its
    checks become a plan's problems, not its changes."""
    from console.catalog.model import GlobalView
    from console.runbooks.plan import Sources
    from console.sources.kube import KubeObjects
    from console.sources.prometheus import PrometheusSource

    nowhere = "http://127.0.0.1:9"
    cat = catalog.model_copy(update={"clusters": per_region(catalog), "global_view": GlobalView(prometheus=nowhere)})
    kubes = {c.name: KubeObjects(str(kc), c.context) for c in cat.clusters}
    return cat, kubes, Sources(cat, kubes[cat.clusters[0].name], PrometheusSource(nowhere, timeout_s=1), kubes=kubes)


def _deployments(kc, context: str) -> dict:
    apps = client.AppsV1Api(config.new_client_from_config(config_file=str(kc), context=context))
    return {d.metadata.name: d for d in apps.list_deployment_for_all_namespaces().items}


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--deny", "bad"], "Invalid value for --deny: deny rule 'bad'"),
        (["--deny-in", "us-east", "patch"], "Invalid value for --deny-in: deny rule 'patch'"),
        (["--deny-in", "us-east", "patch configmaps"], "--deny-in names a cluster: it needs --clusters"),
        (["--clusters", "per-region", "--deny-in", "mars", "patch configmaps"], "--deny-in: no cluster 'mars'"),
    ],
)
def test_a_bad_deny_rule_or_cluster_is_refused_before_the_twin_starts(args, said) -> None:
    from click.testing import CliRunner

    from console.cli import main

    r = CliRunner().invoke(main, ["twin", "--catalog", str(ROOT / "fleet.yaml"), *args])
    assert r.exit_code != 0 and said in r.output, r.output


def test_doctor_checks_each_clusters_own_context_and_names_the_one_that_does_not_answer(clusters, tmp_path) -> None:
    """`gpuops doctor` on a catalog of clusters needs no --prometheus: each cluster's own Prometheus and context
    are checked (the pools of its regions only), each line naming its cluster. One whose context the kubeconfig
    lacks, or whose Prometheus does not answer, is one unreachable line (exit 2), and the rest is checked."""
    import json

    import yaml
    from click.testing import CliRunner

    from console.cli import main

    _, _, kc = clusters
    plain = yaml.safe_load((ROOT / "fleet.yaml").read_text())
    regions = [r["name"] for r in plain["regions"]]
    plain["clusters"] = [
        {"name": r, "context": r, "regions": [r], "prometheus": "http://127.0.0.1:9"} for r in regions
    ]  # nothing listens on port 9
    plain["clusters"][-1]["context"] = "nowhere"  # not in the kubeconfig
    path = tmp_path / "fleet.yaml"
    path.write_text(yaml.safe_dump(plain))
    r = CliRunner().invoke(main, ["doctor", "--catalog", str(path), "--kubeconfig", str(kc), "--format", "json"])
    assert r.exit_code == 2, r.output
    got = json.loads(r.stdout)
    checks = {(c["area"], c["cluster"], c["name"]): c for c in got["checks"]}
    for name in regions:
        assert checks[("prometheus", name, "reachable")]["verdict"] == "unreachable"
    *answering, lost = regions
    for name in answering:
        pools = {n for a, c, n in checks if a == "kubernetes" and c == name and n.startswith("pool ")}
        assert pools == {f"pool {p['name']}" for p in plain["pools"] if p["nodes"].get(name)}
        for p in plain["pools"]:
            if p["nodes"].get(name):
                check = checks[("kubernetes", name, f"pool {p['name']}")]
                assert check["verdict"] == "ok" and check["detail"].startswith(f"{p['nodes'][name]} nodes"), check
        assert checks[("kubernetes", name, "access")]["verdict"] == "ok"
    assert checks[("kubernetes", lost, "reachable")]["verdict"] == "unreachable"
    assert "nowhere" in checks[("kubernetes", lost, "reachable")]["detail"]
    assert len(got["unreachable"]) == len(regions) + 1 and all(": " in u for u in got["unreachable"])
    table = CliRunner().invoke(main, ["doctor", "--catalog", str(path), "--kubeconfig", str(kc)])
    assert f"ok    kubernetes   [{regions[0]}] access:" in table.stdout, table.stdout
    assert f"DOWN  kubernetes   [{lost}] reachable:" in table.stdout, table.stdout


def test_doctor_without_clusters_in_the_catalog_asks_for_prometheus(tmp_path) -> None:
    from click.testing import CliRunner

    from console.cli import main

    r = CliRunner().invoke(main, ["doctor", "--catalog", str(ROOT / "fleet.yaml")])
    assert r.exit_code == 2 and "Missing option '--prometheus'" in r.output, r.output


def test_a_silence_on_a_node_goes_to_the_alertmanager_of_the_cluster_that_has_it(clusters, catalog) -> None:
    """gpu-node-xid silences its node's alerts: with each cluster's own Alertmanager, only in the cluster that has
    the node (the others never see its alerts); a node no cluster has, in every one, as without the matcher."""
    from console.runbooks.changes import SILENCE
    from console.runbooks.load import load_runbooks
    from console.runbooks.params import resolve
    from console.runbooks.plan import make_plan

    _, _, kc = clusters
    cat, _, src = _sources(catalog, kc)
    names = [c.name for c in cat.clusters]
    src.ams = dict.fromkeys(names, None)  # type: ignore[arg-type]  # where silences go is all this reads
    holder = names[1]
    node = _core(kc, holder).list_node().items[0].metadata.name
    assert src.silence_in({"Hostname": node}) == [holder]
    assert src.silence_in({"node": node, "alertname": "GpuXidErrors"}) == [holder]
    assert src.silence_in({"Hostname": "no-such-node"}) == sorted(names)
    rb = load_runbooks(ROOT / "runbooks")["gpu-node-xid"]
    plan = make_plan(rb, resolve(rb, cat, {"node": node}), src)
    silences = [c.target for s in plan.steps for c in s.changes if c.target.kind == SILENCE]
    assert [t.cluster for t in silences] == [holder], silences
