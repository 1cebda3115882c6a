"""Faults injected into the twin through its own endpoint; each has a start and an end on the sim clock."""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from console.twin.store import ApiError

KINDS: dict[str, tuple[str, ...]] = {
    # kind: the target fields it requires
    "region_outage": ("region",),
    "node_loss": ("node",),
    "xid_storm": ("node",),
    "traffic_spike": ("service",),
    # A batch Job whose pods keep their GPUs but stop using them (a hung data loader, a deadlock).
    "job_stall": ("job",),
}


@dataclass
class Fault:
    id: str
    kind: str
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
        kind = spec.get("kind")
        if kind not in KINDS:
            raise ApiError(422, "Invalid", f"kind: must be one of {sorted(KINDS)}, got {kind!r}")
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
            multiplier = float(spec.get("multiplier", 3.0 if kind == "traffic_spike" else 1.0))
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

    def active(self, now: datetime, kind: str) -> list[Fault]:
        return [f for f in self.faults.values() if f.kind == kind and f.active(now)]
