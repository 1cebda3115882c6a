"""`gpuops doctor`: what the console, the rules and the runbooks need from a cluster and its monitoring, each
checked, and for each miss the exact fix (a flag, a Helm value, an RBAC rule, a catalog setting).

The checks read through the same sources as the console (the catalog's selectors included), so a check that
passes here is a view that shows data there.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from functools import cache, partial
from typing import TYPE_CHECKING, Any, Literal

from console.catalog.model import EXPORTER_FIELDS, NODE_GROUP_LABELS, Catalog, Pool
from console.fleet.queries import POOL_RECORDS, NodeMap, ksm_label, records_only_keep
from console.fleet.scope import for_catalog, node_map
from console.quantity import parse_quantity

if TYPE_CHECKING:
    from console.sources.alertmanager import AlertmanagerSource
    from console.sources.kube import KubeObjects
    from console.sources.prometheus import PrometheusSource

Verdict = Literal["ok", "miss", "unreachable"]
KSM_ALLOWLIST_SINCE = (2, 0)  # kube-state-metrics 2.0 stopped exporting node labels unless allowed
MAX_SKEW_S = 30.0  # Prometheus' clock against this machine's: rules' windows and the console's ages drift
# What the console reads and the runbooks change, per namespaced kind: (verb, kind, why).
CONSOLE_READS = [("list", "node"), ("list", "pod"), ("list", "deployment"), ("list", "hpa"), ("list", "resourcequota")]
RUNBOOK_CHANGES = [
    ("patch", "deployment", "pre-scale, failover and fallback scale deployments"),
    ("patch", "hpa", "pre-scale raises the HPA floor"),
    ("patch", "configmap", "degrade and failover change a service's routing"),
    ("create", "lease", "one run at a time on a target"),
    ("update", "lease", "one run at a time on a target"),
]
RBAC = {  # the RBAC rule each (verb, kind) needs
    ("patch", "deployment"): 'apiGroups: ["apps"], resources: ["deployments/scale"], verbs: ["patch"]',
    ("patch", "hpa"): 'apiGroups: ["autoscaling"], resources: ["horizontalpodautoscalers"], verbs: ["patch"]',
    ("patch", "configmap"): 'apiGroups: [""], resources: ["configmaps"], verbs: ["patch"]',
    ("create", "lease"): 'apiGroups: ["coordination.k8s.io"], resources: ["leases"], verbs: ["create"]',
    ("update", "lease"): 'apiGroups: ["coordination.k8s.io"], resources: ["leases"], verbs: ["update"]',
    ("patch", "job"): 'apiGroups: ["batch"], resources: ["jobs"], verbs: ["patch"]',
    ("patch", "node"): 'apiGroups: [""], resources: ["nodes"], verbs: ["patch"] (a ClusterRole)',
    ("delete", "pod"): 'apiGroups: [""], resources: ["pods"], verbs: ["delete"]',
}


@dataclass(frozen=True)
class Check:
    area: str  # prometheus, kubernetes, alertmanager
    name: str
    verdict: Verdict
    detail: str
    fix: str = ""
    cluster: str = ""  # the catalog cluster (or "global view") it was checked in; "" for the one given


@dataclass(frozen=True)
class ClusterSources:
    """One catalog cluster's own sources, each None where the catalog names none (or its context would not
    load: `kube_error` says why)."""

    name: str
    regions: tuple[str, ...]
    prom: PrometheusSource | None
    kube: KubeObjects | None
    am: AlertmanagerSource | None
    kube_error: str = ""


class Unreachable(Exception):
    """A source that does not answer: the checks that need it cannot run."""


def _count(prom: PrometheusSource, promql: str) -> float:
    try:
        got = prom.query(f"count({promql})")
    except Exception as e:
        raise Unreachable(f"{prom.url}: {type(e).__name__}: {e}") from None
    return got[0].value if got else 0.0


def _jobs(prom: PrometheusSource, metric: str) -> list[str]:
    """The jobs a metric is scraped under, whatever the catalog's selector says."""
    try:
        return sorted({s.labels.get("job", "") for s in prom.query(f"count by (job) ({metric})")} - {""})
    except Exception:
        return []


# Each exporter the views read: a series that shows it is scraped, its job, and how to install it when it is not.
EXPORTERS = (
    ("DCGM_FI_DEV_GPU_UTIL", "dcgm-exporter",
     "install dcgm-exporter on the GPU nodes (helm install dcgm-exporter gpu-helm-charts/dcgm-exporter) and "
     "scrape it (its ServiceMonitor: serviceMonitor.enabled=true)"),
    ("kube_node_info", "kube-state-metrics",
     "install kube-state-metrics (helm install kube-state-metrics prometheus-community/kube-state-metrics) "
     "and scrape it"),
    ("node_gpu_hourly_cost", "opencost",
     "install OpenCost (helm install opencost opencost/opencost) and scrape it: the Costs view and the "
     "budget alerts price GPUs by its node_gpu_hourly_cost"),
)  # fmt: skip


def _exporter(catalog: Catalog, prom: PrometheusSource, sel: PrometheusSource, metric: str, job: str,
              install: str, down_jobs: Callable[[], list[str]]) -> Check:  # fmt: skip
    """`job`'s series read through its catalog selector; when none, the jobs they are scraped under, else the
    jobs whose targets are down (`down_jobs`, asked once for every exporter)."""
    field = EXPORTER_FIELDS[job]
    selector = catalog.monitoring.selectors()[job]
    what = "OpenCost" if job == "opencost" else job
    n = _count(sel, metric)
    if n:
        return Check("prometheus", f"{what} series", "ok", f"{n:.0f} {metric} series ({selector or 'any job'})")
    jobs = _jobs(prom, metric)
    if jobs:
        return Check(
            "prometheus", f"{what} series", "miss",
            f"{metric} is scraped under job {', '.join(jobs)}, not by the catalog's selector {selector!r}",
            f"set monitoring.{field}: 'job=\"{jobs[0]}\"' in the catalog",
        )  # fmt: skip
    down = down_jobs()
    if down:  # the exporter may be there, behind a target that does not answer: no install fixes that
        return Check(
            "prometheus", f"{what} series", "miss",
            f"no {metric} series, and scrape targets are down (up == 0, job {', '.join(down)})",
            "bring the down targets back (Prometheus' /targets page shows each one's scrape error); if the "
            f"exporter is not among them: {install}",
        )  # fmt: skip
    return Check("prometheus", f"{what} series", "miss", f"no {metric} series at all", install)


def prometheus_checks(
    catalog: Catalog,
    prom: PrometheusSource,
    now: Callable[[], float] = time.time,
    rules: bool = True,
    exporters: bool = True,
) -> Iterator[Check]:
    """The exporters the views read, through the catalog's selectors (without `exporters`, a global view that
    holds the records alone: they are checked in each cluster); with `rules`, the gpuops rules loaded (where
    they run: each cluster's own Prometheus, unless a global view holding every series runs them)."""
    from console.sources.prometheus import PrometheusSource

    sel = PrometheusSource(prom.url, timeout_s=10, rewrite=for_catalog(catalog))  # as the console reads
    before = now()
    try:
        got = prom.query("vector(time())")
    except Exception as e:
        raise Unreachable(f"{prom.url}: {type(e).__name__}: {e}") from None
    skew = (got[0].value if got else before) - (before + now()) / 2
    yield Check(
        "prometheus", "clock skew", "ok" if abs(skew) <= MAX_SKEW_S else "miss",
        f"Prometheus' clock is {skew:+.1f}s from this machine's",
        "" if abs(skew) <= MAX_SKEW_S else "run NTP (chrony, systemd-timesyncd) on the Prometheus host and here",
    )  # fmt: skip
    down_jobs = cache(lambda: _jobs(prom, "up == 0"))
    for metric, job, install in EXPORTERS if exporters else ():
        found = _exporter(catalog, prom, sel, metric, job, install, down_jobs)
        yield found
        if found.verdict != "ok":
            continue
        if job == "dcgm-exporter":
            yield _attribution(sel)
        elif job == "kube-state-metrics":
            yield _ksm_version(sel)
            yield from _node_labels(sel, node_map(catalog))
    if rules:
        yield _rules(prom)


def global_view_checks(catalog: Catalog, prom: PrometheusSource) -> Iterator[Check]:
    """What a global view must hold beyond one Prometheus' checks: every cluster's series under its label."""
    label = catalog.monitoring.cluster_label
    targets = _count_by_cluster(prom, label, "up")
    for c in catalog.clusters:
        n = targets.get(c.name, 0.0)
        yield Check(
            "prometheus", f"cluster {c.name} in the global view", "ok" if n else "miss",
            f"{n:.0f} scrape target{'' if n == 1 else 's'} under {label}={c.name!r}" if n
            else f"no series under {label}={c.name!r}: the views show the cluster empty and its alerts never fire",
            "" if n else f"in cluster {c.name}'s Prometheus: external_labels: {{{label}: {c.name}}} and "
            "remote_write to the global view (or the global view's store or sidecar reading it)",
        )  # fmt: skip
    if catalog.global_view is not None and catalog.global_view.holds == "records":
        yield from _records_arrive(catalog, prom)


def _count_by_cluster(prom: PrometheusSource, label: str, metric: str) -> dict[str, float]:
    """`metric`'s series in the global view, counted by cluster (one query for every cluster)."""
    try:
        return {s.labels.get(label, ""): s.value for s in prom.query(f"count by ({label}) ({metric})")}
    except Exception as e:
        raise Unreachable(f"{prom.url}: {type(e).__name__}: {e}") from None


def _records_arrive(catalog: Catalog, prom: PrometheusSource) -> Iterator[Check]:
    """A global view of the records alone: each cluster's pool records there (the clusters run the rules)."""
    label, record = catalog.monitoring.cluster_label, POOL_RECORDS["nodes"]
    got = _count_by_cluster(prom, label, record)
    for c in catalog.clusters:
        n = got.get(c.name, 0.0)
        yield Check(
            "prometheus", f"cluster {c.name}'s records in the global view", "ok" if n else "miss",
            f"{n:.0f} {record} series" if n else f"no {record} under {label}={c.name!r}: the views show it empty",
            "" if n else f"load gpuops-rules.yaml in cluster {c.name}'s Prometheus and keep the records in its "
            f"remote_write (write_relabel_configs keep: {records_only_keep()})",
        )  # fmt: skip


def _attribution(sel: PrometheusSource) -> Check:
    held = _count(sel, 'kube_pod_container_resource_requests{resource=~"nvidia_com_gpu|nvidia_com_mig_.+"} > 0')
    named = _count(sel, 'DCGM_FI_DEV_GPU_UTIL{pod!=""}')
    if not held or named:
        return Check("prometheus", "GPU pod attribution", "ok", f"{named:.0f} GPUs report the pod that holds them")
    return Check(
        "prometheus", "GPU pod attribution", "miss",
        f"{held:.0f} containers hold GPUs but no DCGM series has a pod label: idle GPUs and costs cannot be "
        "attributed to teams",
        "run dcgm-exporter with pod mapping (-k / DCGM_EXPORTER_KUBERNETES=true) and the kubelet's "
        "/var/lib/kubelet/pod-resources mounted (the Helm chart does both by default)",
    )  # fmt: skip


def _ksm_version(sel: PrometheusSource) -> Check:
    got = sel.query("kube_state_metrics_build_info")
    version = got[0].labels.get("version", "") if got else ""
    if not version.lstrip("v"):
        return Check(
            "prometheus", "kube-state-metrics version", "ok",
            "unknown: its telemetry port (kube_state_metrics_build_info) is not scraped; 2.x is assumed "
            "(Helm: selfMonitor.enabled=true to check)",
        )  # fmt: skip
    parts = tuple(int(x) for x in version.lstrip("v").split(".")[:2] if x.isdigit())
    if parts >= KSM_ALLOWLIST_SINCE:
        return Check("prometheus", "kube-state-metrics version", "ok", version)
    return Check(
        "prometheus", "kube-state-metrics version", "miss",
        f"{version}: older than 2.0, whose metric names the rules read (kube_node_status_allocatable, ...)",
        "upgrade kube-state-metrics to 2.x (helm upgrade kube-state-metrics prometheus-community/kube-state-metrics)",
    )  # fmt: skip


def _node_labels(sel: PrometheusSource, nodes: NodeMap) -> Iterator[Check]:
    count = _count(sel, "kube_node_labels")
    # The labels the recording rules place nodes by (the catalog's node_labels and pools' match).
    wanted = nodes.labels()
    missing = [n for n in wanted if not _count(sel, f'kube_node_labels{{{ksm_label(n)}!=""}}')]
    if not missing:
        yield Check("prometheus", "node labels exported", "ok", f"{len(wanted)} labels on {count:.0f} nodes")
        return
    allow = ",".join(wanted)
    yield Check(
        "prometheus", "node labels exported", "miss",
        f"kube_node_labels carries no {', '.join(missing)}: pools, regions and GPU models "
        "are blank in every view",
        f"kube-state-metrics --metric-labels-allowlist=nodes=[{allow}] "
        f"(Helm: metricLabelsAllowlist: [\"nodes=[{allow}]\"]), and the labels on the nodes",
    )  # fmt: skip


def _rules(prom: PrometheusSource) -> Check:
    try:
        groups = prom.rule_groups()
    except Exception as e:
        raise Unreachable(f"{prom.url}: {type(e).__name__}: {e}") from None
    ours = [g for g in groups if g.startswith("gpuops.")]
    if ours:
        return Check("prometheus", "gpuops rules loaded", "ok", f"{len(ours)} rule groups: {', '.join(sorted(ours))}")
    return Check(
        "prometheus", "gpuops rules loaded", "miss",
        "no gpuops.* rule group: the recorded gpuops:* series, the views built on them and the alerts are missing",
        "gpuops build, then load build/rules/gpuops-rules.yaml and gpuops-alerts.yaml (rule_files:, or as a "
        "PrometheusRule with the Prometheus Operator)",
    )  # fmt: skip


def kubernetes_checks(catalog: Catalog, kube: KubeObjects, regions: Sequence[str] | None = None) -> Iterator[Check]:
    """The pools' nodes (of the pools with nodes in `regions`, where the cluster holds only those) and the
    access the console and the runbooks need."""
    try:
        nodes = kube.list("node")
    except Exception as e:
        raise Unreachable(f"Kubernetes ({kube.context or 'current context'}): {type(e).__name__}: {e}") from None
    yield from _pools(catalog, nodes, regions)
    yield from _access(catalog, kube)


def _labels(node: dict[str, Any]) -> dict[str, str]:
    return node["metadata"].get("labels") or {}


def _allocatable(node: dict[str, Any]) -> dict[str, str]:
    return (node.get("status") or {}).get("allocatable") or {}


def _positive(quantity: str) -> bool:
    try:
        return parse_quantity(str(quantity)) > 0
    except ValueError:
        return False


def _pools(catalog: Catalog, nodes: list[dict[str, Any]], regions: Sequence[str] | None = None) -> Iterator[Check]:
    for pool in catalog.pools:
        planned = sum(n for r, n in pool.nodes.items() if regions is None or r in regions)
        if not planned and regions is not None:
            continue  # the pool has no nodes in this cluster's regions
        want = pool.selector(catalog.node_labels)
        have = [n for n in nodes if all(_labels(n).get(k) == v for k, v in want.items())]
        label = ",".join(f"{k}={v}" for k, v in want.items())
        yield Check(
            "kubernetes", f"pool {pool.name}", "ok" if have else "miss",
            f"{len(have)} nodes labelled {label} (the catalog plans {planned})",
            "" if have else _pool_fix(pool, nodes, label),
        )  # fmt: skip
        if have and pool.mig:
            yield _mig(pool.name, pool.mig.profile, have)
    yield _gpu_discovery(catalog, nodes)


def _pool_fix(pool: Pool, nodes: list[dict[str, Any]], label: str) -> str:
    """How a pool whose nodes carry none of its labels gets them."""
    # The pool's name under a node-group label this cluster uses: the catalog names the wrong label.
    under = sorted({k for n in nodes for k, v in _labels(n).items() if v == pool.name and k in NODE_GROUP_LABELS})
    if under and not pool.match:
        return f"set node_labels.pool: {under[0]} in the catalog (this cluster's nodes carry it)"
    return (
        f"kubectl label node NODE {label.replace(',', ' ')}, or set the pool's match: to the labels its nodes "
        "have (cloud.google.com/gke-nodepool, eks.amazonaws.com/nodegroup, karpenter.sh/nodepool, "
        "nvidia.com/gpu.product)"
    )


def _mig(pool: str, profile: str, nodes: list[dict[str, Any]]) -> Check:
    resource = f"nvidia.com/mig-{profile}"
    bare = [n["metadata"]["name"] for n in nodes if not _positive(_allocatable(n).get(resource, "0"))]
    if not bare:
        return Check("kubernetes", f"MIG {pool}", "ok", f"{len(nodes)} nodes offer {resource}")
    return Check(
        "kubernetes", f"MIG {pool}", "miss",
        f"{len(bare)} of the pool's nodes offer no {resource} (first: {bare[0]}): its MIG slices cannot be "
        "scheduled",
        f"kubectl label node {bare[0]} nvidia.com/mig.config=all-{profile} --overwrite (the GPU operator's MIG "
        "manager applies it) with the device plugin's MIG strategy mixed (Helm: mig.strategy=mixed)",
    )  # fmt: skip


def _gpu_discovery(catalog: Catalog, nodes: list[dict[str, Any]]) -> Check:
    model = catalog.node_labels.model
    gpu = [n for n in nodes if any(k.startswith("nvidia.com/") and _positive(v) for k, v in _allocatable(n).items())]
    unlabelled = [n["metadata"]["name"] for n in gpu if not _labels(n).get(model)]
    if not unlabelled:
        return Check("kubernetes", "GPU feature discovery", "ok", f"{len(gpu)} GPU nodes carry {model}")
    return Check(
        "kubernetes", "GPU feature discovery", "miss",
        f"{len(unlabelled)} of {len(gpu)} GPU nodes carry no {model} (first: {unlabelled[0]}): their GPU model "
        "and price are unknown",
        "deploy GPU feature discovery (GPU operator: gfd.enabled=true; nvidia-device-plugin chart: "
        "gfd.enabled=true), "
        "or set node_labels.model to the label your nodes carry the model in",
    )  # fmt: skip


def _access(catalog: Catalog, kube: KubeObjects) -> Iterator[Check]:
    namespaces = sorted({ns for t in catalog.teams for ns in t.namespaces})
    wanted: list[tuple[str, str, str | None, str]] = [(v, k, None, "the console reads it") for v, k in CONSOLE_READS]
    wanted += [(v, k, ns, why) for ns in namespaces for v, k, why in RUNBOOK_CHANGES]
    wanted += [("patch", "job", ns, "reclaim-idle-gpus suspends batch Jobs") for ns in namespaces]
    wanted += [("patch", "node", None, "gpu-node-xid cordons a node"), ("delete", "pod", None, "drain a node")]
    denied = [(w, reason) for w in wanted for ok, reason in [kube.may(w[0], w[1], w[2])] if not ok]
    if not denied:
        yield Check("kubernetes", "access", "ok", f"{len(wanted)} access reviews allowed")
    for (verb, kind, ns, why), reason in denied:
        where = f" in {ns}" if ns else ""
        yield Check(
            "kubernetes", f"access: {verb} {kind}{where}", "miss",
            f"denied ({reason or 'no reason given'}): {why}",
            f"a Role{where} bound to this identity with: {RBAC.get((verb, kind), f'{verb} {kind}')}",
        )  # fmt: skip


def alertmanager_checks(am: AlertmanagerSource) -> Iterator[Check]:
    try:
        status = am.status()
    except Exception as e:
        raise Unreachable(f"{am.url}: {type(e).__name__}: {e}") from None
    version = (status.get("versionInfo") or {}).get("version", "?")
    yield Check("alertmanager", "API v2", "ok", f"Alertmanager {version} at {am.url}")


@dataclass
class Report:
    checks: list[Check]
    unreachable: list[str]

    @property
    def exit_code(self) -> int:
        if self.unreachable:
            return 2
        return 1 if any(c.verdict == "miss" for c in self.checks) else 0

    def as_json(self) -> dict[str, object]:
        return {
            "checks": [asdict(c) for c in self.checks],
            "unreachable": self.unreachable,
            "exit": self.exit_code,
        }


Phase = tuple[str, str, Callable[[], Iterator[Check]]]  # (area, cluster, its checks)


def _cluster_phases(catalog: Catalog, global_prom: PrometheusSource | None, clusters: Sequence[ClusterSources]
                    ) -> Iterator[Phase]:  # fmt: skip
    """The global view's checks, then each cluster's: its own Prometheus (with the rules where no global view
    runs them), its Kubernetes context (the pools of its regions), its own Alertmanager."""
    view = catalog.global_view
    if global_prom is not None:
        yield "prometheus", "global view", partial(_global_view, catalog, global_prom)
    for c in clusters:
        if c.prom is not None:  # the rules run here, unless a global view holding every series runs them
            here = global_prom is None or (view is not None and view.holds == "records")
            yield "prometheus", c.name, partial(prometheus_checks, catalog, c.prom, rules=here)
        if c.kube is not None:
            yield "kubernetes", c.name, partial(kubernetes_checks, catalog, c.kube, c.regions)
        elif c.kube_error:
            yield "kubernetes", c.name, partial(_unreachable, c.kube_error)
        if c.am is not None:
            yield "alertmanager", c.name, partial(alertmanager_checks, c.am)


def _global_view(catalog: Catalog, prom: PrometheusSource) -> Iterator[Check]:
    holds_all = catalog.global_view is None or catalog.global_view.holds == "all"
    yield from prometheus_checks(catalog, prom, exporters=holds_all)
    yield from global_view_checks(catalog, prom)


def _unreachable(why: str) -> Iterator[Check]:
    raise Unreachable(why)
    yield  # a generator, like every phase's checks


def run(
    catalog: Catalog,
    prom: PrometheusSource | None,
    kube: KubeObjects | None,
    am: AlertmanagerSource | None,
    on_check: Callable[[Check], None] = lambda c: None,
    global_prom: PrometheusSource | None = None,
    clusters: Sequence[ClusterSources] = (),
) -> Report:
    """Every check, source by source; `global_prom` and `clusters` where the catalog reads clusters one by one
    (a source that does not answer is one unreachable check, and the others go on)."""
    report = Report([], [])
    phases: list[Phase] = []
    if prom:
        phases.append(("prometheus", "", lambda: prometheus_checks(catalog, prom)))
    if kube:
        phases.append(("kubernetes", "", lambda: kubernetes_checks(catalog, kube)))
    if am:
        phases.append(("alertmanager", "", lambda: alertmanager_checks(am)))
    phases += _cluster_phases(catalog, global_prom, clusters)
    for area, cluster, checks in phases:
        try:
            for c in checks():
                report.checks.append(replace(c, cluster=cluster))
                on_check(report.checks[-1])
        except Unreachable as e:
            report.unreachable.append(f"{cluster}: {e}" if cluster else str(e))
            c = Check(area, "reachable", "unreachable", str(e), f"check the {area} URL or context, and the network",
                      cluster)  # fmt: skip
            report.checks.append(c)
            on_check(c)
    return report
