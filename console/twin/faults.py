"""Faults injected into the twin through its own endpoint; each has a start and an end on the sim clock."""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from console.twin.store import ApiError


class FaultKind(StrEnum):
    REGION_OUTAGE = "region_outage"  # the region's nodes go NotReady and its traffic is lost
    NODE_LOSS = "node_loss"  # the node is gone: its pods are deleted and re-created elsewhere
    XID_STORM = "xid_storm"  # the node's GPUs report an XID error
    TRAFFIC_SPIKE = "traffic_spike"  # a service's demand times `multiplier` (in one region or all)
    JOB_STALL = "job_stall"  # a batch Job's pods keep their GPUs but stop using them (a hung loader, a deadlock)
    THERMAL_THROTTLE = "thermal_throttle"  # the node's GPUs run hot and slow their clocks (a failed fan, a hot aisle)
    ECC_FAILURE = "ecc_failure"  # an uncorrectable memory error the GPU could not remap a row for: reset it
    NVLINK_ERRORS = "nvlink_errors"  # the node's NVLink and PCIe links retry and replay (a bad cable, a riser)
    EXPORTER_DOWN = "exporter_down"  # the node's dcgm-exporter stops; its series vanish, and it restarts at the end
    STORAGE_SLOW = "storage_slow"  # the pool's store (in one region or all) sustains `multiplier` of its ceiling
    CLUSTER_DOWN = "cluster_down"  # the cluster's API and /metrics are unreachable and its regions serve nothing


# The target fields each kind requires.
KINDS: dict[FaultKind, tuple[str, ...]] = {
    FaultKind.REGION_OUTAGE: ("region",),
    FaultKind.NODE_LOSS: ("node",),
    FaultKind.XID_STORM: ("node",),
    FaultKind.TRAFFIC_SPIKE: ("service",),
    FaultKind.JOB_STALL: ("job",),
    FaultKind.THERMAL_THROTTLE: ("node",),
    FaultKind.ECC_FAILURE: ("node",),
    FaultKind.NVLINK_ERRORS: ("node",),
    FaultKind.EXPORTER_DOWN: ("node",),
    FaultKind.STORAGE_SLOW: ("pool",),
    FaultKind.CLUSTER_DOWN: ("cluster",),
}
HEALTH_FAULTS = frozenset({FaultKind.THERMAL_THROTTLE, FaultKind.ECC_FAILURE, FaultKind.NVLINK_ERRORS})
NVLINK_ERRORS_PER_S = 2.0  # flit CRC errors a second on each link while the fault lasts; replays at half that
THROTTLED_SHARE = 0.6  # the share of each second a throttled GPU spends slowed down
# A spike triples demand; a slow store keeps a tenth of its throughput (a degraded NFS server, a throttled bucket).
DEFAULT_MULTIPLIER = {FaultKind.TRAFFIC_SPIKE: 3.0, FaultKind.STORAGE_SLOW: 0.1}


@dataclass(frozen=True)
class Health:
    """A node's GPU health as dcgm-exporter reports it: gauges now, and counters since the twin started."""

    throttled: bool = False
    throttled_s: float = 0.0  # seconds the GPUs were slowed for heat, so far
    remap_failure: bool = False
    uncorrectable_rows: int = 0  # rows remapped for uncorrectable errors, so far (they persist across resets)
    link_errors_s: float = 0.0  # seconds of NVLink/PCIe trouble so far


@dataclass(frozen=True)
class Effects:
    """What the faults active at one moment do to the fleet: every kind's effect is decided here, and the
    simulation and the exporters only read it."""

    down_regions: frozenset[str] = frozenset()
    lost_nodes: frozenset[str] = frozenset()
    xid_by_node: dict[str, int] = field(default_factory=dict)
    stalled_jobs: frozenset[str] = frozenset()
    exporters_down: frozenset[str] = frozenset()
    health: dict[str, Health] = field(default_factory=dict)  # nodes a health fault touched, ever
    spikes: tuple[tuple[str, str | None, float], ...] = ()  # (service, region or None for all, multiplier)
    slow_storage: tuple[tuple[str, str | None, float], ...] = ()  # (pool, region or None, share of the ceiling)

    def storage_share(self, pool: str, region: str) -> float:
        """The share of its ceiling the pool's store sustains in the region (1 unless storage_slow)."""
        return min(_on(self.slow_storage, pool, region), default=1.0)

    def spike(self, service: str, region: str) -> float:
        return math.prod(_on(self.spikes, service, region))


def _on(targets: tuple[tuple[str, str | None, float], ...], name: str, region: str) -> list[float]:
    """The values of the (name, region or None for all, value) targets that apply to `name` in `region`."""
    return [v for n, where, v in targets if n == name and where in (None, region)]


@dataclass
class Fault:
    id: str
    kind: FaultKind
    target: dict[str, str]
    start: datetime
    end: datetime
    multiplier: float = 1.0
    xid: int = 79

    def active(self, now: datetime) -> bool:
        return self.start <= now < self.end

    def as_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["start"], d["end"] = self.start.isoformat(), self.end.isoformat()
        return d


@dataclass
class FaultBook:
    faults: dict[str, Fault] = field(default_factory=dict)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    prefix: str = "f"  # of each fault's id: the clusters of one twin number theirs apart

    def add(
        self,
        spec: dict[str, Any],
        now: datetime,
        known: dict[str, set[str]],
        service_regions: dict[str, set[str]] | None = None,
    ) -> Fault:
        """Validate a fault request (`known` maps target field -> valid names) and schedule it."""
        try:
            kind = FaultKind(str(spec.get("kind")))
        except ValueError:
            raise ApiError(422, "Invalid", f"kind: must be one of {sorted(KINDS)}, got {spec.get('kind')!r}") from None
        target = {k: str(v) for k, v in (spec.get("target") or {}).items()}
        for f in KINDS[kind]:
            if f not in target:
                raise ApiError(422, "Invalid", f"target.{f}: required for {kind}")
        for f, v in target.items():
            if f not in known or v not in known[f]:
                raise ApiError(422, "Invalid", f"target.{f}: unknown {f} {v!r}")
        svc = target.get("service")
        if svc and "region" in target and service_regions and target["region"] not in service_regions.get(svc, set()):
            raise ApiError(422, "Invalid", f"target.region: {svc} does not run in {target['region']!r}")
        try:
            duration = float(spec.get("duration_s", 600))
            delay = float(spec.get("delay_s", 0))
            multiplier = float(spec.get("multiplier", DEFAULT_MULTIPLIER.get(kind, 1.0)))
        except (TypeError, ValueError) as e:
            raise ApiError(422, "Invalid", f"duration_s, delay_s and multiplier are numbers: {e}") from None
        if duration <= 0 or delay < 0 or multiplier <= 0:
            raise ApiError(422, "Invalid", "duration_s and multiplier must be > 0, delay_s >= 0")
        if kind == FaultKind.STORAGE_SLOW and multiplier > 1:
            raise ApiError(422, "Invalid", "multiplier: the share of the ceiling a slow store keeps, over 0 to 1")
        start = now + timedelta(seconds=delay)
        fault = Fault(
            f"{self.prefix}{next(self._ids)}",
            kind,
            target,
            start,
            start + timedelta(seconds=duration),
            multiplier,
            int(spec.get("xid", 79)),
        )
        self.faults[fault.id] = fault
        return fault

    def end(self, fault_id: str, now: datetime) -> Fault:
        f = self.faults.get(fault_id)
        if f is None:
            raise ApiError(404, "NotFound", f"fault {fault_id!r} not found")
        f.end = min(f.end, now)
        return f

    def active(self, now: datetime, kind: FaultKind) -> list[Fault]:
        return [f for f in self.faults.values() if f.kind == kind and f.active(now)]

    def _last_xids(self, now: datetime) -> dict[str, int]:
        """The XID each node's exporter reports: the last one since the exporter (re)started. The real gauge
        keeps it after the errors stop; only an exporter restart (the end of `exporter_down`) clears it."""
        restarts: dict[str, datetime] = {}
        for f in self.faults.values():
            if f.kind == FaultKind.EXPORTER_DOWN and f.end <= now:
                node = f.target["node"]
                restarts[node] = max(restarts.get(node, f.end), f.end)
        out: dict[str, tuple[datetime, int]] = {}
        for f in self.faults.values():
            node = f.target.get("node", "")
            if f.kind != FaultKind.XID_STORM or f.start > now or f.start < restarts.get(node, f.start):
                continue
            if node not in out or f.start >= out[node][0]:
                out[node] = (f.start, f.xid)
        return {node: xid for node, (_, xid) in out.items()}

    def _health(self, now: datetime) -> dict[str, Health]:
        out: dict[str, Health] = {}
        for f in self.faults.values():
            if f.kind not in HEALTH_FAULTS or f.start > now:
                continue
            node = f.target["node"]
            h, lasted, on = out.get(node, Health()), (min(f.end, now) - f.start).total_seconds(), f.active(now)
            if f.kind == FaultKind.THERMAL_THROTTLE:
                h = replace(h, throttled=h.throttled or on, throttled_s=h.throttled_s + lasted)
            elif f.kind == FaultKind.ECC_FAILURE:
                h = replace(h, remap_failure=h.remap_failure or on, uncorrectable_rows=h.uncorrectable_rows + 1)
            else:
                h = replace(h, link_errors_s=h.link_errors_s + lasted)
            out[node] = h
        return out

    def effects(self, now: datetime) -> Effects:
        on = [f for f in self.faults.values() if f.active(now)]

        def targets(kind: FaultKind, field: str) -> frozenset[str]:
            return frozenset(f.target[field] for f in on if f.kind == kind)

        return Effects(
            down_regions=targets(FaultKind.REGION_OUTAGE, "region"),
            lost_nodes=targets(FaultKind.NODE_LOSS, "node"),
            xid_by_node=self._last_xids(now),
            stalled_jobs=targets(FaultKind.JOB_STALL, "job"),
            exporters_down=targets(FaultKind.EXPORTER_DOWN, "node"),
            health=self._health(now),
            spikes=tuple(
                (f.target["service"], f.target.get("region"), f.multiplier)
                for f in on
                if f.kind == FaultKind.TRAFFIC_SPIKE
            ),
            slow_storage=tuple(
                (f.target["pool"], f.target.get("region"), f.multiplier) for f in on if f.kind == FaultKind.STORAGE_SLOW
            ),
        )
