"""The twin's device-level state beside the Kubernetes objects: the clock, nodes and their GPUs, pods and
where they sit, each service's load per region; and the small helpers that shape objects as Kubernetes does.

The `TwinState` attributes are what the twin's parts share: the fleet builder, the scheduler, the
controllers and the load model each read and change them under the store's lock.
"""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from console.catalog.model import Catalog, Event, Service
from console.quantity import parse_quantity
from console.twin import loadmodel as lm
from console.twin.faults import FaultBook
from console.twin.kubeapi import KubeApi
from console.twin.labels import REGION as REGION_LABEL
from console.twin.labels import Convention
from console.twin.resources import BY_PLURAL
from console.twin.storage import NodeIO
from console.twin.store import Obj, Store, now_rfc3339

if TYPE_CHECKING:
    from console.twin.clusters import Router

NODES, PODS, NAMESPACES = BY_PLURAL["nodes"], BY_PLURAL["pods"], BY_PLURAL["namespaces"]
DEPLOYMENTS, HPAS, CONFIGMAPS = BY_PLURAL["deployments"], BY_PLURAL["horizontalpodautoscalers"], BY_PLURAL["configmaps"]
QUOTAS, JOBS = BY_PLURAL["resourcequotas"], BY_PLURAL["jobs"]
FLAVORS, CLUSTER_QUEUES = BY_PLURAL["resourceflavors"], BY_PLURAL["clusterqueues"]
LOCAL_QUEUES, WORKLOADS = BY_PLURAL["localqueues"], BY_PLURAL["workloads"]


class SimClock:
    """Simulated time: `start` plus wall time elapsed times `speed` (0 pauses it).

    `segments` remembers every change, (Unix wall time, simulated time then, speed from then on), so that a
    sample Prometheus stamped with wall time can be placed in simulated time (what readiness forecasts on).
    """

    def __init__(self, start: datetime, speed: float):
        self._base, self._wall0, self.speed = start, time.monotonic(), speed
        self.segments: list[tuple[float, datetime, float]] = [(time.time(), start, speed)]
        self._held: datetime | None = None

    def now(self) -> datetime:
        if self._held is not None:
            return self._held
        return self._base + timedelta(seconds=(time.monotonic() - self._wall0) * self.speed)

    def hold(self, at: datetime) -> None:
        """Read `at` until `resume`: the backfill steps the fleet through its past this way."""
        self._held = at

    def resume(self, at: datetime, wall: float, since: datetime) -> None:
        """Run on from `at`, as if the clock had read it at Unix time `wall` (where the history's samples end).
        The segments begin where the history does (`since`), at this speed: what reads the timeline (readiness,
        the cost report) then reads the history as the fleet's own past, and maps its wall times back."""
        self._held = None
        self._base = at + timedelta(seconds=(time.time() - wall) * self.speed)
        self._wall0 = time.monotonic()
        began = wall - (at - since).total_seconds() / self.speed
        self.segments = [(began, since, self.speed), (wall, at, self.speed)]

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
    io: NodeIO = field(default_factory=NodeIO)  # node-exporter's disk, network and NFS counters


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


def uuid_for(*parts: str) -> str:
    return "GPU-" + str(uuid.uuid5(uuid.NAMESPACE_URL, "/".join(parts)))


def jitter(key: str, spread: float) -> float:
    """A stable per-object offset, so GPUs of one service do not all read the same value."""
    h = int(hashlib.blake2s(key.encode(), digest_size=4).hexdigest(), 16)
    return (h / 0xFFFFFFFF - 0.5) * 2 * spread


def qty_mem(mib: int) -> str:
    return f"{mib}Mi"


def gpu_share(pod: Pod, index: int) -> float:
    return sum(m for i, m in pod.gpu_alloc if i == index) / 1000


def node_info(name: str) -> Obj:
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


def condition(kind: str, ok: bool, reason: str = "") -> Obj:
    c = {"type": kind, "status": "True" if ok else "False", "lastTransitionTime": now_rfc3339()}
    if reason:
        c["reason"] = reason
    return c


def parse_requests(req: dict[str, str]) -> dict[str, int]:
    """Container requests as the twin counts them: cpu in milli-cores, memory in MiB, the rest as given."""
    scale = {"cpu": 1000, "memory": 1 / 1024**2}
    return {k: round(parse_quantity(v) * scale.get(k, 1)) for k, v in req.items()}


def resource_list(requests: dict[str, int]) -> dict[str, str]:
    """Requests as a container spec writes them: cpu in milli-cores, memory in MiB, the rest as counts."""
    return {k: (f"{v}m" if k == "cpu" else qty_mem(v) if k == "memory" else str(v)) for k, v in requests.items()}


def fmt(x: float) -> str:
    return f"{x:g}"


class TwinState:
    """What every part of the twin reads and changes; `console.twin.sim.Twin` sets it up."""

    catalog: Catalog
    store: Store
    lock: threading.RLock
    api: KubeApi
    clock: SimClock
    warmup: timedelta
    faults: FaultBook
    nodes: dict[str, Node]
    by_pool: dict[tuple[str, str], list[Node]]
    pods: dict[str, Pod]
    services: dict[tuple[str, str], ServiceRegion]
    mig_per_gpu: dict[str, int]
    _by_dep: dict[str, dict[str, Pod]]
    _by_job: dict[str, dict[str, Pod]]
    _pod_seq: int
    past_events: list[Event]
    conv: Convention  # how nodes are labelled (console/twin/labels.py)
    ksm_node_labels: frozenset[str] | None  # the node labels kube-state-metrics exports; None: all
    router: Router | None  # the global load balancer, when this twin is one cluster of several
    cluster_name: str  # that cluster's name ("" for a twin that is the whole fleet)

    def pool_of(self, selector: dict[str, str]) -> str | None:
        """The catalog pool a pod's node selector asks for; None for any node."""
        nl = self.conv.node_labels()
        for p in self.catalog.pools:
            if all(selector.get(k) == v for k, v in p.selector(nl).items()):
                return p.name
        return None

    def where(self, pool: str, region: str | None) -> dict[str, str]:
        """A pod's node selector for a pool (and a region)."""
        known = next((p for p in self.catalog.pools if p.name == pool), None)
        sel = self.conv.selector(known, region or "") if known else {self.conv.pool_label: pool, REGION_LABEL: ""}
        return sel if region else {k: v for k, v in sel.items() if k != REGION_LABEL}
