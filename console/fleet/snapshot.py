"""`FleetSnapshot`: what the fleet looked like at one refresh. Immutable; screens only read it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class SourceStatus:
    name: str
    ok: bool
    last_success: datetime | None
    error: str | None = None
    failing_since: datetime | None = None


@dataclass(frozen=True)
class GpuRow:
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


@dataclass(frozen=True)
class NodeRow:
    name: str
    pool: str
    region: str
    model: str
    ready: bool
    unschedulable: bool
    gpus_total: float
    gpus_allocated: float
    gpus_idle: float
    util: float
    gpus: tuple[GpuRow, ...] = ()


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

    @property
    def key(self) -> str:
        return f"{self.pool}/{self.region}"


@dataclass(frozen=True)
class QuotaRow:
    namespace: str
    team: str
    gpu_used: float
    gpu_hard: float | None
    cpu_used: float
    cpu_hard: float | None
    mem_used: float
    mem_hard: float | None


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

    @property
    def key(self) -> str:
        return f"{self.service}/{self.region}"


@dataclass(frozen=True)
class FleetSnapshot:
    taken_at: datetime
    pools: tuple[PoolRow, ...]
    nodes: tuple[NodeRow, ...]
    quotas: tuple[QuotaRow, ...]
    services: tuple[ServiceRow, ...]
    sources: dict[str, SourceStatus] = field(default_factory=dict)
    requests: int = 0  # requests this refresh made to all sources
    build_s: float = 0.0

    def pool(self, pool: str, region: str) -> PoolRow | None:
        return next((p for p in self.pools if p.pool == pool and p.region == region), None)

    def failing(self) -> list[SourceStatus]:
        return [s for s in self.sources.values() if not s.ok]
