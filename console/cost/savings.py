"""Savings recommendations from a period's allocations: GPUs held and idle, quotas far above use, services
that would fit a MIG slice, batch work at peak hours. Each says what to change and what it saves a month."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

from console.catalog.model import Catalog
from console.cost.attribution import Allocation

IDLE_EFFICIENCY = 0.05  # busy under 5 % of the time it held its GPUs (the idle alert's threshold)
QUOTA_USE = 0.5  # a quota whose peak use stays under half of it
MIG_MEMORY = 0.5  # a whole GPU whose memory peaks under half: a slice of half a GPU would hold it
# Less history than this says nothing about a month (a deployment warming up reads idle): no savings yet.
# The idle-GPU alert's `for` is as long.
MIN_HISTORY_H = 0.5


@dataclass(frozen=True)
class Saving:
    kind: str  # idle-gpus | quota | mig | off-peak
    team: str
    target: str  # namespace/workload
    detail: str
    monthly: float  # what it saves a month, in the catalog's currency (0: it frees capacity, not money)
    gpus: float  # GPUs it frees


def _workload(r: Allocation) -> str:
    return f"{r.namespace}/{r.service or r.job or r.pod}"


def recommend(
    catalog: Catalog,
    rows: list[Allocation],
    period_h: float,
    month_h: float,
    *,
    quotas: dict[str, float],
    namespace_peak: dict[str, float],
    memory_peak: dict[tuple[str, str], float],
    peak_gpu_hours: dict[tuple[str, str], float],
) -> list[Saving]:
    """Largest saving first. `quotas`: GPU quota per namespace; `namespace_peak`: the
    most GPUs each namespace held at once; `memory_peak`: (namespace, pod) -> the most of
    its GPU's memory it used; `peak_gpu_hours`: (namespace, pod) -> its GPU-hours in its region's peak hours."""
    if period_h < MIN_HISTORY_H:
        return []
    monthly = month_h / period_h
    out: list[Saving] = []
    groups: dict[str, list[Allocation]] = defaultdict(list)
    for r in rows:
        if not r.idle:
            groups[_workload(r)].append(r)
    for target, rs in sorted(groups.items()):
        idle = _idle(target, rs, period_h, monthly)
        if idle:  # released, it needs no smaller slice nor another hour
            out.append(idle)
            continue
        out += [s for s in (_mig(catalog, target, rs, period_h, monthly, memory_peak),
                            _off_peak(catalog, target, rs, period_h, peak_gpu_hours)) if s]  # fmt: skip
    out += _quotas(catalog, quotas, namespace_peak)
    return sorted(out, key=lambda s: (-s.monthly, -s.gpus, s.target))


def _idle(target: str, rs: list[Allocation], period_h: float, monthly: float) -> Saving | None:
    busy = [r for r in rs if r.busy_gpu_hours is not None]
    if not busy or sum(r.busy_gpu_hours or 0 for r in busy) >= IDLE_EFFICIENCY * sum(r.gpu_hours for r in busy):
        return None
    gpus = sum(r.gpu_hours for r in rs) / period_h
    return Saving(
        "idle-gpus", rs[0].team, target, f"holds {gpus:.1f} GPUs busy under {IDLE_EFFICIENCY:.0%}: release them",
        sum(r.effective_cost for r in rs) * monthly, gpus,
    )  # fmt: skip


def _mig(
    catalog: Catalog,
    target: str,
    rs: list[Allocation],
    period_h: float,
    monthly: float,
    memory_peak: dict[tuple[str, str], float],
) -> Saving | None:
    fits = [r for r in rs if (r.namespace, r.pod) in memory_peak and memory_peak[(r.namespace, r.pod)] < MIG_MEMORY]
    if not fits or len(fits) != len(rs) or not all(r.peak_gpus >= 1 for r in rs):
        return None
    worst = max(memory_peak[(r.namespace, r.pod)] for r in rs)
    profile = next((p.mig.profile for p in catalog.pools if p.mig and p.mig.instances_per_gpu >= 2), "")
    hint = f" (MIG {profile})" if profile else ""
    hours = sum(r.gpu_hours for r in rs)
    return Saving(
        "mig", rs[0].team, target, f"uses at most {worst:.0%} of its GPUs' memory: half a GPU each{hint}",
        sum(r.effective_cost for r in rs) * monthly / 2, hours / period_h / 2,
    )  # fmt: skip


def _off_peak(
    catalog: Catalog, target: str, rs: list[Allocation], period_h: float, peak_gpu_hours: dict[tuple[str, str], float]
) -> Saving | None:
    at_peak = sum(peak_gpu_hours.get((r.namespace, r.pod), 0.0) for r in rs)
    pools = _pools(catalog)
    batch = all(r.job or catalog.pool(r.pool).kind in ("batch", "training") for r in rs if r.pool in pools)
    if not (batch and at_peak > 0 and any(r.job for r in rs)):
        return None
    return Saving(
        "off-peak", rs[0].team, target,
        f"{at_peak:.1f} GPU-h ran in peak hours: run it off-peak, for serving to use them",
        0.0, at_peak / period_h,
    )  # fmt: skip


def _quotas(catalog: Catalog, quotas: dict[str, float], namespace_peak: dict[str, float]) -> list[Saving]:
    out = []
    for ns, hard in sorted(quotas.items()):
        used = namespace_peak.get(ns, 0.0)
        if hard > 0 and used < QUOTA_USE * hard:
            owner = catalog.team_of_namespace(ns)
            to = max(1, math.ceil(used * 1.25))
            out.append(
                Saving(
                    "quota", owner.name if owner else "", ns,
                    f"quota {hard:g} GPUs, peak use {used:.1f}: lower it to {to} for other teams", 0.0, hard - to,
                )
            )  # fmt: skip
    return out


def _pools(catalog: Catalog) -> set[str]:
    return {p.name for p in catalog.pools}
