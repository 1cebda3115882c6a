"""The Costs view: each team's month against its budget (spent, run rate, projected month end, the budget
alert if one fires), the month's GPU-hours and efficiency, and the largest savings found.

A month of cost history is a few range queries: computed in a worker when the view is shown, every
`EVERY_S` while it stays shown, and on Ctrl+R.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.markup import escape
from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import Static

from console.fleet.snapshot import FleetSnapshot
from console.tui.table import Column
from console.tui.view import ComputedView, Frame

if TYPE_CHECKING:
    from console.cost.gather import Month
    from console.tui.backend import Backend

STATE_STYLE = {"ok": "green", "warning": "yellow", "over": "bold red"}
BUDGET_ALERTS = ("TeamBudgetProjected100", "TeamBudgetProjected80")


def money(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:,.2f}"


class CostsView(ComputedView):
    NAME = "costs"
    TITLE = "Costs"
    EVERY_S = 30.0
    COLUMNS = (
        Column("team", "Team"),
        Column("budget", "Budget", numeric=True),
        Column("mtd", "Month to date", numeric=True),
        Column("rate", "Rate/h", numeric=True, compact=False),
        Column("projected", "Projected", numeric=True),
        Column("pct", "% budget", numeric=True),
        Column("gpu_hours", "GPU-h", numeric=True, compact=False),
        Column("eff", "Effic.", numeric=True, compact=False),
        Column("alert", "Alert"),
    )

    def compute(self, backend: Backend, snapshot: FleetSnapshot | None) -> Month:
        return backend.costs()

    def compose(self) -> ComposeResult:
        yield from super().compose()
        yield Static("", id="costs-detail")

    def rows(self, snap: FleetSnapshot, frame: Frame) -> list[tuple[str, dict[str, object]]]:
        from console.timefmt import age

        m = self.result
        detail = self.query_one("#costs-detail", Static)
        if m is None:
            state = "reading the month …" if self.busy else (f"[red]{escape(self.error)}[/red]" if self.error else "")
            self.set_title(f"Costs — {state}")
            detail.update("")
            return []
        took = age((frame.now - self.computed_at).total_seconds()) if self.computed_at else "?"
        rep = m.period.report
        state = "reading again …" if self.busy else f"{took} old"
        self.set_title(f"Costs — {m.now:%B %Y} to date, {rep.currency} · {state}")
        firing = {
            a.label("team"): a.name
            for name in reversed(BUDGET_ALERTS)  # the 100 % alert wins over the 80 % one
            for a in snap.alerts
            if a.firing and a.name == name
        }
        out: list[tuple[str, dict[str, object]]] = []
        for b in m.budgets:
            ln = m.teams.get(b.team)
            style = STATE_STYLE[b.state]
            out.append(
                (
                    b.team,
                    {
                        "team": b.team,
                        "budget": money(b.monthly),
                        "mtd": money(b.month_to_date),
                        "rate": money(b.rate_per_hour),
                        "projected": Text(money(b.projected), style=style),
                        "pct": Text(f"{100 * b.ratio:.1f}%", style=style),
                        "gpu_hours": f"{ln.gpu_hours:.1f}" if ln else "",
                        "eff": f"{100 * ln.efficiency:.0f}%" if ln and ln.efficiency is not None else "",
                        "alert": Text(firing.get(b.team, ""), style="bold red" if b.team in firing else ""),
                    },
                )
            )
        detail.update(self._detail(m, frame.compact))
        return out

    @staticmethod
    def _detail(m: Any, compact: bool) -> str:
        from console.cost.attribution import IDLE
        from console.cost.savings import MIN_HISTORY_H

        lines = []
        idle = m.teams.get(IDLE)
        if idle:
            lines.append(f"idle GPUs (allocatable, not requested): {idle.gpu_hours:.1f} GPU-h, {money(idle.list_cost)}")
        est = m.budgets[0].estimated_h if m.budgets else 0.0
        if est:
            lines.append(
                f"[yellow]history from {m.period.measured_from:%d %b %H:%M}[/yellow]: the {est:.0f} h before it"
                " counted at the run rate"
            )
        if m.measured_h < MIN_HISTORY_H:
            got = m.measured_h * 60
            lines.append(f"[b]Savings[/b] after {MIN_HISTORY_H * 60:.0f} min of history ({got:.0f} so far)")
        else:
            lines.append("[b]Savings[/b]" + ("" if m.savings else " none found"))
        for s in m.savings[:5]:
            worth = f"saves {money(s.monthly)}/month" if s.monthly else f"frees {s.gpus:.1f} GPUs"
            what = "" if compact else f": {escape(s.detail)}"  # 80 columns: what and where only
            lines.append(f"  {escape(s.kind)} {escape(s.target)}{what} — {worth}")
        return "\n".join(lines)
