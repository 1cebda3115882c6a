"""The Readiness view: the next event's countdown and verdict, a row per service x region with its forecast
peak and gap, the checklist and the runbook plans that close the gaps. Enter on a row opens its plan.

Readiness reads fourteen days of history and the checklist's sources (seconds), so it runs in a worker
when the view is first shown and again on Ctrl+R there; the result is kept, not recomputed on every refresh.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.markup import escape
from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import DataTable, Static

from console.fleet.snapshot import FleetSnapshot
from console.readiness.render import cover, uplift, uplift_summary
from console.tui.table import Column
from console.tui.view import ComputedView, Frame

if TYPE_CHECKING:
    from console.readiness.assess import Readiness
    from console.tui.backend import Backend

VERDICT_STYLE = {"READY": "green", "AT RISK": "yellow", "NOT READY": "bold red", "NO DATA": "magenta"}


class ReadinessView(ComputedView):
    NAME = "readiness"
    TITLE = "Readiness"
    COLUMNS = (
        Column("service", "Service"),
        Column("region", "Region"),
        Column("verdict", "Verdict"),
        Column("peak", "P95 peak", numeric=True),
        Column("cover", "Cover", numeric=True, compact=False),
        Column("method", "Method", compact=False),
        Column("uplift", "Uplift", numeric=True, compact=False),
        Column("ready", "Ready", numeric=True),
        Column("required", "Required", numeric=True),
        Column("gap", "Gap repl/GPUs", numeric=True),
    )

    def compute(self, backend: Backend, snapshot: FleetSnapshot | None) -> Readiness:
        # The console's last snapshot: its replicas, pools and quotas are what readiness sizes against.
        return backend.readiness(None, snapshot)

    def compose(self) -> ComposeResult:
        yield from super().compose()
        yield Static("", id="readiness-detail")

    def rows(self, snap: FleetSnapshot, frame: Frame) -> list[tuple[str, dict[str, object]]]:
        from console.readiness.render import when
        from console.timefmt import age

        r = self.result
        detail = self.query_one("#readiness-detail", Static)
        if r is None:
            state = "forecasting …" if self.busy else (f"[red]{escape(self.error)}[/red]" if self.error else "")
            self.set_title(f"Readiness — {state}")
            detail.update("")
            return []
        verdict = Text(r.verdict, style=VERDICT_STYLE.get(r.verdict, "bold"))
        # The result is kept, not redone each refresh: say how old it is (replicas may have moved since).
        took = age((frame.now - self.computed_at).total_seconds()) if self.computed_at else "?"
        if frame.compact:  # 80 columns: what fits
            state = "forecasting …" if self.busy else f"{took} old"
            self.set_title(Text.assemble(f"{r.event.name} ", verdict, f" · {when(r)} · {state}"))
        else:
            state = "forecasting again …" if self.busy else f"as of {took} ago, ^r again"
            self.set_title(
                Text.assemble(
                    f"Readiness — {r.event.name} ", verdict, f" · {when(r)} · x{r.event.multiplier:g} · {state}"
                )
            )
        detail.update(self._detail(r))
        out: list[tuple[str, dict[str, object]]] = []
        for x in r.rows:
            s, d = x.sizing, x.demand
            cells: dict[str, object] = {
                "service": x.service,
                "region": x.region,
                "verdict": Text(str(x.verdict), style=VERDICT_STYLE.get(str(x.verdict), "")),
            }
            if s is not None and d is not None:
                cells |= {
                    "peak": f"{d.peak_rps:.1f}",
                    "cover": cover(d),
                    "method": d.method,
                    "uplift": uplift(d),
                    "ready": str(s.current_replicas),
                    "required": str(s.required_replicas),
                    "gap": f"{s.gap_replicas}/{s.gap_gpus:g}" if s.gap_replicas else "",
                }
            out.append((f"{x.service}/{x.region}", cells))
        return out

    @staticmethod
    def _detail(r: Any) -> str:
        lines = [escape(n) for n in r.notes]
        if learned := uplift_summary(r):
            lines.append(escape(learned))
        # What the forecasts rest on, once, when it is thin (minutes of history: the last value, no model).
        thin = sorted({x.demand.note for x in r.rows if x.demand and x.demand.note})
        if thin:
            lines.append(f"[yellow]forecast:[/yellow] {escape(thin[0])}" + (f" (+{len(thin) - 1})" if thin[1:] else ""))
        failed = r.failed_items()
        lines.append(f"[b]Checklist[/b] {len(r.checklist) - len(failed)}/{len(r.checklist)} ok")
        lines += [f"  [red]✗[/red] {escape(i.name)}: {escape(i.reason)}" for i in failed[:6]]
        if r.actions:
            lines.append("[b]Actions[/b] (Enter on a row opens its plan)")
            lines += [f"  {escape(a.command())}" for a in r.actions[:6]]
        return "\n".join(lines)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        """Enter on a row: the plan that closes its gap."""
        event.stop()
        action = self.action_for(event.row_key.value or "")
        if action is None:
            self.notify("nothing to do for this row", severity="information")
            return
        self.console.open_runbook(action.runbook, action.params)

    def action_for(self, key: str) -> Any:
        """The first plan for the selected row (pre-scale before a planned degrade); hold-batch first for a row
        whose gap needs the GPUs batch holds."""
        if self.result is None:
            return None
        service, _, region = key.partition("/")
        row = next((x for x in self.result.rows if (x.service, x.region) == (service, region)), None)
        hold = next((a for a in self.result.actions if a.runbook == "hold-batch"), None)
        if row is not None and row.batch_gpus and hold is not None:
            return hold
        return next(
            (a for a in self.result.actions if a.params.get("service") == service and a.params.get("region") == region),
            None,
        )
