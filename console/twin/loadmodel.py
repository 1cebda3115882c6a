"""How a service behaves under load: diurnal demand, event spikes, utilisation, latency. Pure functions."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

# Histogram buckets of the services' latency metric, in seconds. They include the demo services' latency
# SLOs (0.8 to 30 s): a latency SLO is measured at a bucket boundary, so services put one there.
LATENCY_BUCKETS: tuple[float, ...] = (0.05, 0.1, 0.25, 0.5, 0.8, 1.0, 1.2, 1.5, 2.5, 5.0, 6.0, 10.0, 30.0, 60.0)
_SIGMA = 0.35  # spread of the log-normal latency distribution
_Z95 = 1.6449
# CPU replicas are this much slower than a GPU replica for the same request.
CPU_SLOWDOWN = 5.0


def diurnal(now: datetime, utc_offset_hours: float) -> float:
    """Short-video traffic peaks in the local evening (21:00) and bottoms out in the morning."""
    hour = (now.hour + now.minute / 60 + now.second / 3600 + utc_offset_hours) % 24
    return 1.0 + 0.45 * math.cos(2 * math.pi * (hour - 21) / 24)


def event_factor(now: datetime, start: datetime, end: datetime, multiplier: float, ramp_s: float = 600) -> float:
    """The event's multiplier inside its window, ramping up and down over `ramp_s` at the edges."""
    if now < start or now >= end:
        return 1.0
    edge = min((now - start).total_seconds(), (end - now).total_seconds())
    return 1.0 + (multiplier - 1.0) * min(1.0, edge / ramp_s)


def route(demand: dict[str, float], weights: dict[str, float], default: dict[str, float]) -> dict[str, float]:
    """Move demand between regions by traffic weight, keeping each region's own daily shape.

    With the default weights every region keeps its own demand; lowering a region's weight moves the
    difference to the others in proportion to their weight; the total is conserved while any region
    has weight.
    """
    scaled = {r: demand[r] * (weights.get(r, 0.0) / default[r] if default.get(r) else 0.0) for r in demand}
    total_scaled = sum(scaled.values())
    if total_scaled <= 0:
        return dict.fromkeys(demand, 0.0)
    k = sum(demand.values()) / total_scaled
    return {r: v * k for r, v in scaled.items()}


@dataclass(frozen=True)
class Served:
    demand_rps: float
    served_rps: float
    error_rps: float
    utilisation: float  # 0..1 of the GPUs (or CPUs) that serve it
    p95_s: float
    mean_s: float


def serve(demand_rps: float, capacity_rps: float, base_latency_s: float) -> Served:
    """Queueing-style latency: flat while busy is low, steep near saturation, overload errors beyond it."""
    if capacity_rps <= 0:
        return Served(demand_rps, 0.0, demand_rps, 0.0, 0.0, 0.0)
    served = min(demand_rps, capacity_rps)
    rho = served / capacity_rps
    p95 = base_latency_s * (1 + 2.0 * rho**4)
    if demand_rps > capacity_rps:
        p95 = min(60.0, base_latency_s * 3 * demand_rps / capacity_rps)
    mean = p95 / math.exp(_Z95 * _SIGMA) * math.exp(_SIGMA**2 / 2)
    return Served(demand_rps, served, demand_rps - served, rho, p95, mean)


def bucket_fractions(p95_s: float) -> list[float]:
    """Cumulative share of requests at or under each bucket bound, for a log-normal with this p95."""
    if p95_s <= 0:
        return [1.0] * len(LATENCY_BUCKETS)
    median = p95_s / math.exp(_Z95 * _SIGMA)
    return [0.5 * (1 + math.erf(math.log(le / median) / (_SIGMA * math.sqrt(2)))) for le in LATENCY_BUCKETS]
