"""A global view that holds the records alone (`global.holds: records`): what the clusters send it, the rules
split between the clusters and it, the catalog's rule for it, and where the console and the runbooks then read
the raw node and GPU series (each cluster's own Prometheus)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
import yaml

from console.catalog.clusters import per_region
from console.catalog.load import CatalogError, dump_catalog, parse_catalog
from console.catalog.model import GlobalView
from console.codegen.mixin import build_rules, split_for_global
from console.fleet import queries as q
from console.fleet.build import ClusterReaders, SnapshotBuilder
from console.fleet.scope import node_map
from console.procs.prometheus import prometheus_config
from console.runbooks.reads import PromReads
from console.sources.prometheus import Sample


def test_metric_names_are_the_series_read_not_functions_labels_or_keywords() -> None:
    promql = (
        'sum by (pool, region) (rate(service_requests_total{code=~"5..", x="a{b}"}[5m] offset 1h))'
        " / on (region) group_left (team) kube_namespace_labels * 1e3 > bool 0.5"
        ' or label_replace(up, "a", "$1", "b", "(.+)") unless absent(gpuops:pool_region:nodes:count)'
    )
    assert q.metric_names(promql) == {
        "service_requests_total",
        "kube_namespace_labels",
        "up",
        "gpuops:pool_region:nodes:count",
    }
    assert q.metric_names('count(max_over_time(DCGM_FI_DEV_GPU_UTIL{pod!=""}[30m]) < 5) or vector(0)') == {
        "DCGM_FI_DEV_GPU_UTIL"
    }


def test_the_records_view_keeps_the_records_up_and_the_refreshs_joins_not_node_or_gpu_series() -> None:
    keep = re.compile(f"^(?:{q.records_only_keep()})$")  # Prometheus anchors a relabel regex
    for name in ("gpuops:pool_region:nodes:count", "gpuops:service_region:requests:rate1m", "up"):
        assert keep.match(name), name
    for name in ("DCGM_FI_DEV_GPU_UTIL", "kube_node_info", "kube_pod_info", "kube_node_labels", "upx"):
        assert not keep.match(name), name
    # Every series the refresh's recorded read joins is kept: the global view answers it whole.
    for expr in q.SNAPSHOT_RECORDED.values():
        assert q.reads_only_forwarded(expr), expr
    assert not q.reads_only_forwarded(q.SNAPSHOT["pools_busy"])
    assert not q.reads_only_forwarded(q.runbook_query("node_xid", node="n1"))


def test_a_clusters_remote_write_carries_only_what_is_forwarded() -> None:
    cfg = prometheus_config("127.0.0.1:1", 5, remote_write="http://g/api/v1/write", forward="gpuops:.+|up")
    [rw] = cfg["remote_write"]
    assert rw["write_relabel_configs"] == [{"source_labels": ["__name__"], "regex": "gpuops:.+|up", "action": "keep"}]
    whole = prometheus_config("127.0.0.1:1", 5, remote_write="http://g/api/v1/write")
    assert "write_relabel_configs" not in whole["remote_write"][0]


def test_the_rules_split_puts_cluster_down_in_the_global_view_and_the_rest_in_the_clusters(catalog, tmp_path) -> None:
    built = build_rules(catalog, tmp_path)
    split = split_for_global(built)
    plain = yaml.safe_load(built.alerts.read_text())
    every = {r["alert"] for g in plain["groups"] for r in g["rules"]}
    alerts = {}
    for name, files in (("cluster", split.cluster), ("global", split.global_view)):
        docs = [yaml.safe_load(f.read_text()) for f in files]
        alerts[name] = {r["alert"] for d in docs for g in d["groups"] for r in g["rules"] if "alert" in r}
        records = {r["record"] for d in docs for g in d["groups"] for r in g["rules"] if "record" in r}
        assert bool(records) is (name == "cluster"), name  # records in the clusters only: none arrives twice
    assert alerts["global"] == {"ClusterDown"}
    assert alerts["cluster"] == every - {"ClusterDown"}


def test_a_records_view_needs_each_clusters_own_prometheus(catalog) -> None:
    clusters = [c.model_copy(update={"prometheus": f"http://{c.name}:9090"}) for c in per_region(catalog)]
    view = GlobalView(prometheus="http://global:9090", holds="records")
    good = dump_catalog(catalog.model_copy(update={"clusters": clusters, "global_view": view}))
    assert parse_catalog(good, "good.yaml").global_view.holds == "records"
    clusters[1] = clusters[1].model_copy(update={"prometheus": None})
    bad = dump_catalog(catalog.model_copy(update={"clusters": clusters, "global_view": view}))
    with pytest.raises(CatalogError) as e:
        parse_catalog(bad, "bad.yaml")
    assert any("bad.yaml:" in str(i) and "clusters[1].prometheus" in str(i) for i in e.value.issues), e.value.issues


class _Answers:
    """A Prometheus answering from a table (PromQL -> value) that records what it was asked."""

    def __init__(self, answers: dict[str, float]):
        self.answers, self.asked = answers, []

    def query(self, promql: str, at: float | None = None) -> list[Sample]:
        self.asked.append(promql)
        return [Sample({}, self.answers[promql])] if promql in self.answers else []


def _split(catalog, holds: str):
    clusters = [c.model_copy(update={"prometheus": f"http://{c.name}:9090"}) for c in per_region(catalog)]
    view = GlobalView(prometheus="http://global:9090", holds=holds)
    return catalog.model_copy(update={"clusters": clusters, "global_view": view})


def test_a_fleet_check_of_node_series_is_combined_from_the_clusters_when_the_view_holds_records(catalog) -> None:
    xid = q.runbook_query("node_xid", node="n1")
    nodes = q.runbook_query("region_nodes_ready", region=".*")
    cat = _split(catalog, "records")
    names = [c.name for c in cat.clusters]
    own = {n: _Answers({xid: 79.0 if n == names[1] else 0.0}) for n in names}
    fleet = _Answers({xid: 0.0, nodes: 12.0})  # `or vector(0)`: a view without the series says 0
    reads = PromReads(cat, fleet, own)
    assert reads.value("node_xid", {"node": "n1"}, xid) == 79.0
    assert xid not in fleet.asked and all(o.asked == [xid] for o in own.values())
    assert reads.where("node_xid", {"node": "n1"}, xid) == "in every cluster's Prometheus, combined by max"
    # A check of the records is the global view's alone.
    assert reads.value("region_nodes_ready", {"region": ".*"}, nodes) == 12.0
    assert all(nodes not in o.asked for o in own.values())
    # A global view of every series answers both itself.
    whole = PromReads(_split(catalog, "all"), fleet, own)
    assert whole.value("node_xid", {"node": "n1"}, xid) == 0.0


class _Tagged:
    """A Prometheus answering each named query of a refresh with one sample, recording which it was asked."""

    def __init__(self, cluster: str, label: str = "cluster"):
        self.cluster, self.label, self.asked = cluster, label, []

    @property
    def requests(self) -> int:
        return len(self.asked)

    def query(self, promql: str) -> list[Sample]:
        self.asked.append(promql)
        return []


def test_a_drill_down_reads_the_clusters_own_prometheus_not_the_global_view(catalog) -> None:
    cat = _split(catalog, "records")
    glob, own = _Tagged(""), {c.name: _Tagged(c.name) for c in cat.clusters}
    readers = tuple(ClusterReaders(c.name, frozenset(c.regions), None, own=own[c.name]) for c in cat.clusters)
    builder = SnapshotBuilder(cat, glob, clusters=readers, clock=lambda: datetime(2026, 12, 1, tzinfo=UTC))
    try:
        pool = next(p for p in cat.pools if len(p.nodes) > 1)
        region = next(iter(pool.nodes))
        home = next(c.name for c in cat.clusters if region in c.regions)
        builder.build(detail_pool=(pool.name, region))
        pool_nodes = q.pool_nodes(pool.name, region, node_map(cat))
        assert not any("pool_nodes" in a or a == pool_nodes for a in glob.asked)
        asked = {name: o.asked for name, o in own.items()}
        assert len(asked[home]) == 1 and all(not a for name, a in asked.items() if name != home), asked
        for o in own.values():
            o.asked.clear()
        before = len(glob.asked)
        snap = builder.build(detail_node="n1")
        assert all(len(o.asked) == 1 for o in own.values())  # the node's GPUs: wherever the node is
        assert snap.requests == len(glob.asked) - before + len(own)  # the refresh counts them
    finally:
        builder.close()


class _Own:
    """One cluster's Prometheus: its own series, or down."""

    def __init__(self, samples: list[Sample], down: bool = False):
        self.samples, self.down = samples, down

    def query(self, promql: str, at: float | None = None) -> list[Sample]:
        if self.down:
            raise ConnectionError("refused")
        return list(self.samples)

    def query_range(self, promql: str, start: float, end: float, step_s: float) -> list:
        return [("range", s.labels["pod"]) for s in self.query(promql)]

    def intervals(self) -> tuple[float, float]:
        return (5.0, 30.0)


def test_each_cluster_puts_the_clusters_answers_together_and_names_one_that_fails() -> None:
    from console.fleet.fanout import ClusterUnavailable, EachCluster

    a = _Own([Sample({"pod": "a-1"}, 1.0), Sample({"pod": "a-2"}, 2.0)])
    b = _Own([Sample({"pod": "b-1"}, 4.0)])
    both = EachCluster({"us-east": a, "eu-west": b})
    assert [s.labels["pod"] for s in both.query("x")] == ["a-1", "a-2", "b-1"]
    assert both.query_range("x", 0, 10, 1) == [("range", "a-1"), ("range", "a-2"), ("range", "b-1")]
    assert both.intervals() == (5.0, 30.0)
    b.down = True
    with pytest.raises(ClusterUnavailable, match="cluster eu-west's Prometheus: ConnectionError: refused"):
        both.query("x")
    with pytest.raises(ValueError):
        EachCluster({})
