"""Prices from the catalog: list price per GPU model and hour, each team's SLA tier multiplier and billing
mode, and idle GPUs optionally shared across the teams.

- list cost      GPU-hours x the model's hourly price (`prices.gpu_hourly`)
- effective cost what the team pays for them in the period:
    hourly           list x its tier's multiplier
    monthly_package  the package's price and included GPU-hours, prorated to the period, plus the hours
                     beyond them at list x tier; spread over its rows by their list cost
    per_job          each Job that ran costs `per_job_price` (spread over its pods by GPU-hours); pods
                     outside a Job are billed hourly
  Idle GPUs cost their list price: nobody's tier applies to them.
- billed cost    the effective cost: every charge here falls in the period it is used.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace

from console.catalog.model import Catalog
from console.cost.attribution import IDLE, Allocation


def list_price(catalog: Catalog, model: str) -> float:
    return catalog.prices.gpu_hourly.get(model, 0.0)


def hourly_rate(catalog: Catalog, rows: list[Allocation], team: str) -> float:
    """A team's GPUs held at the period's end, at list x tier, per hour: the run rate the budget alerts
    project (`gpuops:team:gpu_cost_per_hour:sum`)."""
    tier = catalog.prices.tier(catalog.team(team).sla_tier).multiplier
    return sum(r.gpus_now * list_price(catalog, r.model) for r in rows if r.team == team and not r.idle) * tier


def price(catalog: Catalog, rows: list[Allocation], period_h: float, month_h: float) -> list[Allocation]:
    """The rows with list, effective and billed costs; `__idle__` rows spread over the teams when the
    catalog shares idle (`prices.share_idle`). Totals do not depend on how the rows are grouped later."""
    listed = [replace(r, list_cost=r.gpu_hours * list_price(catalog, r.model)) for r in rows]
    by_team: dict[str, list[Allocation]] = defaultdict(list)
    for r in listed:
        by_team[r.team].append(r)
    out: list[Allocation] = []
    for team, team_rows in by_team.items():
        out += _team_cost(catalog, team, team_rows, period_h, month_h)
    return share_idle(out) if catalog.prices.share_idle else out


def _team_cost(
    catalog: Catalog, team: str, rows: list[Allocation], period_h: float, month_h: float
) -> list[Allocation]:
    if team == IDLE or team not in {t.name for t in catalog.teams}:
        return [replace(r, effective_cost=r.list_cost, billed_cost=r.list_cost) for r in rows]
    t = catalog.team(team)
    tier = catalog.prices.tier(t.sla_tier).multiplier
    mode = catalog.prices.billing_mode(t.billing)
    if mode.name == "monthly_package":
        share = period_h / month_h if month_h else 0.0
        hours = sum(r.gpu_hours for r in rows)
        listed = sum(r.list_cost for r in rows)
        over = max(0.0, hours - mode.included_gpu_hours * share)
        total = mode.package_price * share + (listed / hours * over * tier if hours else 0.0)
        return [_costed(r, total * r.list_cost / listed if listed else total / len(rows)) for r in rows]
    if mode.name == "per_job":
        job_hours: dict[str, float] = defaultdict(float)
        for r in rows:
            if r.job:
                job_hours[r.job] += r.gpu_hours
        return [
            _costed(r, mode.per_job_price * r.gpu_hours / job_hours[r.job] if r.job else r.list_cost * tier)
            for r in rows
        ]
    return [_costed(r, r.list_cost * tier) for r in rows]


def _costed(r: Allocation, cost: float) -> Allocation:
    return replace(r, effective_cost=cost, billed_cost=cost)


def share_idle(rows: list[Allocation]) -> list[Allocation]:
    """Each `__idle__` row split over the teams in proportion to their GPU-hours (rows named `__idle__`,
    the team's): OpenCost's shared idle. With no team usage, idle stays its own line."""
    used: dict[tuple[str, str], float] = defaultdict(float)
    for r in rows:
        if not r.idle:
            used[(r.team, r.namespace)] += r.gpu_hours
    total = sum(used.values())
    if not total:
        return rows
    out = [r for r in rows if not r.idle]
    for r in rows:
        if r.idle:
            for (team, ns), h in sorted(used.items()):
                f = h / total
                out.append(
                    replace(
                        r,
                        team=team,
                        namespace=ns,
                        gpu_hours=r.gpu_hours * f,
                        list_cost=r.list_cost * f,
                        effective_cost=r.effective_cost * f,
                        billed_cost=r.billed_cost * f,
                    )
                )
    return out
