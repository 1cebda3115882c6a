"""Each team's month: spend to date, the run rate, the projected month end, against its monthly budget.

Month to date is measured from the history Prometheus holds; any part of the month before that history
(a fresh Prometheus, a short retention) is counted at the current run rate, and the report says how much.
Projected month end = month to date + run rate x the hours left; with no history at all, the run rate x the
month. A monthly package's month end is its price plus the projected GPU-hours beyond those it includes, at
the run rate's price per GPU-hour. The budget alerts (`TeamBudgetProjected80/100`) project the same way from
Prometheus' own hourly samples of the team's cost rate.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from console.catalog.model import Catalog
from console.cost.attribution import Allocation
from console.cost.pricing import hourly_rate

WARNING = 0.8  # the mixin's budgetWarning: the first alert's share of the budget


def month_bounds(now: datetime) -> tuple[datetime, datetime]:
    start = datetime(now.year, now.month, 1, tzinfo=UTC)
    end = datetime(now.year + (now.month == 12), now.month % 12 + 1, 1, tzinfo=UTC)
    return start, end


@dataclass(frozen=True)
class Budget:
    team: str
    monthly: float
    month_to_date: float
    rate_per_hour: float
    projected: float
    estimated_h: float  # hours of the month so far counted at the run rate (before the history)

    @property
    def ratio(self) -> float:
        return self.projected / self.monthly

    @property
    def state(self) -> str:
        return "over" if self.ratio >= 1 else "warning" if self.ratio >= WARNING else "ok"


def budgets(catalog: Catalog, rows: list[Allocation], now: datetime, measured_from: datetime) -> list[Budget]:
    """`rows`: the month's allocations from `measured_from` (the history's start, or the month's) to `now`,
    priced. One budget per team of the catalog, in the catalog's order."""
    start, end = month_bounds(now)
    estimated_h = max(0.0, (measured_from - start).total_seconds() / 3600)
    left_h = max(0.0, (end - now).total_seconds() / 3600)
    out = []
    for t in catalog.teams:
        rate = hourly_rate(catalog, rows, t.name)
        spent = sum(r.effective_cost for r in rows if r.team == t.name) + rate * estimated_h
        projected = spent + rate * left_h
        mode = catalog.prices.billing_mode(t.billing)
        if mode.name == "monthly_package":
            projected = _package_month(
                t.name, rows, rate, estimated_h + left_h, mode.package_price, mode.included_gpu_hours
            )
        out.append(Budget(t.name, t.monthly_budget, spent, rate, projected, estimated_h))
    return out


def _package_month(
    team: str, rows: list[Allocation], rate: float, unmeasured_h: float, price: float, included_h: float
) -> float:
    """A package's month: its price, plus the projected GPU-hours beyond those it includes at the team's
    price per GPU-hour (list x tier), the hours not measured at the GPUs held now; what the budget alerts
    project (`gpuops:team:gpu_cost:projected`)."""
    mine = [r for r in rows if r.team == team and not r.idle]
    gpus_now = sum(r.gpus_now for r in mine)
    hours = sum(r.gpu_hours for r in mine) + gpus_now * unmeasured_h
    per_gpu_hour = rate / gpus_now if gpus_now else 0.0
    return price + max(0.0, hours - included_h) * per_gpu_hour
