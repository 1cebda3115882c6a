"""The fleet twin's simulation: nodes and GPUs, a scheduler, controllers, service load, faults.

Kubernetes objects live in the `Store` (what the API serves); the twin keeps the device-level state a
cluster does not hold in its API (which GPU a pod got, energy counters) beside it, under the same lock.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from console.catalog.model import (
    GPU_MILLI_RESOURCE,
    GPU_RESOURCE,
    Catalog,
    Pool,
    Service,
    deployment_name,
    mig_resource,
    routing_configmap,
)
from console.twin import loadmodel as lm
from console.twin.faults import FaultBook
from console.twin.kubeapi import DenyRule, KubeApi
from console.twin.quantity import parse_quantity
from console.twin.resources import BY_PLURAL
from console.twin.store import Obj, Store, now_rfc3339

NODES, PODS, NAMESPACES = BY_PLURAL["nodes"], BY_PLURAL["pods"], BY_PLURAL["namespaces"]
DEPLOYMENTS, HPAS, CONFIGMAPS = BY_PLURAL["deployments"], BY_PLURAL["horizontalpodautoscalers"], BY_PLURAL["configmaps"]
QUOTAS, JOBS = BY_PLURAL["resourcequotas"], BY_PLURAL["jobs"]
GIB = 1024**3


class SimClock:
    """Simulated time: `start` plus wall time elapsed times `speed` (0 pauses it).

    `segments` remembers every change, (Unix wall time, simulated time then, speed from then on), so that a
    sample Prometheus stamped with wall time can be placed in simulated time (what readiness forecasts on).
    """

    def __init__(self, start: datetime, speed: float):
        self._base, self._wall0, self.speed = start, time.monotonic(), speed
        self.segments: list[tuple[float, datetime, float]] = [(time.time(), start, speed)]

    def now(self) -> datetime:
        return self._base + timedelta(seconds=(time.monotonic() - self._wall0) * self.speed)

    def set_speed(self, speed: float) -> None:
        self._base, self._wall0, self.speed = self.now(), time.monotonic(), speed
        self.segments.append((time.time(), self._base, speed))

    def advance(self, seconds: float) -> None:
        self._base += timedelta(seconds=seconds)
        self.segments.append((time.time(), self.now(), self.speed))


@dataclass
class Gpu:
    index: int
    uuid: str
    model: str
    memory_mib: int
    tdp: int
    idle: int
    mig_slots: int = 0
    mig_profile: str = ""
    free_milli: int = 1000
    holders: list[str] = field(default_factory=list)  # pods on the whole or shared GPU
    slots: list[str | None] = field(default_factory=list)  # pods on each MIG instance
    energy_mj: float = 0.0


@dataclass
class Node:
    name: str
    pool: str
    region: str
    model: str | None
    gpus: list[Gpu]
    cpu_milli: int
    mem_mib: int
    gpu_price: float
    mig_resource: str = ""
    cpu_used: int = 0
    mem_used: int = 0
    ready: bool = True
    lost: bool = False
    unschedulable: bool = False  # cordoned: keeps its pods, takes no new ones


@dataclass
class Pod:
    namespace: str
    name: str
    node: str | None
    requests: dict[str, int]  # resource -> amount (cpu in milli, memory in MiB)
    created: datetime
    owner: tuple[str, ...]  # ("service", svc, region) | ("cpu", svc, region) | ("job", name) | ("trace",)
    util: float = 0.0  # percent, for work that is not a service
    deployment: str = ""  # "ns/name" of the owning deployment, if any
    job: str = ""  # "ns/name" of the owning batch Job, if any
    gpu_alloc: list[tuple[int, int]] = field(default_factory=list)  # (gpu index, milli)
    mig_alloc: list[tuple[int, int]] = field(default_factory=list)  # (gpu index, slot)
    ready_marked: bool = False

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass
class ServiceRegion:
    service: Service
    region: str
    ok_total: float = 0.0
    err_total: float = 0.0
    buckets: list[float] = field(default_factory=lambda: [0.0] * len(lm.LATENCY_BUCKETS))
    duration_sum: float = 0.0
    tokens_total: float = 0.0
    last: lm.Served = field(default_factory=lambda: lm.Served(0, 0, 0, 0, 0, 0))
    gpu_util: float = 0.0  # 0..1 busy of the GPU replicas
    mode: str = "normal"
    weight: float = 0.0

    def totals(self, dt: float = 0.0) -> tuple[float, float, list[float], float, float]:
        """(ok, errors, buckets, duration sum, tokens) `dt` seconds after the last tick, at the rates in
        effect since it: counters grow smoothly between ticks, so `rate()` does not depend on scrape timing."""
        s = self.last
        n = s.served_rps * dt
        fractions = lm.bucket_fractions(s.p95_s) if n > 0 else [0.0] * len(self.buckets)
        return (
            self.ok_total + n,
            self.err_total + s.error_rps * dt,
            [b + n * f for b, f in zip(self.buckets, fractions, strict=True)],
            self.duration_sum + n * s.mean_s,
            self.tokens_total + n * self.service.tokens_per_request,
        )

    def advance(self, dt: float) -> None:
        self.ok_total, self.err_total, self.buckets, self.duration_sum, self.tokens_total = self.totals(dt)


def _uuid(*parts: str) -> str:
    return "GPU-" + str(uuid.uuid5(uuid.NAMESPACE_URL, "/".join(parts)))


def _jitter(key: str, spread: float) -> float:
    """A stable per-object offset, so GPUs of one service do not all read the same value."""
    h = int(hashlib.blake2s(key.encode(), digest_size=4).hexdigest(), 16)
    return (h / 0xFFFFFFFF - 0.5) * 2 * spread


def _qty_mem(mib: int) -> str:
    return f"{mib}Mi"


class Twin:
    def __init__(
        self,
        catalog: Catalog,
        *,
        speed: float = 1.0,
        start: datetime | None = None,
        warmup_s: float = 90.0,
        deny: Iterable[str] = (),
        tick_s: float = 0.25,
    ):
        self.catalog = catalog
        self.store = Store()
        self.lock = self.store.lock
        self.api = KubeApi(self.store, deny=[DenyRule.parse(d) for d in deny])
        self.clock = SimClock(start or datetime.now(UTC), speed)
        self.warmup = timedelta(seconds=warmup_s)
        self.tick_s = tick_s
        self.faults = FaultBook()
        self.nodes: dict[str, Node] = {}
        self.by_pool: dict[tuple[str, str], list[Node]] = {}
        self.pods: dict[str, Pod] = {}
        self.services: dict[tuple[str, str], ServiceRegion] = {}
        self.mig_per_gpu: dict[str, int] = {
            mig_resource(p.mig): p.mig.instances_per_gpu for p in catalog.pools if p.mig
        }
        self._last_wall = time.monotonic()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._by_dep: dict[str, dict[str, Pod]] = {}
        self._by_job: dict[str, dict[str, Pod]] = {}
        self._pod_seq = 0
        self.store.listeners.append(self._on_change)
        with self.lock:
            self._build()
            self.tick()

    # --- building the fleet from the catalog ----------------------------------------------------------

    def _build(self) -> None:
        c = self.catalog
        models = {m.name: m for m in c.gpu_models}
        for pool in c.pools:
            for region, count in pool.nodes.items():
                for i in range(count):
                    self.add_node(pool, region, f"{pool.name}-{region}-{i:03d}", models)
        for team in c.teams:
            for ns in team.namespaces:
                self._create(
                    NAMESPACES,
                    None,
                    {
                        "metadata": {
                            "name": ns,
                            "labels": {
                                "gpuops.io/team": team.name,
                                "gpuops.io/cost-centre": team.cost_centre,
                                "gpuops.io/critical": str(team.critical).lower(),
                            },
                        }
                    },
                )
                self._create(
                    QUOTAS,
                    ns,
                    {
                        "metadata": {"name": "gpu-quota"},
                        "spec": {"hard": self._quota_hard(ns, team.quota_gpus.get(ns))},
                    },
                )
        for svc in c.services:
            self._create(
                CONFIGMAPS,
                svc.namespace,
                {
                    "metadata": {"name": routing_configmap(svc), "labels": {"gpuops.io/service": svc.name}},
                    "data": {
                        "mode": "normal",
                        **{f"weight.{r}": self._fmt(w) for r, w in _default_weights(svc).items()},
                    },
                },
            )
            for region in svc.regions:
                self.services[(svc.name, region)] = ServiceRegion(svc, region)
                self._create_deployment(
                    svc,
                    region,
                    deployment_name(svc, region),
                    svc.replicas.get(region, 1),
                    svc.pool,
                    self._pod_requests(svc, c.pool(svc.pool)),
                )
                if svc.fallback.mode == "cpu" and svc.fallback.deployment:
                    cpu_pool = next((p for p in c.pools if p.gpus_per_node == 0 and region in p.nodes), None)
                    if cpu_pool:
                        self._create_deployment(
                            svc,
                            region,
                            f"{svc.fallback.deployment}-{region}",
                            0,
                            cpu_pool.name,
                            {"cpu": 4000, "memory": 8192},
                            cpu=True,
                        )
        for job in c.jobs:
            pool = c.pool(job.pool)
            req = self._gpu_request(pool, job.gpus_per_pod)
            req.update({"cpu": 8000, "memory": 65536})
            res = {k: (f"{v}m" if k == "cpu" else _qty_mem(v) if k == "memory" else str(v)) for k, v in req.items()}
            labels = {"gpuops.io/job": job.name, "gpuops.io/team": job.team, "gpuops.io/workload": "batch"}
            where = {"gpuops.io/pool": pool.name, "topology.kubernetes.io/region": job.region}
            # A batch Job, as training and evaluation run: `suspend` is how work is paused and resumed.
            self._create(
                JOBS,
                job.namespace,
                {
                    "metadata": {
                        "name": job.name,
                        "labels": labels,
                        "annotations": {"gpuops.io/utilisation": self._fmt(job.utilisation)},
                    },
                    "spec": {
                        "parallelism": job.pods,
                        "completions": job.pods,
                        "completionMode": "Indexed",
                        "suspend": False,
                        "template": {
                            "metadata": {"labels": labels},
                            "spec": {
                                "nodeSelector": where,
                                "containers": [{"name": "main", "resources": {"requests": res, "limits": res}}],
                            },
                        },
                    },
                    "status": {"active": 0},
                },
            )

    @staticmethod
    def _fmt(x: float) -> str:
        return f"{x:g}"

    def _quota_hard(self, ns: str, gpus: float | None) -> dict[str, str]:
        hard = {"requests.cpu": "2000", "requests.memory": "8Ti"}
        if gpus is not None:
            hard[f"requests.{GPU_RESOURCE}"] = self._fmt(gpus)
        for svc in self.catalog.services:
            pool = self.catalog.pool(svc.pool)
            if svc.namespace == ns and pool.mig:
                # MIG slices are their own resource; the quota allows the slices of the GPUs it grants.
                hard[f"requests.{mig_resource(pool.mig)}"] = self._fmt((gpus or 0) * pool.mig.instances_per_gpu)
        return hard

    def add_node(
        self,
        pool: Pool,
        region: str,
        name: str,
        models: dict[str, Any],
        gpu_price: float | None = None,
        cpu_milli: int | None = None,
        mem_mib: int | None = None,
    ) -> Node:
        model = pool.model_in(region)
        spec = models.get(model) if model else None
        gpus = []
        for i in range(pool.gpus_per_node):
            g = Gpu(
                i,
                _uuid(name, str(i)),
                model or "",
                spec.memory_mib if spec else 16384,
                spec.tdp_watts if spec else 250,
                spec.idle_watts if spec else 30,
            )
            if pool.mig:
                g.mig_slots, g.mig_profile = pool.mig.instances_per_gpu, pool.mig.profile
                g.slots = [None] * g.mig_slots
            gpus.append(g)
        price = gpu_price if gpu_price is not None else self.catalog.prices.gpu_hourly.get(model or "", 0.0)
        node = Node(
            name,
            pool.name,
            region,
            model,
            gpus,
            cpu_milli or pool.cpu_per_node * 1000,
            mem_mib or pool.memory_gib_per_node * 1024,
            price,
            mig_resource(pool.mig) if pool.mig else "",
        )
        self.nodes[name] = node
        self.by_pool.setdefault((pool.name, region), []).append(node)
        alloc = {
            "cpu": str(node.cpu_milli // 1000),
            "memory": _qty_mem(node.mem_mib),
            "pods": "110",
            GPU_RESOURCE: str(0 if pool.mig else len(gpus)),
        }
        labels = {
            "kubernetes.io/hostname": name,
            "kubernetes.io/os": "linux",
            "topology.kubernetes.io/region": region,
            "gpuops.io/pool": pool.name,
            **pool.selector(),
        }
        if model:
            labels.update({"nvidia.com/gpu.product": model, "nvidia.com/gpu.count": str(len(gpus))})
        if pool.mig:
            alloc[mig_resource(pool.mig)] = str(len(gpus) * pool.mig.instances_per_gpu)
            labels["nvidia.com/mig.strategy"] = "mixed"
        self._create(
            NODES,
            None,
            {
                "metadata": {"name": name, "labels": labels},
                "spec": {},
                "status": {
                    "capacity": alloc,
                    "allocatable": dict(alloc),
                    "conditions": [_cond("Ready", True)],
                    "nodeInfo": _node_info(name),
                },
            },
        )
        return node

    def _gpu_request(self, pool: Pool, gpus: float) -> dict[str, int]:
        if not gpus:
            return {}
        if pool.mig:
            return {mig_resource(pool.mig): max(1, round(gpus * pool.mig.instances_per_gpu))}
        if gpus < 1:
            return {GPU_MILLI_RESOURCE: round(gpus * 1000)}
        return {GPU_RESOURCE: math.ceil(gpus)}

    def _pod_requests(self, svc: Service, pool: Pool) -> dict[str, int]:
        return {**self._gpu_request(pool, svc.gpus_per_replica), "cpu": 4000, "memory": 16384}

    def _create_deployment(
        self,
        svc: Service,
        region: str,
        name: str,
        replicas: int,
        pool: str,
        requests: dict[str, int],
        cpu: bool = False,
    ) -> None:
        labels = {"app": name, "gpuops.io/service": svc.name, "gpuops.io/region": region}
        if cpu:
            labels["gpuops.io/fallback"] = "cpu"
        res = {k: (f"{v}m" if k == "cpu" else _qty_mem(v) if k == "memory" else str(v)) for k, v in requests.items()}
        self._create(
            DEPLOYMENTS,
            svc.namespace,
            {
                "metadata": {"name": name, "labels": labels},
                "spec": {
                    "replicas": replicas,
                    "selector": {"matchLabels": {"app": name}},
                    "template": {
                        "metadata": {"labels": labels},
                        "spec": {
                            "nodeSelector": {"gpuops.io/pool": pool, "topology.kubernetes.io/region": region},
                            "containers": [
                                {
                                    "name": "server",
                                    "image": f"registry.local/{svc.name}:stable",
                                    "resources": {"requests": res, "limits": res},
                                }
                            ],
                        },
                    },
                },
                "status": {},
            },
        )
        if not cpu:
            self._create(
                HPAS,
                svc.namespace,
                {
                    "metadata": {"name": name, "labels": labels},
                    "spec": {
                        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                        "minReplicas": max(1, replicas),
                        "maxReplicas": max(svc.hpa_max_replicas, replicas),
                        "metrics": [
                            {
                                "type": "External",
                                "external": {
                                    "metric": {"name": "DCGM_FI_DEV_GPU_UTIL"},
                                    "target": {
                                        "type": "AverageValue",
                                        "averageValue": str(int(svc.target_utilisation * 100)),
                                    },
                                },
                            }
                        ],
                    },
                    "status": {"currentReplicas": replicas, "desiredReplicas": replicas},
                },
            )

    def _create(self, res: Any, ns: str | None, obj: Obj) -> Obj:
        return self.store.create(res, ns, obj)

    # --- pods and the scheduler -------------------------------------------------------------------------

    def create_pod(
        self,
        ns: str,
        name: str,
        requests: dict[str, int],
        labels: dict[str, str],
        owner: tuple[str, ...],
        pool: str | None,
        region: str | None,
        util: float = 0.0,
        node_filter: Any = None,
        deployment: str = "",
    ) -> Pod:
        pod = Pod(ns, name, None, requests, self.clock.now(), owner, util, deployment)
        self._place(pod, pool, region, node_filter)
        self.pods[pod.key] = pod
        res = {k: (f"{v}m" if k == "cpu" else _qty_mem(v) if k == "memory" else str(v)) for k, v in requests.items()}
        spec: Obj = {"containers": [{"name": "main", "resources": {"requests": res, "limits": res}}]}
        if pod.node:
            spec["nodeName"] = pod.node
        if pool:
            spec["nodeSelector"] = {
                "gpuops.io/pool": pool,
                **({"topology.kubernetes.io/region": region} if region else {}),
            }
        annotations = {"gpuops.io/gpus": ",".join(str(i) for i, _ in pod.gpu_alloc + pod.mig_alloc)} if pod.node else {}
        self._create(
            PODS,
            ns,
            {
                "metadata": {"name": name, "labels": labels, "annotations": annotations},
                "spec": spec,
                "status": self._pod_status(pod, ready=False),
            },
        )
        return pod

    def _pod_status(self, pod: Pod, ready: bool) -> Obj:
        if not pod.node:
            return {"phase": "Pending", "conditions": [_cond("PodScheduled", False, "Unschedulable")]}
        return {
            "phase": "Running",
            "conditions": [_cond("PodScheduled", True), _cond("Ready", ready)],
            "startTime": now_rfc3339(),
        }

    def _fits(self, node: Node, pod: Pod) -> list[tuple[str, int, int]] | None:
        """The GPU slots this pod would take on `node`, or None if it does not fit."""
        r = pod.requests
        if not node.ready or node.lost or node.unschedulable:
            return None
        if node.cpu_used + r.get("cpu", 0) > node.cpu_milli or node.mem_used + r.get("memory", 0) > node.mem_mib:
            return None
        take: list[tuple[str, int, int]] = []
        whole = r.get(GPU_RESOURCE, 0)
        if whole:
            free = [g.index for g in node.gpus if not g.mig_slots and g.free_milli == 1000]
            if len(free) < whole:
                return None
            take += [("gpu", i, 1000) for i in free[:whole]]
        milli = r.get(GPU_MILLI_RESOURCE, 0)
        if milli:
            # Best fit: the busiest GPU that still has room, so shared GPUs pack.
            cands = sorted(
                (g for g in node.gpus if not g.mig_slots and g.free_milli >= milli), key=lambda g: g.free_milli
            )
            if not cands:
                return None
            take.append(("gpu", cands[0].index, milli))
        if node.mig_resource:
            want = r.get(node.mig_resource, 0)
            if want:
                slots = [(g.index, s) for g in node.gpus for s, holder in enumerate(g.slots) if holder is None]
                if len(slots) < want:
                    return None
                take += [("mig", i, s) for i, s in slots[:want]]
        elif any(k.startswith("nvidia.com/mig-") for k in r):
            return None
        return take

    def _place(self, pod: Pod, pool: str | None, region: str | None, node_filter: Any = None) -> bool:
        if pool is None:
            cands: Iterable[Node] = self.nodes.values()
        elif region:
            cands = self.by_pool.get((pool, region), [])
        else:
            cands = [n for (p, _), ns in self.by_pool.items() if p == pool for n in ns]
        for node in cands:
            if node_filter and not node_filter(node):
                continue
            take = self._fits(node, pod)
            if take is None:
                continue
            pod.node = node.name
            node.cpu_used += pod.requests.get("cpu", 0)
            node.mem_used += pod.requests.get("memory", 0)
            for kind, i, amount in take:
                g = node.gpus[i]
                if kind == "gpu":
                    g.free_milli -= amount
                    g.holders.append(pod.key)
                    pod.gpu_alloc.append((i, amount))
                else:
                    g.slots[amount] = pod.key
                    pod.mig_alloc.append((i, amount))
            return True
        return False

    def _release(self, pod: Pod) -> None:
        node = self.nodes.get(pod.node or "")
        if node:
            node.cpu_used -= pod.requests.get("cpu", 0)
            node.mem_used -= pod.requests.get("memory", 0)
            for i, milli in pod.gpu_alloc:
                node.gpus[i].free_milli += milli
                node.gpus[i].holders.remove(pod.key)
            for i, slot in pod.mig_alloc:
                node.gpus[i].slots[slot] = None
        pod.node, pod.gpu_alloc, pod.mig_alloc = None, [], []

    def delete_pod(self, key: str) -> None:
        pod = self.pods.get(key)
        if pod is None:
            return
        ns, name = key.split("/", 1)
        if self.store.find(PODS, ns, name) is not None:
            self.store.delete(PODS, ns, name)  # the listener releases it
        else:
            self._release(self.pods.pop(key))

    def _on_change(self, event: str, res: Any, obj: Obj) -> None:
        if res is NODES and event == "MODIFIED":
            node = self.nodes.get(obj["metadata"]["name"])
            if node:
                node.unschedulable = bool(obj["spec"].get("unschedulable"))
        if res is PODS and event == "DELETED":
            key = f"{obj['metadata']['namespace']}/{obj['metadata']['name']}"
            pod = self.pods.pop(key, None)
            if pod:
                self._release(pod)
                self._by_dep.get(pod.deployment, {}).pop(key, None)
                self._by_job.get(pod.job, {}).pop(key, None)

    # --- the loop -----------------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="twin-clock", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.tick_s):
            with self.lock:
                self.tick()

    def tick(self) -> None:
        now = self.clock.now()
        wall = time.monotonic()
        dt = max(0.0, wall - self._last_wall)
        self._last_wall = wall
        self._apply_node_faults(now)
        self.replay(now)
        self._reconcile_hpas()
        self._index()
        self._reconcile_jobs()
        self._reconcile_deployments(now)
        self._index()
        self._mark_ready(now)
        self._update_deployment_status()
        self._update_quota_status()
        self._serve(now, dt)
        self._energy(dt)

    def _new_pod_name(self, ns: str, name: str) -> str:
        """`<name>-<5 hex>` as a ReplicaSet names its pods; like generateName, another on a collision (five hex
        digits collide within a few hundred pods). Derived from a counter, not the time: the same seed and
        clock give the same names."""
        while True:
            self._pod_seq += 1
            suffix = hashlib.blake2s(f"{name}/{self._pod_seq}".encode(), digest_size=4).hexdigest()[:5]
            if f"{ns}/{name}-{suffix}" not in self.pods:
                return f"{name}-{suffix}"

    def since_tick(self) -> float:
        """Wall seconds since the last tick (callers hold `lock`)."""
        return max(0.0, time.monotonic() - self._last_wall)

    def replay(self, now: datetime) -> None:
        """Hook for a recorded workload (the Alibaba trace); the catalog fleet has none."""

    def _apply_node_faults(self, now: datetime) -> None:
        down_regions = {f.target["region"] for f in self.faults.active(now, "region_outage")}
        lost = {f.target["node"] for f in self.faults.active(now, "node_loss")}
        for node in self.nodes.values():
            ready = node.region not in down_regions and node.name not in lost
            was_lost = node.lost
            node.lost = node.name in lost
            if node.lost and not was_lost:
                # A lost node's pods are gone; their controllers re-create them elsewhere.
                for key in [p.key for p in self.pods.values() if p.node == node.name]:
                    self.delete_pod(key)
            if ready != node.ready:
                node.ready = ready

                def change(o: Obj, ready: bool = ready) -> None:
                    o["status"]["conditions"] = [_cond("Ready", ready, "" if ready else "NodeStatusUnknown")]

                self.store.update(NODES, None, node.name, change)

    def _reconcile_hpas(self) -> None:
        # The twin's HPA keeps a deployment inside [minReplicas, maxReplicas]; it does not scale on metrics,
        # so what a runbook sets is what the fleet runs.
        for hpa in list(self.store.iter(HPAS)):
            ns, spec = hpa["metadata"]["namespace"], hpa["spec"]
            dep = self.store.find(DEPLOYMENTS, ns, spec["scaleTargetRef"]["name"])
            if dep is None:
                continue
            cur = dep["spec"].get("replicas", 0)
            want = min(max(cur, spec.get("minReplicas", 1)), spec.get("maxReplicas", cur))
            if want != cur:
                self.store.update(
                    DEPLOYMENTS, ns, dep["metadata"]["name"], lambda o, w=want: o["spec"].__setitem__("replicas", w)
                )
            st = hpa.get("status") or {}
            if st.get("currentReplicas") != cur or st.get("desiredReplicas") != want:
                self.store.update(
                    HPAS,
                    ns,
                    hpa["metadata"]["name"],
                    lambda o, c=cur, w=want: o.__setitem__("status", {"currentReplicas": c, "desiredReplicas": w}),
                )

    def _deployment_pods(self, ns: str, name: str) -> list[Pod]:
        return list(self._by_dep.get(f"{ns}/{name}", {}).values())

    def _index(self) -> None:
        self._by_dep, self._by_job = {}, {}
        for p in self.pods.values():
            if p.deployment:
                self._by_dep.setdefault(p.deployment, {})[p.key] = p
            if p.job:
                self._by_job.setdefault(p.job, {})[p.key] = p

    def _reconcile_jobs(self) -> None:
        # An indexed Job runs `parallelism` pods named <job>-<index>; a suspended one runs none (its pods are
        # deleted and come back under the same names when it resumes).
        for job in list(self.store.iter(JOBS)):
            meta, spec = job["metadata"], job["spec"]
            ns, name = meta["namespace"], meta["name"]
            key = f"{ns}/{name}"
            pods = {p.name: p for p in self._by_job.get(key, {}).values()}
            want = 0 if spec.get("suspend") else int(spec.get("parallelism", 1))
            tmpl = spec["template"]
            sel = tmpl["spec"].get("nodeSelector", {})
            pool, region = sel.get("gpuops.io/pool"), sel.get("topology.kubernetes.io/region")
            for pod_name, p in list(pods.items()):
                if int(pod_name.rsplit("-", 1)[1]) >= want:
                    del pods[pod_name]
                    self.delete_pod(p.key)
            for p in pods.values():
                if p.node is None and self._place(p, pool, region):
                    self.store.update(PODS, ns, p.name, lambda o, p=p: self._bind(o, p))
            requests = _parse_requests(tmpl["spec"]["containers"][0]["resources"].get("requests", {}))
            util = float((meta.get("annotations") or {}).get("gpuops.io/utilisation", "0"))
            for i in range(want):
                if f"{name}-{i}" in pods or not self._quota_allows(ns, requests):
                    continue
                pod = self.create_pod(
                    ns, f"{name}-{i}", requests, dict(tmpl["metadata"]["labels"]), ("job", name), pool, region, util
                )
                pod.job = key
                self._by_job.setdefault(key, {})[pod.key] = pod
            active = len(self._by_job.get(key, {}))
            if (job.get("status") or {}).get("active") != active:
                self.store.update(JOBS, ns, name, lambda o, a=active: o.__setitem__("status", {"active": a}))

    def _reconcile_deployments(self, now: datetime) -> None:
        for dep in list(self.store.iter(DEPLOYMENTS)):
            meta, spec = dep["metadata"], dep["spec"]
            ns, name = meta["namespace"], meta["name"]
            labels = meta.get("labels", {})
            pods = self._deployment_pods(ns, name)
            want = spec.get("replicas", 0)
            tmpl = spec["template"]
            sel = tmpl["spec"].get("nodeSelector", {})
            pool, region = sel.get("gpuops.io/pool"), sel.get("topology.kubernetes.io/region")
            # Pending pods get another chance at a node each tick.
            for p in pods:
                if p.node is None and self._place(p, pool, region):
                    self.store.update(PODS, ns, p.name, lambda o, p=p: self._bind(o, p))
            if len(pods) > want:
                # Scale down removes pending pods first, then the youngest, as the ReplicaSet controller does.
                victims = sorted(pods, key=lambda p: (p.node is not None, p.created))[: len(pods) - want]
                for p in reversed(victims):
                    self.delete_pod(p.key)
            elif len(pods) < want:
                requests = _parse_requests(tmpl["spec"]["containers"][0]["resources"].get("requests", {}))
                owner = (
                    "cpu" if labels.get("gpuops.io/fallback") == "cpu" else "service",
                    labels.get("gpuops.io/service", ""),
                    labels.get("gpuops.io/region", ""),
                )
                for _ in range(want - len(pods)):
                    if not self._quota_allows(ns, requests):
                        break
                    pod_name = self._new_pod_name(ns, name)
                    pod = self.create_pod(
                        ns,
                        pod_name,
                        requests,
                        dict(tmpl["metadata"]["labels"]),
                        owner,
                        pool,
                        region,
                        deployment=f"{ns}/{name}",
                    )
                    self._by_dep.setdefault(pod.deployment, {})[pod.key] = pod

    def _bind(self, o: Obj, p: Pod) -> None:
        o["spec"]["nodeName"] = p.node
        o["metadata"].setdefault("annotations", {})["gpuops.io/gpus"] = ",".join(
            str(i) for i, _ in p.gpu_alloc + p.mig_alloc
        )
        o["status"] = self._pod_status(p, ready=False)

    def _quota_allows(self, ns: str, requests: dict[str, int]) -> bool:
        q = self.store.find(QUOTAS, ns, "gpu-quota")
        if q is None:
            return True
        used = self._ns_usage(ns)
        for key, hard in q["spec"]["hard"].items():
            res = key.removeprefix("requests.")
            if res in requests and res not in ("cpu", "memory") and used.get(res, 0) + requests[res] > float(hard):
                return False
        return True

    def _ns_usage(self, ns: str) -> dict[str, float]:
        used: dict[str, float] = {}
        for p in self.pods.values():
            if p.namespace == ns:
                for k, v in p.requests.items():
                    used[k] = used.get(k, 0) + v
        return used

    def _mark_ready(self, now: datetime) -> None:
        for p in self.pods.values():
            node = self.nodes.get(p.node or "")
            ready = bool(node and node.ready and now - p.created >= self.warmup)
            if ready != p.ready_marked:
                p.ready_marked = ready
                self.store.update(
                    PODS, p.namespace, p.name, lambda o, p=p, r=ready: o.__setitem__("status", self._pod_status(p, r))
                )

    def _update_deployment_status(self) -> None:
        for dep in list(self.store.iter(DEPLOYMENTS)):
            meta = dep["metadata"]
            pods = self._deployment_pods(meta["namespace"], meta["name"])
            ready = sum(1 for p in pods if p.ready_marked)
            want = dep["spec"].get("replicas", 0)
            status = {
                "observedGeneration": meta.get("generation", 1),
                "replicas": len(pods),
                "updatedReplicas": len(pods),
                "readyReplicas": ready,
                "availableReplicas": ready,
                "unavailableReplicas": max(0, want - ready),
                "conditions": [{"type": "Available", "status": "True" if ready >= want else "False"}],
            }
            if dep.get("status") != status:
                self.store.update(
                    DEPLOYMENTS, meta["namespace"], meta["name"], lambda o, s=status: o.__setitem__("status", s)
                )

    def _update_quota_status(self) -> None:
        usage: dict[str, dict[str, float]] = {}
        for p in self.pods.values():
            u = usage.setdefault(p.namespace, {})
            for k, v in p.requests.items():
                u[k] = u.get(k, 0) + v
        for q in list(self.store.iter(QUOTAS)):
            ns = q["metadata"]["namespace"]
            u = usage.get(ns, {})
            hard = q["spec"]["hard"]
            used = {}
            for key in hard:
                res = key.removeprefix("requests.")
                v = u.get(res, 0)
                used[key] = (
                    self._fmt(v / 1000) if res == "cpu" else _qty_mem(int(v)) if res == "memory" else self._fmt(v)
                )
            status = {"hard": dict(hard), "used": used}
            if q.get("status") != status:
                self.store.update(QUOTAS, ns, q["metadata"]["name"], lambda o, s=status: o.__setitem__("status", s))

    # --- traffic -----------------------------------------------------------------------------------------

    def routing(self, svc: Service) -> tuple[str, dict[str, float]]:
        cm = self.store.find(CONFIGMAPS, svc.namespace, routing_configmap(svc))
        data = (cm or {}).get("data") or {}
        weights = _default_weights(svc)
        for r in svc.regions:
            # A malformed weight keeps the default rather than stopping the twin.
            with contextlib.suppress(ValueError):
                weights[r] = max(0.0, float(data.get(f"weight.{r}", weights[r])))
        mode = data.get("mode", "normal")
        return (mode if mode in ("normal", "rules", "cpu") else "normal"), weights

    def demand(self, svc: Service, now: datetime) -> dict[str, float]:
        offsets = {r.name: r.utc_offset_hours for r in self.catalog.regions}
        event = 1.0
        for ev in self.catalog.events:
            if svc.name in ev.services:
                event = max(event, lm.event_factor(now, ev.start, ev.end, ev.multiplier))
        out = {}
        for r in svc.regions:
            spike = 1.0
            for f in self.faults.active(now, "traffic_spike"):
                if f.target["service"] == svc.name and f.target.get("region", r) == r:
                    spike *= f.multiplier
            wobble = 1 + 0.04 * math.sin(now.timestamp() / 97 + len(svc.name) + len(r))
            out[r] = svc.base_rps.get(r, 0.0) * lm.diurnal(now, offsets.get(r, 0)) * event * spike * wobble
        return out

    def _serve(self, now: datetime, dt: float) -> None:
        down = {f.target["region"] for f in self.faults.active(now, "region_outage")}
        for svc in self.catalog.services:
            mode, weights = self.routing(svc)
            routed = lm.route(self.demand(svc, now), weights, _default_weights(svc))
            for region in svc.regions:
                sr = self.services[(svc.name, region)]
                sr.advance(dt)  # what was served since the last tick, at the rates then in effect
                sr.mode, sr.weight = mode, weights[region]
                gpu_pods = [
                    p for p in self._deployment_pods(svc.namespace, deployment_name(svc, region)) if p.ready_marked
                ]
                per_replica = max(svc.gpus_per_replica, 1.0) / svc.gpu_seconds_per_request
                factor = svc.fallback.gpu_load_factor if mode == "rules" else 1.0
                base = svc.base_latency_ms / 1000
                if mode == "cpu" and svc.fallback.deployment:
                    cpu_pods = [
                        p
                        for p in self._deployment_pods(svc.namespace, f"{svc.fallback.deployment}-{region}")
                        if p.ready_marked
                    ]
                    capacity = len(cpu_pods) * per_replica / lm.CPU_SLOWDOWN
                    served = lm.serve(routed[region], capacity, base * 2)
                    gpu_util = 0.0
                else:
                    capacity = len(gpu_pods) * per_replica / factor
                    served = lm.serve(routed[region], capacity, base * (0.5 if mode == "rules" else 1.0))
                    gpu_util = served.utilisation
                if region in down:
                    served = lm.Served(routed[region], 0.0, routed[region], 0.0, 0.0, 0.0)
                    gpu_util = 0.0
                sr.last, sr.gpu_util = served, gpu_util

    def pod_util(self, pod: Pod) -> float:
        """GPU busy percent of the work on this pod."""
        if pod.owner[0] == "service":
            if not pod.ready_marked:
                return 0.0
            sr = self.services.get((pod.owner[1], pod.owner[2]))
            busy = sr.gpu_util * 100 if sr else 0.0
            return max(0.0, min(100.0, busy + _jitter(pod.key, 3.0) if busy > 0 else 0.0))
        if pod.owner[0] == "job" and any(
            f.target["job"] == pod.owner[1] for f in self.faults.active(self.clock.now(), "job_stall")
        ):
            return 0.0
        return max(0.0, min(100.0, pod.util + _jitter(pod.key, 2.0)))

    def gpu_readings(self, node: Node, gpu: Gpu) -> tuple[float, float]:
        """(busy percent, memory used MiB) of one whole GPU."""
        util, mem = 0.0, gpu.memory_mib * 0.005
        for key in gpu.holders:
            pod = self.pods[key]
            share, busy = _gpu_share(pod, gpu.index), self.pod_util(pod)
            util += busy * share
            mem += gpu.memory_mib * (0.55 + 0.3 * busy / 100) * share
        return min(100.0, util), min(gpu.memory_mib * 0.98, mem)

    def _energy(self, dt: float) -> None:
        if dt <= 0:
            return
        for node in self.nodes.values():
            if not node.ready:
                continue
            for g in node.gpus:
                util = self.gpu_readings(node, g)[0] if not g.mig_slots else self.mig_busy(g)
                g.energy_mj += (g.idle + (g.tdp - g.idle) * util / 100) * dt * 1000

    def mig_busy(self, gpu: Gpu) -> float:
        held = [self.pod_util(self.pods[k]) for k in gpu.slots if k and k in self.pods]
        return sum(held) / max(1, gpu.mig_slots)

    # --- the fault and clock endpoint ---------------------------------------------------------------

    def fault_targets(self) -> dict[str, set[str]]:
        return {
            "region": set(self.catalog.region_names()),
            "node": set(self.nodes),
            "service": {s.name for s in self.catalog.services},
            "job": {j.name for j in self.catalog.jobs},
        }

    def add_fault(self, spec: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            regions = {s.name: set(s.regions) for s in self.catalog.services}
            fault = self.faults.add(spec, self.clock.now(), self.fault_targets(), regions)
            self.tick()
            return fault.as_json()


def _gpu_share(pod: Pod, index: int) -> float:
    return sum(m for i, m in pod.gpu_alloc if i == index) / 1000


def _default_weights(svc: Service) -> dict[str, float]:
    total = sum(svc.base_rps.get(r, 0.0) for r in svc.regions) or 1.0
    return {r: round(100 * svc.base_rps.get(r, 0.0) / total, 1) for r in svc.regions}


def _node_info(name: str) -> Obj:
    uid = str(uuid.uuid5(uuid.NAMESPACE_DNS, name))
    return {
        "architecture": "amd64",
        "bootID": uid,
        "containerRuntimeVersion": "containerd://1.7.13",
        "kernelVersion": "6.1.0-twin",
        "kubeProxyVersion": "v1.30.0-twin",
        "kubeletVersion": "v1.30.0-twin",
        "machineID": uid.replace("-", ""),
        "operatingSystem": "linux",
        "osImage": "gpuops twin",
        "systemUUID": uid,
    }


def _cond(kind: str, ok: bool, reason: str = "") -> Obj:
    c = {"type": kind, "status": "True" if ok else "False", "lastTransitionTime": now_rfc3339()}
    if reason:
        c["reason"] = reason
    return c


def _parse_requests(req: dict[str, str]) -> dict[str, int]:
    """Container requests as the twin counts them: cpu in milli-cores, memory in MiB, the rest as given."""
    scale = {"cpu": 1000, "memory": 1 / 1024**2}
    return {k: round(parse_quantity(v) * scale.get(k, 1)) for k, v in req.items()}
