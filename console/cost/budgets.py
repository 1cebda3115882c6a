"""Each team's month: spend to date, the run rate, the projected month end, against its monthly budget.

Month to date is measured from the history Prometheus holds; any part of the month before that history
(a fresh Prometheus, a short retention) is counted at the current run rate, and the report says how much.
Projected month end = month to date + run rate x the hours left. With no history at all that is the run rate
x the month. The budget alerts (`TeamBudgetProjected80/100`) project the same way from Prometheus' own
hourly samples of the team's cost rate.
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
        out.append(Budget(t.name, t.monthly_budget, spent, rate, spent + rate * left_h, estimated_h))
    return out
