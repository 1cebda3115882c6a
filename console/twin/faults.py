"""Faults injected into the twin through its own endpoint; each has a start and an end on the sim clock."""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass, field
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


# The target fields each kind requires.
KINDS: dict[FaultKind, tuple[str, ...]] = {
    FaultKind.REGION_OUTAGE: ("region",),
    FaultKind.NODE_LOSS: ("node",),
    FaultKind.XID_STORM: ("node",),
    FaultKind.TRAFFIC_SPIKE: ("service",),
    FaultKind.JOB_STALL: ("job",),
}


@dataclass(frozen=True)
class Effects:
    """What the faults active at one moment do to the fleet: every kind's effect is decided here, and the
    simulation and the exporters only read it."""

    down_regions: frozenset[str] = frozenset()
    lost_nodes: frozenset[str] = frozenset()
    xid_by_node: dict[str, int] = field(default_factory=dict)
    stalled_jobs: frozenset[str] = frozenset()
    spikes: tuple[tuple[str, str | None, float], ...] = ()  # (service, region or None for all, multiplier)

    def spike(self, service: str, region: str) -> float:
        out = 1.0
        for svc, where, multiplier in self.spikes:
            if svc == service and where in (None, region):
                out *= multiplier
        return out


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
            multiplier = float(spec.get("multiplier", 3.0 if kind == FaultKind.TRAFFIC_SPIKE else 1.0))
        except (TypeError, ValueError) as e:
            raise ApiError(422, "Invalid", f"duration_s, delay_s and multiplier are numbers: {e}") from None
        if duration <= 0 or delay < 0 or multiplier <= 0:
            raise ApiError(422, "Invalid", "duration_s and multiplier must be > 0, delay_s >= 0")
        start = now + timedelta(seconds=delay)
        fault = Fault(
            f"f{next(self._ids)}",
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

    def effects(self, now: datetime) -> Effects:
        on = [f for f in self.faults.values() if f.active(now)]

        def targets(kind: FaultKind, field: str) -> frozenset[str]:
            return frozenset(f.target[field] for f in on if f.kind == kind)

        return Effects(
            down_regions=targets(FaultKind.REGION_OUTAGE, "region"),
            lost_nodes=targets(FaultKind.NODE_LOSS, "node"),
            xid_by_node={f.target["node"]: f.xid for f in on if f.kind == FaultKind.XID_STORM},
            stalled_jobs=targets(FaultKind.JOB_STALL, "job"),
            spikes=tuple(
                (f.target["service"], f.target.get("region"), f.multiplier)
                for f in on
                if f.kind == FaultKind.TRAFFIC_SPIKE
            ),
        )
