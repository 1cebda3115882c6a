"""The catalog's `monitoring:` selectors and cluster label, as they reach PromQL text (console/fleet/promql.py,
scope.py), the built rules and the built dashboards."""

from __future__ import annotations

import re

import pytest

from console.catalog.model import Monitoring
from console.codegen.dashboards import build_all
from console.codegen.mixin import OUR_MIXIN, compile_mixin, gpuops_config, scoped
from console.fleet import promql
from console.fleet.scope import for_dashboards, for_rules, selected

DEFAULT = Monitoring()


@pytest.mark.parametrize(
    ("expr", "want"),
    [
        ("DCGM_FI_DEV_GPU_UTIL", 'DCGM_FI_DEV_GPU_UTIL{job="dcgm-exporter"}'),
        ('DCGM_FI_DEV_GPU_UTIL{pod!=""} < 5', 'DCGM_FI_DEV_GPU_UTIL{job="dcgm-exporter", pod!=""} < 5'),
        ("kube_node_info{}", 'kube_node_info{job="kube-state-metrics"}'),
        # A label already matched on is left as written.
        ('kube_node_info{job="ksm"}', 'kube_node_info{job="ksm"}'),
        # Functions, aggregations, keywords, strings and dashboard variables are not series.
        (
            "sum by (node) (rate(DCGM_FI_DEV_GPU_UTIL[5m] offset 1h)) or vector(0)",
            'sum by (node) (rate(DCGM_FI_DEV_GPU_UTIL{job="dcgm-exporter"}[5m] offset 1h)) or vector(0)',
        ),
        (
            'label_replace(node_gpu_hourly_cost, "kube_x", "$1", "node", "(.+)")',
            'label_replace(node_gpu_hourly_cost{job="opencost"}, "kube_x", "$1", "node", "(.+)")',
        ),
        ('{__name__="DCGM_FI_DEV_FB_USED"}', '{job="dcgm-exporter", __name__="DCGM_FI_DEV_FB_USED"}'),
        ("service_requests_total", "service_requests_total"),
        ("gpuops:pool_region:gpus:count", "gpuops:pool_region:gpus:count"),
    ],
)
def test_selectors_reach_each_exporters_series_only(expr: str, want: str) -> None:
    assert selected(DEFAULT)(expr) == want


@pytest.mark.parametrize(
    ("expr", "want"),
    [
        ("sum by (pool, region) (x)", "sum by (cluster, pool, region) (x)"),
        ("sum(x) by (node)", "sum(x) by (cluster, node)"),
        ("a * on (namespace) group_left (team) b", "a * on (cluster, namespace) group_left (team) b"),
        # A team's total adds up across clusters; catalog constants (per team, per service) join as they are.
        (
            "sum by (team) (a * on (service) group_left (team) b)",
            "sum by (team) (a * on (service) group_left (team) b)",
        ),
        ("a and on () b", "a and on () b"),
        ("max without (node) (a)", "max without (node) (a)"),
        ("sum by (cluster, node) (a)", "sum by (cluster, node) (a)"),
    ],
)
def test_the_cluster_label_is_kept_by_sums_and_joins_over_places(expr: str, want: str) -> None:
    assert promql.keep_label(expr, "cluster", ("node", "pool", "region", "namespace")) == want


def test_dashboards_narrow_series_of_a_place_to_the_cluster_variable() -> None:
    got = for_dashboards(DEFAULT)(
        'sum by (team) (gpuops:team:gpus:sum{team=~"$team"}) + count(gpuops:node_pool:info{pool=~"$pool"})'
        " + count(ALERTS) + rate(service_requests_total[$__rate_interval])"
    )
    assert got == (
        'sum by (team) (gpuops:team:gpus:sum{team=~"$team"})'
        ' + count(gpuops:node_pool:info{cluster=~"$cluster", pool=~"$pool"})'
        ' + count(ALERTS) + rate(service_requests_total{cluster=~"$cluster"}[$__rate_interval])'
    )


def test_matchers_parse_and_refuse_what_is_not_one() -> None:
    assert promql.parse_matchers('job="dcgm", env=~"a|b"') == (("job", '="dcgm"'), ("env", '=~"a|b"'))
    assert promql.parse_matchers("") == ()
    for bad in ("job=dcgm", 'job="x" env="y"', '"x"'):
        with pytest.raises(ValueError):
            promql.parse_matchers(bad)


def _raw_selectors(text: str, prefix: str) -> list[str]:
    """Each `prefix...{...}` selector of `text` as written, read with a plain regex (not the code's lexer)."""
    return re.findall(rf"\b({prefix}[A-Za-z0-9_]*)(\{{[^}}]*\}})?", text)


def test_every_built_rule_reads_each_exporter_through_its_catalog_selector(catalog) -> None:
    mon = catalog.monitoring.model_copy(update={"dcgm_selector": 'job="gpu-metrics", env="prod"'})
    cat = catalog.model_copy(update={"monitoring": mon})
    doc = scoped(compile_mixin(OUR_MIXIN, config=gpuops_config(cat)), cat)
    exprs = [r["expr"] for part in doc.values() for g in part["groups"] for r in g["rules"]]
    dcgm = [m for e in exprs for m in _raw_selectors(e, "DCGM_")]
    ksm = [m for e in exprs for m in _raw_selectors(e, "kube_")]
    assert dcgm and ksm
    assert all('job="gpu-metrics", env="prod"' in braces for _, braces in dcgm)
    assert all('job="kube-state-metrics"' in braces for _, braces in ksm)
    down = [r for g in doc["prometheusAlerts"]["groups"] for r in g["rules"] if r.get("alert") == "ExporterDown"]
    assert sorted(r["expr"] for r in down) == sorted(
        ['up{job="gpu-metrics", env="prod"} == 0', 'up{job="kube-state-metrics"} == 0', 'up{job="opencost"} == 0']
    )


def test_every_dashboard_has_a_cluster_variable_that_its_place_queries_use(catalog) -> None:
    for b in build_all(catalog):
        names = [v["name"] for v in b.model["templating"]["list"]]
        assert names[:2] == ["datasource", "cluster"], b.uid
        exprs = [t["expr"] for p in b.panels() for t in p.get("targets", [])]
        assert any('cluster=~"$cluster"' in e for e in exprs), b.uid
        for _, braces in (m for e in exprs for m in _raw_selectors(e, "DCGM_")):
            assert 'job="dcgm-exporter"' in braces and 'cluster=~"$cluster"' in braces


def test_rules_scoped_twice_are_unchanged() -> None:
    rewrite = for_rules(DEFAULT)
    once = rewrite("sum by (node) (DCGM_FI_DEV_GPU_UTIL) * on (node) group_left () kube_node_info")
    assert rewrite(once) == once
