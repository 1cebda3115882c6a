"""Build a `FleetSnapshot` from the sources: the fixed query set, run concurrently, composed in Python.

A source that fails leaves its last good data in the snapshot, with its age and its error; nothing here
raises into the caller.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime
from typing import Any, Protocol, TypedDict

from console.catalog.model import Catalog, deployment_name
from console.fleet import queries as q
from console.fleet.scope import node_map
from console.fleet.snapshot import (
    AlertRow,
    FleetSnapshot,
    GpuRow,
    NodeDetail,
    NodeRow,
    PodRow,
    PoolRow,
    QueueRow,
    QuotaRow,
    ServiceRow,
    SourceStatus,
    WorkloadRow,
)
from console.sources.prometheus import Sample

Clock = Callable[[], datetime]
Results = dict[str, list[Sample]]
# A Prometheus whose answer held no recorded series of the catalog's pools (the rules do not run there, have not
# yet, or were built for other node labels) is read raw, and asked again after each of these waits in turn (the
# last repeating): a fresh stack's first evaluation is taken up within seconds, not a minute later, and a fleet
# without rules pays one cheap request a minute.
RECHECK_RAW_S = (10.0, 20.0, 40.0, 60.0)


class PromQuerier(Protocol):
    requests: int

    def query(self, promql: str) -> list[Sample]: ...


class KubeReader(Protocol):
    requests: int

    def hpas(self) -> list[Any]: ...

    def pods_on_node(self, node: str) -> list[Any]: ...

    def cluster_queues(self) -> list[Any]: ...

    def workloads(self) -> list[Any]: ...


class AlertReader(Protocol):
    requests: int

    def alerts(self) -> list[Any]: ...


class NotifiedReader(Protocol):
    """Which alerts reached a chat, by fingerprint (`gpuops relay`): each value has `channel` and `at`."""

    requests: int

    def notified(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class ClusterReaders:
    """One cluster of several, read on its own: its Prometheus (None: its series come from the global view,
    labelled with its name), its Kubernetes API and its Alertmanager (None: its alerts, if any, reach the one
    the console was given)."""

    name: str
    regions: frozenset[str]
    prometheus: PromQuerier | None = None
    kube: KubeReader | None = None
    alertmanager: AlertReader | None = None
    # Its own Prometheus where the global view is read for the rest: a drill-down (a pool's nodes, a node's GPUs)
    # reads the raw series there, which a global view holding the records alone does not have.
    own: PromQuerier | None = None


class LostCluster(LookupError):
    """A cluster's Prometheus answered but holds no series of its fleet now: its scrapes fail (the cluster is
    unreachable) or, read through the global view, none of its series arrive."""


# One cluster's part of a refresh: its name, the query results, the API's objects.
Part = tuple[str, "Results", dict[str, list[Any]]]


@dataclass
class _Memory:
    """The last good result of one source, and since when it fails."""

    value: Any = None
    at: datetime | None = None
    error: str | None = None
    failing_since: datetime | None = None


class SnapshotBuilder:
    def __init__(
        self,
        catalog: Catalog,
        prometheus: PromQuerier,
        kube: KubeReader | None = None,
        alerts: AlertReader | None = None,
        *,
        notified: NotifiedReader | None = None,
        clock: Clock = lambda: datetime.now(UTC),
        max_workers: int = 10,
        clusters: tuple[ClusterReaders, ...] = (),
        cluster_label: str = "cluster",
    ):
        """`clusters`: read each on its own (its rows carry its name; a lost one keeps its last rows, stale),
        `prometheus` being the global view for those without their own; `kube` is then unused."""
        self.catalog = catalog
        self.prometheus = prometheus
        self.clusters, self.cluster_label = clusters, cluster_label
        # The pools each cluster must show nodes of to count as whole (the catalog's, placed by region).
        self._pools_in = {
            c.name: {(p.name, r) for p in catalog.pools for r, n in p.nodes.items() if n and r in c.regions}
            for c in clusters
        }
        self.kube = kube
        self.alert_source = alerts
        self.notified_source = notified
        self.clock = clock
        # Each cluster's reads wait on their queries: they run apart, so that waiting never starves the queries.
        self._pool = ThreadPoolExecutor(max_workers=max_workers + 6 * len(clusters), thread_name_prefix="snapshot")
        self._outer = ThreadPoolExecutor(max_workers=2 * len(clusters) or 1, thread_name_prefix="snapshot-cluster")
        self._mem: dict[str, _Memory] = defaultdict(_Memory)
        self._reads: dict[str, str] = {}  # each Prometheus read: "recorded" or "raw"
        self._catalog_pools = {(p.name, r) for p in catalog.pools for r, n in p.nodes.items() if n}
        self._raw_since: dict[str, tuple[datetime, int]] = {}  # source -> (its last raw look, looks before it)
        self._mig_per_gpu = catalog.mig_per_gpu()
        self._nodes = node_map(catalog)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._outer.shutdown(wait=False, cancel_futures=True)

    def _requests(self) -> int:
        srcs: list[PromQuerier | KubeReader | AlertReader | NotifiedReader | None] = [
            self.prometheus, self.kube, self.alert_source, self.notified_source,
            *(s for c in self.clusters for s in (c.prometheus, c.own, c.kube)),
        ]  # fmt: skip
        return sum(s.requests for s in srcs if s is not None)

    def _remember(self, source: str, fetch: Callable[[], Any], now: datetime) -> Any:
        mem = self._mem[source]
        try:
            mem.value, mem.at, mem.error, mem.failing_since = fetch(), now, None, None
        except Exception as e:
            mem.error = f"{type(e).__name__}: {e}"[:300]
            mem.failing_since = mem.failing_since or now
        return mem.value

    def failed(self, source: str, error: BaseException) -> None:
        """A source that could not be set up at all (the Kubernetes client refused the kubeconfig): it fails in
        every snapshot from now on, so the banner says why."""

        def fail() -> None:
            raise error

        self._remember(source, fail, self.clock())

    def build(self, detail_pool: tuple[str, str] | None = None, detail_node: str | None = None) -> FleetSnapshot:
        """One refresh. `detail_pool` (pool, region) adds that pool's nodes; `detail_node` the per-GPU
        readings and pods of that one node."""
        t0 = time.perf_counter()
        before = self._requests()
        now = self.clock()
        exprs = dict(q.SNAPSHOT)
        if detail_pool and not detail_node:  # with a node open, its pool's node table is not on screen
            exprs["pool_nodes"] = q.pool_nodes(*detail_pool, self._nodes)
        if detail_node:
            exprs["detail"] = q.gpu_detail(detail_node)

        side = self._side(now)
        parts = (
            self._cluster_parts(exprs, detail_pool, detail_node, now)
            if self.clusters
            else self._one_part(exprs, detail_node, now)
        )
        # Each alert with the cluster whose Alertmanager holds it ("": the one given); a lost cluster's stay, stale.
        alerts = [(a, held) for held, f in side["alerts"] for a in f.result() or []]
        notified = (side["relay"].result() if "relay" in side else None) or {}
        prom, kube = _merged(parts)

        sources = {
            name: SourceStatus(name, m.error is None, m.at, m.error, m.failing_since) for name, m in self._mem.items()
        }
        nodes = self._pool_nodes(_split(prom.get("pool_nodes", [])), *detail_pool) if detail_pool else []
        rows = _Rows.joined([self._rows(name, results, objects, now) for name, results, objects in parts])
        snap = FleetSnapshot(
            taken_at=now,
            pools=rows.pools,
            nodes=tuple(nodes),
            quotas=rows.quotas,
            queues=rows.queues,
            workloads=rows.workloads,
            services=rows.services,
            alerts=_alert_rows(alerts, notified, self.cluster_label),
            detail=_detail(prom, kube, detail_node) if detail_node else None,
            sources=sources,
            requests=self._requests() - before,
            reads=dict(self._reads),
        )
        return replace(snap, build_s=time.perf_counter() - t0)

    # --- reading: the fleet as one, or cluster by cluster ---------------------------------------------------

    def _side(self, now: datetime) -> dict[str, Any]:
        """Alertmanager's alerts (the one given and each cluster's own) and the relay's deliveries, started
        beside the fleet's reads: `alerts` is a list of (the cluster whose Alertmanager it is, or "", its read)."""
        relay = self.notified_source
        ams = [("", "alertmanager", self.alert_source)] + [
            (c.name, f"alertmanager {c.name}", c.alertmanager) for c in self.clusters
        ]
        side: dict[str, Any] = {
            "alerts": [(held, self._pool.submit(self._remember, name, am.alerts, now)) for held, name, am in ams if am]
        }
        if relay is not None:
            side["relay"] = self._pool.submit(self._remember, "relay", relay.notified, now)
        return side

    def _prom_all(self, prom: PromQuerier, exprs: dict[str, str]) -> Results:
        futures = {name: self._pool.submit(prom.query, expr) for name, expr in exprs.items()}
        return {name: f.result() for name, f in futures.items()}

    def _read(self, source: str, prom: PromQuerier, exprs: dict[str, str], now: datetime) -> Results:
        """The refresh's queries on one Prometheus: the recorded pool and service series where they are there
        (the rules run on it, or on the clusters writing to it), raw ones otherwise; `_reads` says which."""
        since, looks = self._raw_since.get(source, (None, 0))
        if since is not None and (now - since).total_seconds() < RECHECK_RAW_S[min(looks, len(RECHECK_RAW_S) - 1)]:
            self._reads[source] = "raw"
            return self._prom_all(prom, exprs)
        extra = {k: v for k, v in exprs.items() if k not in q.SNAPSHOT}  # a pool's nodes, a node's GPUs
        recorded = q.SNAPSHOT_RECORDED | extra
        if self._reads.get(source) == "recorded":
            got = self._prom_all(prom, recorded)
        else:  # not known to be there: the pools' records alone first (one cheap request), the rest after
            got = self._prom_all(prom, {"pools": recorded["pools"]})
            if _pools_of(got) & self._catalog_pools:
                got |= self._prom_all(prom, {k: v for k, v in recorded.items() if k != "pools"})
        # Records of this catalog's pools: rules built for other node labels (or another catalog) record pools
        # by names this one does not have, and the raw series are read through its own.
        if _pools_of(got) & self._catalog_pools:
            self._raw_since.pop(source, None)
            self._reads[source] = "recorded"
            return got
        self._raw_since[source] = (now, looks + 1 if since is not None else 0)
        self._reads[source] = "raw"
        return self._prom_all(prom, exprs)

    def _kube_all(self, kube: KubeReader, detail_node: str | None) -> dict[str, list[Any]]:
        hpas = self._pool.submit(kube.hpas)
        if self.catalog.queues is not None:  # Kueue's objects: where a queue is held, how old its waits are
            cqs, wls = self._pool.submit(kube.cluster_queues), self._pool.submit(kube.workloads)
        pods = kube.pods_on_node(detail_node) if detail_node else []
        out = {"hpas": hpas.result(), "pods": pods}
        if self.catalog.queues is not None:
            out |= {"cluster_queues": cqs.result(), "workloads": wls.result()}
        return out

    def _one_part(self, exprs: dict[str, str], detail_node: str | None, now: datetime) -> list[Part]:
        """The fleet read as one: one Prometheus, the context's API."""
        kube = self.kube
        objects = (
            self._pool.submit(self._remember, "kubernetes", lambda: self._kube_all(kube, detail_node), now)
            if kube
            else None
        )
        prom = self._remember("prometheus", lambda: self._read("prometheus", self.prometheus, exprs, now), now) or {}
        return [("", prom, (objects.result() if objects else None) or {})]

    def _cluster_parts(
        self, exprs: dict[str, str], detail_pool: tuple[str, str] | None, detail_node: str | None, now: datetime
    ) -> list[Part]:
        """Each cluster's part, read concurrently: a cluster that fails (or, through the global view, is absent)
        keeps its last good part, and its own source names it."""
        # The global view's one read, shared by the clusters it holds. Its failure reaches each of them (each
        # keeps its own last part, stale), never a remembered whole: one taken before a loss holds the lost one.
        shared: Future[Results] | None = None
        status: Future[Any] | None = None
        through = [c for c in self.clusters if c.prometheus is None]
        drill = {k: v for k, v in exprs.items() if k not in q.SNAPSHOT}  # a pool's nodes, a node's GPUs
        if through:
            # A drill-down goes to the clusters' own Prometheus where each has one, not to the global view.
            asked = {k: v for k, v in exprs.items() if k not in drill} if all(c.own for c in through) else exprs
            shared = self._outer.submit(self._read, "prometheus", self.prometheus, asked, now)
            status = self._outer.submit(self._remember, "prometheus", shared.result, now)  # the banner's line

        def drilled(c: ClusterReaders) -> dict[str, Future[list[Sample]]]:
            """The drill-down's raw series asked of the cluster's own Prometheus (the pool's only in its region's)."""
            own = c.own
            if own is None:
                return {}
            here = [k for k in drill if k != "pool_nodes" or (detail_pool is not None and detail_pool[1] in c.regions)]
            return {k: self._pool.submit(own.query, drill[k]) for k in here}

        def series(c: ClusterReaders) -> Results:
            expected = self._pools_in[c.name]
            if c.prometheus is not None:
                return _present(c.name, self._read(f"cluster {c.name}", c.prometheus, exprs, now), expected)
            assert shared is not None
            asked = drilled(c)  # beside the global view's read
            try:
                whole = shared.result()
            except Exception as e:
                raise LostCluster(f"the global view did not answer: {type(e).__name__}: {e}") from None
            mine = {name: [x for x in xs if x.labels.get(self.cluster_label) == c.name] for name, xs in whole.items()}
            for k, f in asked.items():
                try:
                    mine[k] = f.result()
                except Exception:  # its own away: what the global view holds of it (nothing where it holds records)
                    continue
            return _present(c.name, mine, expected)

        def read(c: ClusterReaders) -> tuple[Future[Any], Future[Any] | None]:
            kube = c.kube
            prom = self._outer.submit(self._remember, f"cluster {c.name}", lambda: series(c), now)
            if kube is None:
                return prom, None
            return prom, self._outer.submit(
                self._remember, f"kubernetes {c.name}", lambda: self._kube_all(kube, detail_node), now
            )

        reads = [(c.name, *read(c)) for c in self.clusters]
        parts = [(name, p.result() or {}, (k.result() if k else None) or {}) for name, p, k in reads]
        if status is not None:
            status.result()
        return parts

    # --- composition ----------------------------------------------------------------------------------

    def _rows(self, cluster: str, prom: Results, kube: dict[str, list[Any]], now: datetime) -> _Rows:
        """One part's rows, each with its cluster ("" for a fleet read as one)."""
        regions = next((c.regions for c in self.clusters if c.name == cluster), None)
        quota_parts = _split(prom.get("quotas", []))
        workloads = self._workload_rows(kube.get("workloads", []), now)
        pools = self._pools(_split(_pool_samples(prom)))
        rows = _Rows(
            pools,
            self._quotas(quota_parts.get("quota", [])),
            self._queues(quota_parts, kube, workloads, regions),
            workloads,
            self._services(prom, kube, regions),
        )
        return rows.of(cluster) if cluster else rows

    def _gpu_equivalents(self, resource: str, value: float) -> float:
        if resource == "nvidia_com_gpu":
            return value
        if resource == "alibabacloud_com_gpu_milli":
            return value / 1000
        return value / self._mig_per_gpu.get(resource, 1)

    def _rollup(self, parts: Results, keys: tuple[str, ...]) -> dict[tuple[str, ...], dict[str, float]]:
        """The parts of a `pools`/`pool_nodes` result by group; GPU resources turned into GPUs."""
        out: dict[tuple[str, ...], dict[str, float]] = defaultdict(lambda: defaultdict(float))
        for name, samples in parts.items():
            for s in samples:
                row = out[tuple(s.labels.get(k, "") for k in keys)]
                if name in ("allocatable", "requested"):
                    row[name] += self._gpu_equivalents(s.labels.get("resource", ""), s.value)
                else:
                    row[name] += s.value
        return out

    def _pools(self, parts: Results) -> tuple[PoolRow, ...]:
        models: dict[tuple[str, str], set[str]] = defaultdict(set)
        for s in parts.get("nodes", []):
            models[(s.labels.get("pool", ""), s.labels.get("region", ""))].add(s.labels.get("model", ""))
        ceilings = {p.name: p.storage.ceiling_bytes_s for p in self.catalog.pools if p.storage}
        out = []
        for (pool, region), v in sorted(self._rollup(parts, ("pool", "region")).items()):
            if not pool:
                continue  # nodes outside every pool
            out.append(
                PoolRow(
                    pool=pool,
                    region=region,
                    model="/".join(sorted(m for m in models[(pool, region)] if m)) or "cpu",
                    nodes=int(v["nodes"]),
                    nodes_ready=int(v["ready"]),
                    **_gpu_fields(v),
                    storage_ceiling_bytes_s=ceilings.get(pool),
                )
            )
        return tuple(out)

    def _pool_nodes(self, parts: Results, pool: str, region: str) -> list[NodeRow]:
        """One pool's nodes (a `pool_nodes` result)."""
        where = {s.labels.get("node", ""): (s.labels.get("model", "")) for s in parts.get("nodes", [])}
        rows = []
        for (node,), v in sorted(self._rollup(parts, ("node",)).items()):
            if node not in where:
                continue
            rows.append(
                NodeRow(
                    name=node,
                    pool=pool,
                    region=region,
                    model=where[node],
                    ready=v["ready"] >= 1,
                    unschedulable=v["unschedulable"] >= 1,
                    **_gpu_fields(v),
                    temp_max_c=v["temp_max"],
                    xid=int(v["xid_max"]),
                )
            )
        return rows

    def _quotas(self, samples: list[Sample]) -> tuple[QuotaRow, ...]:
        by_ns: dict[str, dict[tuple[str, str], float]] = defaultdict(dict)
        for s in samples:
            by_ns[s.labels["namespace"]][(s.labels["resource"], s.labels["type"])] = s.value
        rows = []
        for ns, v in sorted(by_ns.items()):
            team = self.catalog.team_of_namespace(ns)
            rows.append(
                QuotaRow(
                    namespace=ns,
                    team=team.name if team else "",
                    gpu_used=v.get(("requests.nvidia.com/gpu", "used"), 0.0),
                    gpu_hard=v.get(("requests.nvidia.com/gpu", "hard")),
                    cpu_used=v.get(("requests.cpu", "used"), 0.0),
                    cpu_hard=v.get(("requests.cpu", "hard")),
                    mem_used=v.get(("requests.memory", "used"), 0.0),
                    mem_hard=v.get(("requests.memory", "hard")),
                )
            )
        return tuple(rows)

    def _queues(
        self,
        parts: Results,
        kube: dict[str, list[Any]],
        workloads: tuple[WorkloadRow, ...],
        regions: frozenset[str] | None = None,
    ) -> tuple[QueueRow, ...]:
        """Each ClusterQueue from Kueue's metrics; its stop policy and oldest wait from the API when read.
        `regions`: a cluster's, whose queues hold only its flavors."""
        if self.catalog.queues is None:
            return ()
        flavor_region = {f.name: f.region for f in self.catalog.queues.flavors}

        def by_queue(name: str) -> dict[str, float]:
            return {s.labels.get("cluster_queue", ""): s.value for s in parts.get(name, [])}

        def by_flavor(name: str) -> dict[tuple[str, str], float]:
            return {
                (s.labels.get("cluster_queue", ""), s.labels.get("flavor", "")): s.value for s in parts.get(name, [])
            }

        pending, admitted = by_queue("queue_pending"), by_queue("queue_admitted")
        used, nominal = by_flavor("queue_used"), by_flavor("queue_nominal")
        policy = {q.name: q.stop_policy for q in kube.get("cluster_queues", [])}
        oldest: dict[str, float] = {}
        for w in workloads:
            if w.state in ("pending", "evicted"):
                oldest[w.cluster_queue] = max(oldest.get(w.cluster_queue, 0.0), w.age_s)
        rows = []
        for cq in self.catalog.queues.cluster_queues:
            name = cq.name
            flavors = tuple(
                (f, used.get((name, f), 0.0), nominal.get((name, f), q))
                for f, q in cq.quota.items()
                if regions is None or flavor_region.get(f) in regions
            )
            if not flavors:
                continue
            rows.append(
                QueueRow(
                    name,
                    cq.cohort,
                    policy.get(name, ""),
                    int(pending.get(name, 0)),
                    int(admitted.get(name, 0)),
                    flavors,
                    oldest.get(name),
                )
            )
        return tuple(rows)

    def _workload_rows(self, workloads: list[Any], now: datetime) -> tuple[WorkloadRow, ...]:
        """The API's workloads, each with the ClusterQueue its LocalQueue feeds (where it waits, not only where
        it is admitted), oldest first."""
        q = self.catalog.queues
        rows = [
            WorkloadRow(
                w.namespace,
                w.name,
                w.queue,
                w.cluster_queue or (q.cluster_queue_of(w.namespace, w.queue) if q else None) or "",
                w.state,
                w.flavor,
                w.gpus,
                max(0.0, (now - w.created).total_seconds()),
            )
            for w in workloads
        ]
        return tuple(sorted(rows, key=lambda r: (-r.age_s, r.key)))

    def _services(
        self, prom: Results, kube: dict[str, list[Any]], regions: frozenset[str] | None = None
    ) -> tuple[ServiceRow, ...]:
        parts = _split(prom.get("services", []))

        def by_dep(name: str) -> dict[tuple[str, str], float]:
            return {(s.labels["namespace"], s.labels["deployment"]): s.value for s in parts.get(name, [])}

        def by_svc(samples: list[Sample]) -> dict[tuple[str, str], float]:
            return {(s.labels.get("service", ""), s.labels.get("region", "")): s.value for s in samples}

        desired, available = by_dep("replicas"), by_dep("available")
        rps: dict[tuple[str, str], float] = defaultdict(float)
        err: dict[tuple[str, str], float] = defaultdict(float)
        for s in parts.get("rps", []):
            key = (s.labels.get("service", ""), s.labels.get("region", ""))
            rps[key] += s.value
            if s.labels.get("code", "").startswith("5"):
                err[key] += s.value
        p95, weight, busy = (
            by_svc(parts.get("p95", [])),
            by_svc(parts.get("weight", [])),
            by_svc(parts.get("gpu_busy", [])),
        )
        mode = {key: s.labels.get("mode", "") for s in parts.get("mode", []) for key in by_svc([s])}
        hpa_min = {(h.namespace, h.target): h.min_replicas for h in kube.get("hpas", [])}
        rows = []
        for svc in self.catalog.services:
            for region in svc.regions:
                if regions is not None and region not in regions:
                    continue
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
                        gpu_util=busy.get(key, 0.0),
                        mode=mode.get(key, "unknown"),
                        weight=weight.get(key, 0.0),
                    )
                )
        return tuple(rows)


def _merged(parts: list[Part]) -> tuple[Results, dict[str, list[Any]]]:
    """Every part's query results and API objects together (node details, pods: the one cluster that has them)."""
    prom: Results = defaultdict(list)
    kube: dict[str, list[Any]] = defaultdict(list)
    for _, results, objects in parts:
        for name, samples in results.items():
            prom[name] += samples
        for name, items in objects.items():
            kube[name] += items
    return prom, kube


@dataclass(frozen=True)
class _Rows:
    pools: tuple[PoolRow, ...]
    quotas: tuple[QuotaRow, ...]
    queues: tuple[QueueRow, ...]
    workloads: tuple[WorkloadRow, ...]
    services: tuple[ServiceRow, ...]

    @staticmethod
    def joined(parts: list[_Rows]) -> _Rows:
        return _Rows(*(tuple(r for p in parts for r in getattr(p, f.name)) for f in fields(_Rows)))

    def of(self, cluster: str) -> _Rows:
        """The same rows, each marked with its cluster."""
        return _Rows(*(tuple(replace(r, cluster=cluster) for r in rows) for rows in vars(self).values()))


def _detail(prom: Results, kube: dict[str, list[Any]], node: str) -> NodeDetail:
    """One node's GPUs (and MIG instances) and the pods on it."""
    pods = sorted(pod_row(p.namespace, p.name, p.phase, p.requests) for p in kube.get("pods", []))
    gpus = _gpu_rows(_split(prom.get("detail", []))).get(node, [])
    return NodeDetail(node, tuple(gpus), tuple(pods))


def _pool_samples(results: Results) -> list[Sample]:
    """The pools' parts, read raw (`pools_inventory`, `pools_busy`, `pools_readings`) or recorded (`pools`)."""
    return [s for name, samples in results.items() if name.startswith("pools") for s in samples]


def _pools_of(results: Results) -> set[tuple[str, str]]:
    """The (pool, region) pairs the results hold nodes of."""
    return {(s.labels.get("pool", ""), s.labels.get("region", "")) for s in _split(_pool_samples(results))["nodes"]}


def _present(cluster: str, results: Results, expected: set[tuple[str, str]]) -> Results:
    """`results`, if they hold nodes of every pool the catalog places in the cluster (else LostCluster): a scrape
    that fails leaves its series stale in pieces (a global view receives the stale markers in several remote
    writes), and rows half gone are not the fleet."""
    have = _pools_of(results)
    missing = sorted(expected - have)
    if missing and len(missing) == len(expected):
        raise LostCluster(f"no series from cluster {cluster}: its Prometheus holds none of its nodes now (up == 0?)")
    if missing:
        names = ", ".join(f"{p}/{r}" for p, r in missing)
        raise LostCluster(f"cluster {cluster} is missing the nodes of {len(missing)} of its pools: {names}")
    return results


class _GpuFields(TypedDict):
    gpus_total: float
    gpus_allocated: float
    gpus_idle: float
    util: float
    fb_used_mib: float
    fb_total_mib: float
    power_w: float
    io_bytes_s: float
    disk_busy: float


def _gpu_fields(v: dict[str, float]) -> _GpuFields:
    """What a pool row and a node row both carry, from their rolled-up parts."""
    return {
        "gpus_total": v["allocatable"],
        "gpus_allocated": v["requested"],
        "gpus_idle": v["idle_gpus"] + v["idle_mig"],  # whole GPUs, and MIG instances as their share
        "util": v["busy_sum"] / v["gpus"] if v["gpus"] else 0.0,
        "fb_used_mib": v["fb_used"],
        "fb_total_mib": v["fb_used"] + v["fb_free"],
        "power_w": v["power"],
        "io_bytes_s": v["io_bytes"],
        "disk_busy": v["disk_busy"],
    }


def _split(samples: list[Sample]) -> Results:
    """A `tagged` union's result, back into its named parts."""
    out: Results = defaultdict(list)
    for s in samples:
        out[s.labels.get(q.TAG, "")].append(s)
    return out


def _alert_rows(
    alerts: list[tuple[Any, str]], notified: dict[str, Any] | None = None, cluster_label: str = "cluster"
) -> tuple[AlertRow, ...]:
    """Each (alert, the cluster whose Alertmanager holds it) as a row; an alert two Alertmanagers hold (the
    same labels, the same fingerprint) once, as the first has it."""
    rank = {"critical": 0, "warning": 1, "info": 2}
    rows: dict[str, AlertRow] = {}
    for a, held in alerts:
        if a.fingerprint in rows:
            continue
        n = (notified or {}).get(a.fingerprint)
        rows[a.fingerprint] = AlertRow(
            fingerprint=a.fingerprint,
            name=a.name,
            severity=a.severity,
            team=a.labels.get("team", ""),
            summary=a.annotations.get("summary", ""),
            runbook=a.annotations.get("runbook_url", ""),
            starts_at=a.starts_at,
            state=a.state,
            silenced_by=tuple(a.silenced_by),
            labels=tuple(sorted(a.labels.items())),
            notified_to=n.channel if n else "",
            notified_at=n.at if n else None,
            # The cluster it is about: its label (a cluster's Prometheus sends its external labels with each
            # alert), else the cluster whose Alertmanager holds it.
            cluster=a.labels.get(cluster_label, "") or held,
            alertmanager=held,
        )
    return tuple(sorted(rows.values(), key=lambda r: (rank.get(r.severity, 3), r.team, r.starts_at, r.name)))


def _gpu_rows(parts: Results) -> dict[str, list[GpuRow]]:
    """Join one node's per-GPU readings: one row per GPU, or per MIG instance where a GPU is partitioned."""

    def key(lab: dict[str, str], instance: bool) -> tuple[str, str, str]:
        return (
            lab.get("Hostname") or lab.get("hostname") or "",
            lab.get("gpu", ""),
            lab.get("GPU_I_ID", "") if instance else "",
        )

    def index(name: str, instance: bool) -> dict[tuple[str, str, str], float]:
        return {key(s.labels, instance): s.value for s in parts.get(name, [])}

    fb_used, fb_free = index("fb_used", True), index("fb_free", True)
    power, temp, xid = index("power", False), index("temp", False), index("xid", False)
    device = {key(s.labels, False): s.labels for s in parts.get("util", [])}
    util = index("util", False)
    instances = [(key(s.labels, True), s) for s in parts.get("mig_active", [])]
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


def pod_row(namespace: str, name: str, phase: str, requests: dict[str, str]) -> PodRow:
    gpu = [f"{v} {k}" for k, v in sorted(requests.items()) if "gpu" in k]
    return PodRow(namespace, name, phase, ", ".join(gpu))
