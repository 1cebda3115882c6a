"""Build a `FleetSnapshot` from the sources: the fixed query set, run concurrently, composed in Python.

A source that fails leaves its last good data in the snapshot, with its age and its error; nothing here
raises into the caller.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from console.catalog.model import Catalog, deployment_name, kube_resource_name, mig_resource
from console.fleet import queries as q
from console.fleet.snapshot import FleetSnapshot, GpuRow, NodeRow, PoolRow, QuotaRow, ServiceRow, SourceStatus
from console.sources.prometheus import Sample

IDLE_BUSY_PCT = 5.0


class PromQuerier(Protocol):
    requests: int

    def query(self, promql: str) -> list[Sample]: ...


class KubeReader(Protocol):
    requests: int

    def nodes(self) -> list[Any]: ...

    def hpas(self) -> list[Any]: ...


@dataclass
class _Memory:
    """The last good result of one source, and since when it fails."""

    value: Any = None
    at: datetime | None = None
    error: str | None = None
    failing_since: datetime | None = None


class SnapshotBuilder:
    def __init__(self, catalog: Catalog, prometheus: PromQuerier, kube: KubeReader | None = None, max_workers: int = 8):
        self.catalog = catalog
        self.prometheus = prometheus
        self.kube = kube
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="snapshot")
        self._mem: dict[str, _Memory] = defaultdict(_Memory)
        self._mig_per_gpu = {
            kube_resource_name(mig_resource(p.mig)): p.mig.instances_per_gpu for p in catalog.pools if p.mig
        }

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _requests(self) -> int:
        return self.prometheus.requests + (self.kube.requests if self.kube else 0)

    def _remember(self, source: str, fetch: Callable[[], Any], now: datetime) -> Any:
        mem = self._mem[source]
        try:
            mem.value, mem.at, mem.error, mem.failing_since = fetch(), now, None, None
        except Exception as e:
            mem.error = f"{type(e).__name__}: {e}"[:300]
            mem.failing_since = mem.failing_since or now
        return mem.value

    def build(self) -> FleetSnapshot:
        t0 = time.perf_counter()
        before = self._requests()
        now = datetime.now(UTC)

        def prom_all() -> dict[str, list[Sample]]:
            futures = {name: self._pool.submit(self.prometheus.query, expr) for name, expr in q.SNAPSHOT.items()}
            return {name: f.result() for name, f in futures.items()}

        def kube_all() -> dict[str, list[Any]]:
            assert self.kube is not None
            nodes, hpas = self._pool.submit(self.kube.nodes), self._pool.submit(self.kube.hpas)
            return {"nodes": nodes.result(), "hpas": hpas.result()}

        kube_future = self._pool.submit(self._remember, "kubernetes", kube_all, now) if self.kube else None
        prom = self._remember("prometheus", prom_all, now) or {}
        kube = (kube_future.result() if kube_future else None) or {}

        sources = {
            name: SourceStatus(name, m.error is None, m.at, m.error, m.failing_since) for name, m in self._mem.items()
        }
        nodes = self._nodes(prom, kube)
        snap = FleetSnapshot(
            taken_at=now,
            pools=self._pools(nodes),
            nodes=tuple(nodes),
            quotas=self._quotas(prom),
            services=self._services(prom, kube, nodes),
            sources=sources,
            requests=self._requests() - before,
        )
        return replace(snap, build_s=time.perf_counter() - t0)

    # --- composition ----------------------------------------------------------------------------------

    def _gpu_equivalents(self, resource: str, value: float) -> float:
        if resource == "nvidia_com_gpu":
            return value
        if resource == "alibabacloud_com_gpu_milli":
            return value / 1000
        return value / self._mig_per_gpu.get(resource, 1)

    def _nodes(self, prom: dict[str, list[Sample]], kube: dict[str, list[Any]]) -> list[NodeRow]:
        info: dict[str, dict[str, str]] = {s.labels["node"]: s.labels for s in prom.get("node_labels", [])}
        total: dict[str, float] = defaultdict(float)
        for s in prom.get("node_gpu_allocatable", []):
            total[s.labels["node"]] += self._gpu_equivalents(s.labels["resource"], s.value)
        allocated: dict[str, float] = defaultdict(float)
        for s in prom.get("node_gpu_requested", []):
            allocated[s.labels["node"]] += self._gpu_equivalents(s.labels["resource"], s.value)
        gpus = _gpu_rows(prom)
        kube_nodes = {n.name: n for n in kube.get("nodes", [])}
        rows = []
        for name in sorted(set(info) | set(total)):
            lab = info.get(name, {})
            kn = kube_nodes.get(name)
            node_gpus = tuple(gpus.get(name, ()))
            idle = sum(_weight(g, node_gpus) for g in node_gpus if g.pod and g.util < IDLE_BUSY_PCT)
            util = _mean([(g.util, _weight(g, node_gpus)) for g in node_gpus])
            rows.append(
                NodeRow(
                    name=name,
                    pool=lab.get("label_gpuops_io_pool", ""),
                    region=lab.get("label_topology_kubernetes_io_region", ""),
                    model=lab.get("label_nvidia_com_gpu_product", ""),
                    ready=kn.ready if kn else bool(node_gpus) or not total.get(name),
                    unschedulable=kn.unschedulable if kn else False,
                    gpus_total=total.get(name, 0.0),
                    gpus_allocated=allocated.get(name, 0.0),
                    gpus_idle=idle,
                    util=util,
                    gpus=node_gpus,
                )
            )
        return rows

    def _pools(self, nodes: list[NodeRow]) -> tuple[PoolRow, ...]:
        groups: dict[tuple[str, str], list[NodeRow]] = defaultdict(list)
        for n in nodes:
            if n.pool:
                groups[(n.pool, n.region)].append(n)
        out = []
        for (pool, region), ns in sorted(groups.items()):
            gpus = [(g, n.gpus) for n in ns for g in n.gpus]
            models = sorted({n.model for n in ns if n.model})
            out.append(
                PoolRow(
                    pool=pool,
                    region=region,
                    model="/".join(models) or "cpu",
                    nodes=len(ns),
                    nodes_ready=sum(1 for n in ns if n.ready),
                    gpus_total=sum(n.gpus_total for n in ns),
                    gpus_allocated=sum(n.gpus_allocated for n in ns),
                    gpus_idle=sum(n.gpus_idle for n in ns),
                    util=_mean([(g.util, _weight(g, all_)) for g, all_ in gpus]),
                    fb_used_mib=sum(g.fb_used_mib for g, _ in gpus),
                    fb_total_mib=sum(g.fb_used_mib + g.fb_free_mib for g, _ in gpus),
                    # A partitioned GPU's instances all carry its device power: count it once per GPU.
                    power_w=sum(sum({g.index: g.power_w for g in n.gpus}.values()) for n in ns),
                )
            )
        return tuple(out)

    def _quotas(self, prom: dict[str, list[Sample]]) -> tuple[QuotaRow, ...]:
        by_ns: dict[str, dict[tuple[str, str], float]] = defaultdict(dict)
        for s in prom.get("quotas", []):
            by_ns[s.labels["namespace"]][(s.labels["resource"], s.labels["type"])] = s.value
        rows = []
        for ns, v in sorted(by_ns.items()):
            team = self.catalog.team_of_namespace(ns)
            gpu_used = sum(x for (res, typ), x in v.items() if typ == "used" and res == "requests.nvidia.com/gpu")
            rows.append(
                QuotaRow(
                    namespace=ns,
                    team=team.name if team else "",
                    gpu_used=gpu_used,
                    gpu_hard=v.get(("requests.nvidia.com/gpu", "hard")),
                    cpu_used=v.get(("requests.cpu", "used"), 0.0),
                    cpu_hard=v.get(("requests.cpu", "hard")),
                    mem_used=v.get(("requests.memory", "used"), 0.0),
                    mem_hard=v.get(("requests.memory", "hard")),
                )
            )
        return tuple(rows)

    def _services(
        self, prom: dict[str, list[Sample]], kube: dict[str, list[Any]], nodes: list[NodeRow]
    ) -> tuple[ServiceRow, ...]:
        def by_dep(name: str) -> dict[tuple[str, str], float]:
            return {(s.labels["namespace"], s.labels["deployment"]): s.value for s in prom.get(name, [])}

        def by_svc(name: str) -> dict[tuple[str, str], float]:
            return {(s.labels.get("service", ""), s.labels.get("region", "")): s.value for s in prom.get(name, [])}

        desired, available = by_dep("deployment_replicas"), by_dep("deployment_available")
        rps, err, p95 = by_svc("service_rps"), by_svc("service_error_rps"), by_svc("service_p95_seconds")
        weight = by_svc("service_weight")
        mode = {
            (s.labels.get("service", ""), s.labels.get("region", "")): s.labels.get("mode", "")
            for s in prom.get("service_mode", [])
        }
        hpa_min = {(h.namespace, h.target): h.min_replicas for h in kube.get("hpas", [])}
        # GPU busy per deployment, from the pods on each GPU.
        busy: dict[tuple[str, str], list[float]] = defaultdict(list)
        for n in nodes:
            for g in n.gpus:
                if g.pod:
                    busy[(g.namespace, _owner(g.pod))].append(g.util)
        rows = []
        for svc in self.catalog.services:
            for region in svc.regions:
                dep = (svc.namespace, deployment_name(svc, region))
                key = (svc.name, region)
                r = rps.get(key, 0.0)
                p = p95.get(key)
                rows.append(
                    ServiceRow(
                        service=svc.name,
                        region=region,
                        replicas_desired=int(desired.get(dep, 0)),
                        replicas_available=int(available.get(dep, 0)),
                        hpa_min=hpa_min.get(dep),
                        rps=r,
                        error_ratio=(err.get(key, 0.0) / r) if r > 0 else 0.0,
                        p95_ms=p * 1000 if p is not None and p == p else None,
                        slo_ms=svc.latency_slo_ms,
                        gpu_util=_mean([(u, 1.0) for u in busy.get(dep, [])]),
                        mode=mode.get(key, "unknown"),
                        weight=weight.get(key, 0.0),
                    )
                )
        return tuple(rows)


def _owner(pod: str) -> str:
    """The deployment of a pod: `<deployment>-<hash>` (the twin) or `<deployment>-<rs hash>-<hash>`."""
    parts = pod.rsplit("-", 2)
    if len(parts) == 3 and len(parts[1]) in (9, 10) and parts[1].isalnum():
        return parts[0]
    return pod.rsplit("-", 1)[0]


def _gpu_rows(prom: dict[str, list[Sample]]) -> dict[str, list[GpuRow]]:
    """Join the per-GPU readings: one row per GPU, or per MIG instance where a GPU is partitioned."""

    def key(lab: dict[str, str], instance: bool) -> tuple[str, str, str]:
        return (
            lab.get("Hostname") or lab.get("hostname") or "",
            lab.get("gpu", ""),
            lab.get("GPU_I_ID", "") if instance else "",
        )

    def index(name: str, instance: bool) -> dict[tuple[str, str, str], float]:
        return {key(s.labels, instance): s.value for s in prom.get(name, [])}

    fb_used, fb_free = index("gpu_fb_used", True), index("gpu_fb_free", True)
    power, temp, xid = index("gpu_power", False), index("gpu_temp", False), index("gpu_xid", False)
    device = {key(s.labels, False): s.labels for s in prom.get("gpu_util", [])}
    util = index("gpu_util", False)
    instances = [(key(s.labels, True), s) for s in prom.get("mig_active", [])]
    partitioned = {(h, g, "") for (h, g, _), _ in instances}
    out: dict[str, list[GpuRow]] = defaultdict(list)
    # (key, labels naming the device, labels naming the pod, busy percent)
    rows = [(k, lab, lab, util[k]) for k, lab in device.items() if k not in partitioned]
    rows += [(k, device.get((k[0], k[1], ""), {}), s.labels, s.value * 100) for k, s in instances]
    for k, dev_lab, pod_lab, busy in sorted(rows, key=lambda r: (r[0][0], int(r[0][1] or 0), r[0][2])):
        host, gpu, inst = k
        dev = (host, gpu, "")
        out[host].append(
            GpuRow(
                node=host,
                index=int(gpu or 0),
                uuid=dev_lab.get("UUID", ""),
                model=dev_lab.get("modelName", ""),
                util=busy,
                fb_used_mib=fb_used.get(k, 0.0),
                fb_free_mib=fb_free.get(k, 0.0),
                power_w=power.get(dev, 0.0),
                temp_c=temp.get(dev, 0.0),
                xid=int(xid.get(dev, 0)),
                pod=pod_lab.get("pod", ""),
                namespace=pod_lab.get("namespace", ""),
                mig_profile=pod_lab.get("GPU_I_PROFILE", ""),
                mig_id=inst,
            )
        )
    return out


def _weight(g: GpuRow, all_rows: tuple[GpuRow, ...]) -> float:
    """A MIG instance counts as its share of the GPU."""
    if not g.mig_id:
        return 1.0
    return 1.0 / max(1, sum(1 for o in all_rows if o.index == g.index and o.mig_id))


def _mean(pairs: list[tuple[float, float]]) -> float:
    total = sum(w for _, w in pairs)
    return sum(v * w for v, w in pairs) / total if total else 0.0
