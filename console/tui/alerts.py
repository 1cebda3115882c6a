"""The alerts view: firing alerts from Alertmanager grouped by severity and team, with summary, age, the chat
`gpuops relay` last told and when, and runbook; `s` silences the selected one (see `dialogs.SilenceDialog`)."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from rich.text import Text
from textual import work

from console.fleet.snapshot import SEVERITY_ORDER, AlertRow, FleetSnapshot
from console.tui.format import SEVERITY_STYLE, since
from console.tui.messages import ActionDone
from console.tui.table import CLUSTER_COLUMN, Column
from console.tui.view import Frame, View, ViewKey

if TYPE_CHECKING:
    from console.tui.backend import Backend
    from console.tui.dialogs import SilenceRequest

COLUMNS = (
    CLUSTER_COLUMN,
    Column("severity", "Severity"),
    Column("team", "Team"),
    Column("alert", "Alert"),
    Column("state", "State"),
    Column("age", "Age", numeric=True),
    Column("summary", "Summary"),
    Column("notified", "Notified", compact=False),
    Column("runbook", "Runbook", compact=False),
)


def alert_cells(a: AlertRow, frame: Frame) -> dict[str, object]:
    where = ", ".join(v for k in ("service", "region", "node") if (v := a.label(k)))
    state = "heartbeat" if a.heartbeat else "firing" if a.firing else "silenced" if a.silenced_by else a.state
    return {
        "cluster": a.cluster or "—",
        "severity": Text(a.severity, style=SEVERITY_STYLE.get(a.severity, "")),
        "team": a.team or "—",
        "alert": a.name + (f" ({where})" if where else ""),
        "state": Text(state, style="bold" if a.firing else "dim"),
        "age": since(frame.now, a.starts_at),
        "summary": a.summary,
        "notified": f"{a.notified_to} {since(frame.now, a.notified_at)} ago" if a.notified_at else "—",
        "runbook": a.runbook.rsplit("/", 1)[-1] if a.runbook else "—",
    }


def summary(alerts: list[AlertRow]) -> str:
    firing = [a for a in alerts if a.firing]
    sev = Counter(a.severity for a in firing)
    teams = Counter(a.team or "—" for a in firing)
    by_sev = " · ".join(f"{sev[s]} {s}" for s in (*SEVERITY_ORDER, *sorted(set(sev) - set(SEVERITY_ORDER))) if sev[s])
    by_team = " · ".join(f"{t} {n}" for t, n in sorted(teams.items()))
    silenced = sum(1 for a in alerts if not a.firing and not a.heartbeat)
    return (
        f"Alerts — {by_sev or 'none firing'}"
        + (f" | {by_team}" if by_team else "")
        + (f" | {silenced} silenced" if silenced else "")
    )


class AlertsView(View):
    NAME = "alerts"
    TITLE = "Alerts"
    COLUMNS = COLUMNS
    KEYS = (ViewKey("s", "silence", "Silence", mutating=True), ViewKey("r", "runbook", "Runbook"))

    def rows(self, snap: FleetSnapshot, frame: Frame) -> list[tuple[str, dict[str, object]]]:
        rows = [a for a in snap.alerts if frame.in_scope(a.label("region")) and frame.in_cluster(a.cluster)]
        self.set_title(summary(rows) + "  · s: silence")
        return [(a.key, alert_cells(a, frame)) for a in rows]

    def selected(self, snap: FleetSnapshot | None) -> AlertRow | None:
        key = self.table.selected_key
        if snap is None or key is None:
            return None
        return next((a for a in snap.alerts if a.key == key), None)

    def action_runbook(self) -> None:
        """`r`: the alert's runbook, its parameters filled from the alert's labels."""
        from console.tui.runbooks import runbook_for_alert

        alert = self.selected(self.console.snapshot)
        name = runbook_for_alert(alert.runbook) if alert and alert.runbook else ""
        try:
            known = name in self.console.backend.runbooks()
        except Exception as e:
            self.notify(f"runbooks: {e}", severity="error")
            return
        if alert is None or not known:
            self.notify("no runbook for the selected alert", severity="warning")
            return
        self.console.open_runbook(name, dict(alert.labels))

    def action_silence(self) -> None:
        from console.tui.dialogs import SilenceDialog

        if self.console.readonly:  # the key is greyed out too; this guards other ways in
            self.notify("read-only: silencing refused", severity="warning")
            return
        alert = self.selected(self.console.snapshot)
        if alert is None:
            self.notify("no alert selected", severity="warning")
            return
        self.app.push_screen(SilenceDialog(alert, self.console.operator), self._silence_chosen)

    def _silence_chosen(self, request: SilenceRequest | None) -> None:
        if request is not None:
            self._silence(request, self.console.backend)

    @work(thread=True, group="actions")
    def _silence(self, req: SilenceRequest, backend: Backend) -> None:
        try:
            sid = backend.silence(req.matchers, req.duration, req.created_by, req.comment, req.alertmanager)
        except Exception as e:
            self.post_message(ActionDone(f"silence failed: {type(e).__name__}: {e}", error=True))
            return
        self.post_message(ActionDone(f"silenced {req.matchers.get('alertname', '')} for {req.duration} (id {sid})"))
