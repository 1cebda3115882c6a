"""Capacity math for an event: forecast peak -> replicas and GPUs needed, with the buffer required, against what
runs and what the pool and quota could still give; a verdict and the gap per service x region. Pure.

What one replica serves is the catalog's `Service.replica_rps`, the capacity rule's reckoning too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

from console.catalog.model import Catalog, Service


class Verdict(StrEnum):
    READY = "READY"
    AT_RISK = "AT RISK"  # enough for the peak, not for the peak plus the buffer
    NOT_READY = "NOT READY"  # short of the peak itself
    NO_DATA = "NO DATA"  # no request history to forecast from


@dataclass(frozen=True)
class Cost:
    """GPU-seconds one request takes, and where that figure comes from."""

    gpu_seconds: float
    basis: str


def request_cost(catalog: Catalog, svc: Service, region: str, tokens_per_request: float | None) -> Cost:
    """LLM services: tokens per request (measured, else the catalog's) / the region's GPU model's tokens per
    GPU-second; every other service (or a model without a token rate): the catalog's GPU-seconds per request."""
    if svc.kind == "llm":
        pool = catalog.pool(svc.pool)
        model = next((m for m in catalog.gpu_models if m.name == pool.model_in(region)), None)
        tokens = tokens_per_request or svc.tokens_per_request
        if model and model.tokens_per_gpu_second and tokens:
            where = "measured" if tokens_per_request else "catalog"
            return Cost(
                tokens / model.tokens_per_gpu_second,
                f"{tokens:.0f} tokens/request ({where}) / {model.tokens_per_gpu_second:g} tokens/GPU-s ({model.name})",
            )
    return Cost(svc.gpu_seconds_per_request, f"{svc.gpu_seconds_per_request:g} GPU-s/request (catalog)")


@dataclass(frozen=True)
class Room:
    """What a pool in a region and a namespace's quota could still give (GPUs not held by anyone)."""

    pool_free_gpus: float
    quota_room_gpus: float | None  # None: no GPU quota on the namespace


@dataclass(frozen=True)
class Sizing:
    service: str
    region: str
    peak_rps: float
    cost: Cost
    replica_rps: float  # what one replica serves at the target utilisation
    needed_replicas: int  # for the peak
    required_replicas: int  # for the peak plus the buffer
    current_replicas: int  # ready now
    gpus_per_replica: float
    verdict: Verdict
    fillable: bool  # the pool and the quota have room for the gap

    @property
    def needed_gpus(self) -> float:
        return self.needed_replicas * self.gpus_per_replica

    @property
    def required_gpus(self) -> float:
        return self.required_replicas * self.gpus_per_replica

    @property
    def gap_replicas(self) -> int:
        return max(0, self.required_replicas - self.current_replicas)

    @property
    def gap_gpus(self) -> float:
        return self.gap_replicas * self.gpus_per_replica


def replicas_for(rps: float, replica_rps: float) -> int:
    """Replicas that serve `rps` (at least one); a hair under a whole replica is that replica, so float noise
    does not ask for one more. What readiness and `pre-scale` both size with."""
    return max(1, math.ceil(rps / replica_rps - 1e-9))


def size(
    svc: Service, region: str, peak_rps: float, cost: Cost, buffer: float, current_replicas: int, room: Room
) -> Sizing:
    replica_rps = svc.replica_rps(cost.gpu_seconds)
    needed = replicas_for(peak_rps, replica_rps)
    required = replicas_for(peak_rps * (1 + buffer), replica_rps)
    if current_replicas >= required:
        verdict = Verdict.READY
    elif current_replicas >= needed:
        verdict = Verdict.AT_RISK
    else:
        verdict = Verdict.NOT_READY
    gap_gpus = max(0, required - current_replicas) * svc.gpus_per_replica
    fillable = gap_gpus <= room.pool_free_gpus + 1e-9 and (
        room.quota_room_gpus is None or gap_gpus <= room.quota_room_gpus + 1e-9
    )
    return Sizing(
        svc.name,
        region,
        peak_rps,
        cost,
        replica_rps,
        needed,
        required,
        current_replicas,
        svc.gpus_per_replica,
        verdict,
        fillable,
    )
