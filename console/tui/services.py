"""The services view: per service and region, replicas, traffic, latency against its SLO, GPU busy,
mode (normal, degraded to rules, CPU fallback) and traffic weight."""

from __future__ import annotations

from rich.text import Text

from console.fleet.snapshot import FleetSnapshot, ServiceRow
from console.tui.format import load
from console.tui.table import CLUSTER_COLUMN, Column
from console.tui.view import Frame, View, ViewKey

COLUMNS = (
    CLUSTER_COLUMN,
    Column("service", "Service"),
    Column("region", "Region"),
    Column("replicas", "Ready/Want", numeric=True),
    Column("rps", "Req/s", numeric=True),
    Column("p95", "p95 ms / SLO", numeric=True),
    Column("errors", "Err%", compact=False, numeric=True),
    Column("gpu", "GPU%", numeric=True),
    Column("mode", "Mode"),
    Column("weight", "Weight", numeric=True),
)
MODE_STYLE = {"normal": "green", "rules": "yellow", "cpu": "yellow", "unknown": "dim"}


def service_cells(s: ServiceRow) -> dict[str, object]:
    short = s.replicas_available < s.replicas_desired
    floor = f" ≥{s.hpa_min}" if s.hpa_min is not None else ""
    if s.p95_ms is None:
        p95 = Text(f"— / {s.slo_ms:g}", style="dim", justify="right")
    else:
        p95 = Text(f"{s.p95_ms:.0f} / {s.slo_ms:g}", style="bold red" if s.p95_ms > s.slo_ms else "", justify="right")
    mode = {"rules": "degraded (rules)", "cpu": "CPU fallback"}.get(s.mode, s.mode)
    return {
        "cluster": s.cluster,
        "service": s.service,
        "region": s.region,
        "replicas": Text(
            f"{s.replicas_available}/{s.replicas_desired}{floor}", style="yellow" * short, justify="right"
        ),
        "rps": Text(f"{s.rps:.1f}", justify="right"),
        "p95": p95,
        "errors": Text(f"{100 * s.error_ratio:.1f}", style="bold red" * (s.error_ratio >= 0.01), justify="right"),
        "gpu": load(s.gpu_util),
        "mode": Text(mode, style=MODE_STYLE.get(s.mode, "")),
        "weight": Text(f"{s.weight:g}", justify="right"),
    }


class ServicesView(View):
    NAME = "services"
    KEYS = (ViewKey("r", "runbook", "Runbook"),)
    TITLE = "Services"
    COLUMNS = COLUMNS

    def rows(self, snap: FleetSnapshot, frame: Frame) -> list[tuple[str, dict[str, object]]]:
        rows = [s for s in snap.services if frame.in_scope(s.region) and frame.in_cluster(s.cluster)]
        degraded = sum(1 for s in rows if s.mode not in ("normal", "unknown"))
        breach = sum(1 for s in rows if s.p95_ms is not None and s.p95_ms > s.slo_ms)
        self.set_title(f"Services — {len(rows)} service·regions, {degraded} degraded, {breach} over their latency SLO")
        return [(s.key, service_cells(s)) for s in rows]

    def action_runbook(self) -> None:
        """`r`: choose a runbook that takes a service, filled with the selected service and region."""
        from console.tui.runbooks import RunbookChooser

        key = self.table.selected_key
        if key is None:
            self.notify("no service selected", severity="warning")
            return
        try:
            rbs = self.console.backend.runbooks()
        except Exception as e:
            self.notify(f"runbooks: {e}", severity="error")
            return
        service, _, region = key.partition("/")
        names = [(n, rb.title) for n, rb in sorted(rbs.items()) if any(p.type == "service" for p in rb.parameters)]

        def chosen(name: str | None) -> None:
            if name:
                self.console.open_runbook(name, {"service": service, "region": region})

        self.app.push_screen(RunbookChooser(f"Runbook for [b]{service}[/b] in {region}", names), chosen)
