"""The catalog applied to PromQL: which exporter a series comes from, and where each reader (the rules, the
dashboards, the console) puts the `monitoring:` selectors, the cluster label and the `node_labels:` that place
nodes in pools."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

from console.catalog.model import Catalog, Monitoring
from console.fleet import promql
from console.fleet.queries import DEFAULT_NODES, NODE_POOL_INFO, NodeMap, node_pool

# Labels that name a place: an aggregation or join over them keeps each cluster apart.
PLACES = ("node", "Hostname", "hostname", "gpu", "pool", "region", "namespace", "pod", "deployment")
OPENCOST = frozenset({"node_gpu_hourly_cost", "node_cpu_hourly_cost", "node_ram_hourly_cost", "node_gpu_count"})
# Series no exporter writes and no cluster owns: Prometheus' own alert state.
_UNSCOPED = frozenset({"ALERTS", "ALERTS_FOR_STATE"})


def exporter_of(name: str | None) -> str | None:
    """The exporter (`Monitoring.selectors()`'s key) of a series one of them exports; None otherwise."""
    if not name:
        return None
    if name.startswith("DCGM_"):
        return "dcgm-exporter"
    if name.startswith("kube_"):
        return "kube-state-metrics"
    return "opencost" if name in OPENCOST else None


def carries_place(name: str | None) -> bool:
    """Whether a series is of one place (and so of one cluster): an exporter's or a service's raw series, or
    a recorded one whose level names a place (`gpuops:pool_region:...`), not a catalog constant per team."""
    if not name or name in _UNSCOPED:
        return False
    parts = name.split(":")
    if len(parts) < 3:
        return True
    return bool(set(parts[1].split("_")) & set(PLACES))


def node_map(c: Catalog) -> NodeMap:
    """The catalog's node labels; each pool by its own matchers when any pool has some."""
    nl = c.node_labels
    pools = (
        tuple((p.name, tuple(sorted(p.selector(nl).items()))) for p in c.pools) if any(p.match for p in c.pools) else ()
    )
    return NodeMap(nl.pool, nl.region, nl.model, pools, tuple(g.name for g in c.gpu_models))


def placed(nodes: NodeMap) -> Callable[[str], str]:
    """Every expression's node placement (written once, for the default labels: `queries.NODE_POOL_INFO`)
    as the catalog's labels place them."""
    if nodes == DEFAULT_NODES:
        return lambda expr: expr
    mine = node_pool(nodes)
    return lambda expr: expr.replace(NODE_POOL_INFO, mine)


def selected(m: Monitoring, nodes: NodeMap = DEFAULT_NODES) -> Callable[[str], str]:
    """For the console's queries: nodes placed by the catalog's labels, each exporter's series through its
    selector."""
    sel = {job: promql.parse_matchers(text) for job, text in m.selectors().items()}
    place = placed(nodes)

    def matchers(name: str | None) -> Sequence[tuple[str, str]]:
        kind = exporter_of(name)
        return sel[kind] if kind else ()

    return _memo(lambda expr: promql.add_matchers(place(expr), matchers))


def for_catalog(c: Catalog) -> Callable[[str], str]:
    """`selected` for a catalog: what the console, the cost report and the doctor send."""
    return selected(c.monitoring, node_map(c))


def for_global(c: Catalog) -> Callable[[str], str]:
    """For a global view over several clusters: `for_catalog`, and every sum (and each join over a place) keeps
    the cluster label, so that each answer says which cluster it is of."""
    m, select = c.monitoring, for_catalog(c)
    return _memo(lambda expr: promql.keep_label(select(expr), m.cluster_label, PLACES, every_by=True))


def _memo(rewrite: Callable[[str], str]) -> Callable[[str], str]:
    """`rewrite` remembered per text: a console refresh sends the same query strings each time, and lexing
    them costs milliseconds (measured: the 84 named expressions, 17,046 characters, 9.7 ms)."""
    return functools.lru_cache(maxsize=1024)(rewrite)


def for_rules(m: Monitoring, nodes: NodeMap = DEFAULT_NODES) -> Callable[[str], str]:
    """For recording and alerting rules: the selectors, and the cluster label kept by sums and joins."""
    select = selected(m, nodes)
    return lambda expr: promql.keep_label(select(expr), m.cluster_label, PLACES)


def for_dashboards(m: Monitoring, nodes: NodeMap = DEFAULT_NODES) -> Callable[[str], str]:
    """For panels: as for rules, and every series of a place narrowed to the dashboard's `$cluster`."""
    rules = for_rules(m, nodes)
    cluster = ((m.cluster_label, '=~"$cluster"'),)

    def matchers(name: str | None) -> Sequence[tuple[str, str]]:
        return cluster if carries_place(name) else ()

    return lambda expr: promql.add_matchers(rules(expr), matchers)
