"""`gpuops doctor`: what the console, the rules and the runbooks need from a cluster and its monitoring, each
checked, and for each miss the exact fix (a flag, a Helm value, an RBAC rule, a catalog setting).

The checks read through the same sources as the console (the catalog's selectors included), so a check that
passes here is a view that shows data there.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

from console.catalog.model import EXPORTER_FIELDS, Catalog
from console.fleet.queries import NODE_LABELS, ksm_label
from console.fleet.scope import selected

if TYPE_CHECKING:
    from console.sources.alertmanager import AlertmanagerSource
    from console.sources.kube import KubeObjects
    from console.sources.prometheus import PrometheusSource

Verdict = Literal["ok", "miss", "unreachable"]
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


def _exporter(catalog: Catalog, prom: PrometheusSource, sel: PrometheusSource, metric: str, job: str,
              install: str) -> Check:  # fmt: skip
    """`job`'s series read through its catalog selector; when none, the jobs they are scraped under."""
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
    return Check("prometheus", f"{what} series", "miss", f"no {metric} series at all", install)


def prometheus_checks(
    catalog: Catalog, prom: PrometheusSource, now: Callable[[], float] = time.time
) -> Iterator[Check]:
    from console.sources.prometheus import PrometheusSource

    sel = PrometheusSource(prom.url, timeout_s=10, rewrite=selected(catalog.monitoring))  # as the console reads
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
    dcgm = _exporter(
        catalog, prom, sel, "DCGM_FI_DEV_GPU_UTIL", "dcgm-exporter",
        "install dcgm-exporter on the GPU nodes (helm install dcgm-exporter gpu-helm-charts/dcgm-exporter) and "
        "scrape it (its ServiceMonitor: serviceMonitor.enabled=true)",
    )  # fmt: skip
    yield dcgm
    if dcgm.verdict == "ok":
        yield _attribution(sel)
    ksm = _exporter(
        catalog, prom, sel, "kube_node_info", "kube-state-metrics",
        "install kube-state-metrics (helm install kube-state-metrics prometheus-community/kube-state-metrics) "
        "and scrape it",
    )  # fmt: skip
    yield ksm
    if ksm.verdict == "ok":
        yield from _node_labels(sel)
    yield _exporter(
        catalog, prom, sel, "node_gpu_hourly_cost", "opencost",
        "install OpenCost (helm install opencost opencost/opencost) and scrape it: the Costs view and the "
        "budget alerts price GPUs by its node_gpu_hourly_cost",
    )  # fmt: skip
    yield _rules(prom)


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


def _node_labels(sel: PrometheusSource) -> Iterator[Check]:
    nodes = _count(sel, "kube_node_labels")
    # The labels the recording rules join on (queries.NODE_LABELS).
    missing = [n for n in NODE_LABELS.values() if not _count(sel, f'kube_node_labels{{{ksm_label(n)}!=""}}')]
    if not missing:
        yield Check("prometheus", "node labels exported", "ok", f"{len(NODE_LABELS)} labels on {nodes:.0f} nodes")
        return
    wanted = ",".join(NODE_LABELS.values())
    yield Check(
        "prometheus", "node labels exported", "miss",
        f"kube_node_labels carries no {', '.join(missing)}: pools, regions and GPU models "
        "are blank in every view",
        f"kube-state-metrics --metric-labels-allowlist=nodes=[{wanted}] "
        f"(Helm: metricLabelsAllowlist: [\"nodes=[{wanted}]\"]), and the labels on the nodes",
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


def kubernetes_checks(catalog: Catalog, kube: KubeObjects) -> Iterator[Check]:
    try:
        nodes = kube.list("node")
    except Exception as e:
        raise Unreachable(f"Kubernetes ({kube.context or 'current context'}): {type(e).__name__}: {e}") from None
    yield from _pools(catalog, nodes)
    yield from _access(catalog, kube)


def _pools(catalog: Catalog, nodes: list[dict[str, Any]]) -> Iterator[Check]:
    for pool in catalog.pools:
        want = pool.selector()
        have = [n for n in nodes if all((n["metadata"].get("labels") or {}).get(k) == v for k, v in want.items())]
        label = ",".join(f"{k}={v}" for k, v in want.items())
        yield Check(
            "kubernetes", f"pool {pool.name}", "ok" if have else "miss",
            f"{len(have)} nodes labelled {label} (the catalog plans {sum(pool.nodes.values())})",
            "" if have else f"kubectl label node NODE {label.replace(',', ' ')} (or set the pool's node_selector to "
            "the labels its nodes have: eks.amazonaws.com/nodegroup, cloud.google.com/gke-nodepool, ...)",
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


def run(
    catalog: Catalog,
    prom: PrometheusSource | None,
    kube: KubeObjects | None,
    am: AlertmanagerSource | None,
    on_check: Callable[[Check], None] = lambda c: None,
) -> Report:
    report = Report([], [])
    for area, checks in (
        ("prometheus", (lambda: prometheus_checks(catalog, prom)) if prom else None),
        ("kubernetes", (lambda: kubernetes_checks(catalog, kube)) if kube else None),
        ("alertmanager", (lambda: alertmanager_checks(am)) if am else None),
    ):
        if checks is None:
            continue
        try:
            for c in checks():
                report.checks.append(c)
                on_check(c)
        except Unreachable as e:
            report.unreachable.append(str(e))
            c = Check(area, "reachable", "unreachable", str(e), f"check the {area} URL or context, and the network")
            report.checks.append(c)
            on_check(c)
    return report
