"""`FleetSnapshot`: what the fleet looked like at one refresh. Immutable; screens only read it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

WARN_RATIO, CRIT_RATIO = 0.80, 0.95  # quota use that turns a row to warning, then critical
SEVERITY_ORDER = ("critical", "warning", "info")


@dataclass(frozen=True)
class SourceStatus:
    name: str
    ok: bool
    last_success: datetime | None
    error: str | None = None
    failing_since: datetime | None = None


@dataclass(frozen=True)
class GpuRow:
    """One GPU, or one MIG instance of a partitioned GPU."""

    node: str
    index: int
    uuid: str
    model: str
    util: float  # percent busy
    fb_used_mib: float
    fb_free_mib: float
    power_w: float
    temp_c: float
    xid: int
    pod: str = ""
    namespace: str = ""
    mig_profile: str = ""
    mig_id: str = ""

    @property
    def key(self) -> str:
        return f"{self.index}/{self.mig_id}" if self.mig_id else str(self.index)


@dataclass(frozen=True, order=True)
class PodRow:
    namespace: str
    name: str
    phase: str
    gpus: str  # the GPU resource it requests, as Kubernetes spells it ("1 nvidia.com/gpu")

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class NodeDetail:
    node: str
    gpus: tuple[GpuRow, ...]
    pods: tuple[PodRow, ...]


@dataclass(frozen=True)
class NodeRow:
    name: str
    pool: str
    region: str
    model: str
    ready: bool
    unschedulable: bool
    gpus_total: float  # allocatable, in GPUs (a MIG instance is its share)
    gpus_allocated: float
    gpus_idle: float
    util: float
    fb_used_mib: float = 0.0
    fb_total_mib: float = 0.0
    power_w: float = 0.0
    temp_max_c: float = 0.0
    xid: int = 0
    io_bytes_s: float = 0.0  # network bytes a second, in and out
    disk_busy: float = 0.0  # its busiest disk's share of time with IO in flight, 0..1

    @property
    def key(self) -> str:
        return self.name


@dataclass(frozen=True)
class PoolRow:
    pool: str
    region: str
    model: str
    nodes: int
    nodes_ready: int
    gpus_total: float
    gpus_allocated: float
    gpus_idle: float  # allocated but under 5 % busy
    util: float  # mean busy of its GPUs, percent
    fb_used_mib: float
    fb_total_mib: float
    power_w: float
    io_bytes_s: float = 0.0  # its nodes' network bytes a second: the storage traffic of a pool with a store
    disk_busy: float = 0.0  # its busiest disk, 0..1
    storage_ceiling_bytes_s: float | None = None  # the catalog's ceiling for its store, if it has one
    cluster: str = ""  # the cluster it was read from, when the fleet is read cluster by cluster

    @property
    def key(self) -> str:
        return f"{self.pool}/{self.region}"

    @property
    def storage_ratio(self) -> float | None:
        """Its storage traffic over its store's ceiling (None without a store)."""
        return self.io_bytes_s / self.storage_ceiling_bytes_s if self.storage_ceiling_bytes_s else None


@dataclass(frozen=True)
class QuotaRow:
    namespace: str
    team: str
    gpu_used: float
    gpu_hard: float | None
    cpu_used: float
    cpu_hard: float | None
    mem_used: float  # bytes
    mem_hard: float | None
    cluster: str = ""  # each cluster enforces its own quotas

    @property
    def key(self) -> str:
        return f"{self.cluster}/{self.namespace}" if self.cluster else self.namespace

    def worst_ratio(self) -> float:
        """The highest used/hard of its resources: what colours the row."""
        pairs = ((self.gpu_used, self.gpu_hard), (self.cpu_used, self.cpu_hard), (self.mem_used, self.mem_hard))
        return max((u / h for u, h in pairs if h), default=0.0)


@dataclass(frozen=True)
class QueueRow:
    """A Kueue ClusterQueue: its workloads, the GPUs it holds against its quota, and whether it admits."""

    cluster_queue: str
    cohort: str
    stop_policy: str  # "" (admitting), Hold or HoldAndDrain
    pending: int
    admitted: int
    flavors: tuple[tuple[str, float, float], ...]  # (flavor, GPUs used, nominal GPUs), in the catalog's order
    oldest_pending_s: float | None  # the oldest pending workload's age (None: none pending, or not read)
    cluster: str = ""

    @property
    def key(self) -> str:
        return f"{self.cluster}/{self.cluster_queue}" if self.cluster else self.cluster_queue

    @property
    def gpus_used(self) -> float:
        return sum(u for _, u, _ in self.flavors)

    @property
    def gpus_nominal(self) -> float:
        return sum(n for _, _, n in self.flavors)

    @property
    def gpus_borrowed(self) -> float:
        return sum(max(0.0, u - n) for _, u, n in self.flavors)


@dataclass(frozen=True)
class WorkloadRow:
    namespace: str
    name: str
    queue: str  # its LocalQueue
    cluster_queue: str
    state: str  # pending | admitted | evicted | finished
    flavor: str
    gpus: float
    age_s: float
    cluster: str = ""

    @property
    def key(self) -> str:
        return f"{self.cluster}/{self.namespace}/{self.name}" if self.cluster else f"{self.namespace}/{self.name}"

    @property
    def queue_key(self) -> str:
        """Its ClusterQueue's row key (`QueueRow.key`)."""
        return f"{self.cluster}/{self.cluster_queue}" if self.cluster else self.cluster_queue


@dataclass(frozen=True)
class ServiceRow:
    service: str
    region: str
    replicas_desired: int
    replicas_available: int
    hpa_min: int | None
    rps: float
    error_ratio: float
    p95_ms: float | None
    slo_ms: float
    gpu_util: float
    mode: str
    weight: float
    cluster: str = ""

    @property
    def key(self) -> str:
        return f"{self.service}/{self.region}"


@dataclass(frozen=True)
class AlertRow:
    fingerprint: str
    name: str
    severity: str
    team: str
    summary: str
    runbook: str
    starts_at: datetime
    state: str  # active | suppressed | unprocessed
    silenced_by: tuple[str, ...]
    labels: tuple[tuple[str, str], ...]
    notified_to: str = ""  # the chat `gpuops relay` last delivered it to ("feishu:#llm-oncall"), if any
    notified_at: datetime | None = None
    cluster: str = ""  # the cluster it is about, where the fleet is read by cluster
    alertmanager: str = ""  # the cluster whose own Alertmanager holds it ("": the console's --alertmanager)

    @property
    def key(self) -> str:
        return self.fingerprint

    @property
    def heartbeat(self) -> bool:
        """An always-firing alert that proves alerting works (the Watchdog, severity `none`): no problem."""
        return self.severity == "none"

    @property
    def firing(self) -> bool:
        return self.state == "active" and not self.heartbeat

    def label(self, name: str) -> str:
        return dict(self.labels).get(name, "")


@dataclass(frozen=True)
class FleetSnapshot:
    taken_at: datetime
    pools: tuple[PoolRow, ...]
    nodes: tuple[NodeRow, ...]
    quotas: tuple[QuotaRow, ...]
    services: tuple[ServiceRow, ...]
    alerts: tuple[AlertRow, ...] = ()
    queues: tuple[QueueRow, ...] = ()
    workloads: tuple[WorkloadRow, ...] = ()  # every batch workload, from the API (the Queues view opens them)
    detail: NodeDetail | None = None
    sources: dict[str, SourceStatus] = field(default_factory=dict)
    requests: int = 0  # requests this refresh made to all sources
    # How each Prometheus was read: "recorded" (the rules' pool and service series) or "raw" (every GPU's).
    reads: dict[str, str] = field(default_factory=dict)
    build_s: float = 0.0

    def pool(self, pool: str, region: str) -> PoolRow | None:
        return next((p for p in self.pools if p.pool == pool and p.region == region), None)

    def read_as(self) -> str:
        """ "recorded", "raw", "raw+recorded" (Prometheus read both ways), or "" (none read)."""
        return "+".join(sorted(set(self.reads.values())))

    def failing(self) -> list[SourceStatus]:
        return [s for s in self.sources.values() if not s.ok]

    def firing_by_severity(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for a in self.alerts:
            if a.firing:
                counts[a.severity] = counts.get(a.severity, 0) + 1
        return counts
