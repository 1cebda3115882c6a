"""The quotas view: one row per namespace with its team; warning colour at 80 %, critical at 95 %."""

from __future__ import annotations

from rich.text import Text

from console.fleet.snapshot import FleetSnapshot, QuotaRow
from console.tui.format import bar, gib, ratio_style, used_of
from console.tui.table import CLUSTER_COLUMN, Column
from console.tui.view import Frame, View

COLUMNS = (
    CLUSTER_COLUMN,
    Column("namespace", "Namespace"),
    Column("team", "Team"),
    Column("gpu", "GPU used/hard", numeric=True),
    Column("bar", "Use", numeric=True),
    Column("cpu", "CPU used/hard", compact=False, numeric=True),
    Column("mem", "Mem GiB used/hard", compact=False, numeric=True),
)


def quota_cells(r: QuotaRow, compact: bool) -> dict[str, object]:
    worst = r.worst_ratio()
    style = ratio_style(worst)
    return {
        "cluster": r.cluster,
        "namespace": Text(r.namespace, style=style),
        "team": Text(r.team or "—", style=style),
        "gpu": used_of(r.gpu_used, r.gpu_hard),
        "bar": bar(worst, 6 if compact else 12),
        "cpu": used_of(round(r.cpu_used, 1), r.cpu_hard),
        "mem": used_of(gib(r.mem_used), gib(r.mem_hard) if r.mem_hard is not None else None),
    }


class QuotasView(View):
    NAME = "quotas"
    TITLE = "Quotas"
    COLUMNS = COLUMNS

    def rows(self, snap: FleetSnapshot, frame: Frame) -> list[tuple[str, dict[str, object]]]:
        quotas = [r for r in snap.quotas if frame.in_cluster(r.cluster)]
        over = sum(1 for r in quotas if r.worst_ratio() >= 0.8)
        self.set_title(f"Quotas — {len(quotas)} namespaces, {over} at or over 80 % · o: sort, click a header")
        return [(r.key, quota_cells(r, frame.compact)) for r in quotas]
