"""The pools view: one row per pool and region; Enter drills into its nodes, then a node's GPUs (and MIG
instances) with the pods on each; Escape goes back up."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Static

from console.fleet.snapshot import FleetSnapshot, GpuRow, NodeRow, PodRow, PoolRow
from console.tui.format import flag, load, num, sparkline
from console.tui.messages import PoolLevelChanged
from console.tui.table import CLUSTER_COLUMN, Column, KeyedTable
from console.tui.view import Frame, View

POOL_COLUMNS = (
    CLUSTER_COLUMN,
    Column("pool", "Pool"),
    Column("region", "Region"),
    Column("model", "GPU"),
    Column("nodes", "Nodes", compact=False, numeric=True),
    Column("total", "GPUs", numeric=True),
    Column("alloc", "Alloc", numeric=True),
    Column("idle", "Idle", numeric=True),
    Column("util", "Util%", numeric=True),
    Column("mem", "Mem%", numeric=True),
    Column("power", "Power W", compact=False, numeric=True),
    Column("io", "IO%", numeric=True),
    Column("trend", "Util trend"),
)
NODE_COLUMNS = (
    Column("node", "Node"),
    Column("state", "State"),
    Column("model", "GPU", compact=False),
    Column("total", "GPUs", numeric=True),
    Column("alloc", "Alloc", numeric=True),
    Column("idle", "Idle", numeric=True),
    Column("util", "Util%", numeric=True),
    Column("mem", "Mem%", numeric=True),
    Column("power", "Power W", compact=False, numeric=True),
    Column("temp", "Temp°C", compact=False, numeric=True),
    Column("xid", "XID", numeric=True),
    Column("io", "IO MB/s", compact=False, numeric=True),
    Column("disk", "Disk%", numeric=True),
)
GPU_COLUMNS = (
    Column("gpu", "GPU"),
    Column("mig", "MIG"),
    Column("pod", "Pod"),
    Column("namespace", "Namespace", compact=False),
    Column("util", "Util%", numeric=True),
    Column("mem", "Mem MiB", numeric=True),
    Column("power", "Power W", compact=False, numeric=True),
    Column("temp", "Temp°C", compact=False, numeric=True),
    Column("xid", "XID", numeric=True),
)
POD_COLUMNS = (
    Column("pod", "Pod"),
    Column("namespace", "Namespace"),
    Column("phase", "Phase"),
    Column("gpus", "GPU request"),
)


def _pct(used: float, total: float) -> float:
    return 100 * used / total if total else 0.0


def pool_cells(p: PoolRow, trend: list[float], compact: bool) -> dict[str, object]:
    return {
        "cluster": p.cluster,
        "pool": p.pool,
        "region": p.region,
        "model": p.model,
        "nodes": f"{p.nodes_ready}/{p.nodes}",
        "total": num(p.gpus_total),
        "alloc": num(p.gpus_allocated),
        "idle": flag(p.gpus_idle, "yellow"),
        "util": load(p.util),
        "mem": load(_pct(p.fb_used_mib, p.fb_total_mib)),
        "power": num(round(p.power_w)),
        # Storage saturation, as StorageSaturated reads it: the busiest disk, or the traffic against its store's
        # ceiling, whichever is higher (the node view shows each).
        "io": load(100 * max(p.disk_busy, p.storage_ratio or 0.0)),
        "trend": sparkline(trend, 6 if compact else 12),
    }


def node_cells(n: NodeRow) -> dict[str, object]:
    state = "Ready" if n.ready else "NotReady"
    if n.unschedulable:
        state += ",Cordoned"
    return {
        "node": n.name,
        "state": Text(state, style="" if n.ready and not n.unschedulable else "bold red"),
        "model": n.model,
        "total": num(n.gpus_total),
        "alloc": num(n.gpus_allocated),
        "idle": flag(n.gpus_idle, "yellow"),
        "util": load(n.util),
        "mem": load(_pct(n.fb_used_mib, n.fb_total_mib)),
        "power": num(round(n.power_w)),
        "temp": num(n.temp_max_c),
        "xid": flag(n.xid, "bold red"),
        "io": num(round(n.io_bytes_s / 1e6)),
        "disk": load(100 * n.disk_busy),
    }


def gpu_cells(g: GpuRow) -> dict[str, object]:
    return {
        "gpu": str(g.index),
        "mig": f"{g.mig_profile} #{g.mig_id}" if g.mig_id else "—",
        "pod": g.pod or Text("(none)", style="dim"),
        "namespace": g.namespace,
        "util": load(g.util),
        "mem": num(round(g.fb_used_mib)).append(f"/{g.fb_used_mib + g.fb_free_mib:.0f}"),
        "power": num(round(g.power_w)),
        "temp": num(g.temp_c),
        "xid": flag(g.xid, "bold red"),
    }


def pod_cells(p: PodRow) -> dict[str, object]:
    return {"pod": p.name, "namespace": p.namespace, "phase": p.phase, "gpus": p.gpus or "—"}


class PoolsView(View):
    NAME = "pools"
    TITLE = "Pools"
    COLUMNS = POOL_COLUMNS
    BINDINGS = [Binding("escape,backspace", "up", "Back", show=False)]

    def __init__(self) -> None:
        super().__init__()
        self.pool: tuple[str, str] | None = None  # the pool and region opened
        self.node: str | None = None  # the node opened
        self._last: tuple[FleetSnapshot, Frame] | None = None

    def compose(self) -> ComposeResult:
        yield from super().compose()
        yield Static("Pods on this node", classes="view-title", id="pods-title")
        yield KeyedTable(POD_COLUMNS, id="table-pods")

    def on_mount(self) -> None:
        self._show_pods(False)

    @property
    def table(self) -> KeyedTable:
        return self.query_one("#table-pools", KeyedTable)

    def _show_pods(self, on: bool) -> None:
        self.query_one("#pods-title").display = on
        self.query_one("#table-pods").display = on

    def update_view(self, snap: FleetSnapshot, frame: Frame) -> None:
        self._last = (snap, frame)
        self.table.set_compact(frame.compact, frame.by_cluster)
        if self.node:
            self.set_title(f"Pools > {self.pool[0]}/{self.pool[1]} > {self.node}" if self.pool else self.node)
            detail = snap.detail if snap.detail and snap.detail.node == self.node else None
            self.table.show([(g.key, gpu_cells(g)) for g in detail.gpus] if detail else [])
            pods = self.query_one("#table-pods", KeyedTable)
            pods.set_compact(frame.compact)
            pods.show([(p.key, pod_cells(p)) for p in detail.pods] if detail else [])
        elif self.pool:
            pool, region = self.pool
            self.set_title(f"Pools > {pool}/{region} — Enter: GPUs of a node, Esc: back")
            self.table.show([(n.key, node_cells(n)) for n in snap.nodes if (n.pool, n.region) == (pool, region)])
        else:
            self.set_title("Pools — Enter: nodes of a pool")
            self.table.show(
                [
                    (p.key, pool_cells(p, frame.history.get(p.key), frame.compact))
                    for p in snap.pools
                    if frame.in_scope(p.region) and frame.in_cluster(p.cluster)
                ]
            )

    def on_data_table_row_selected(self, event: KeyedTable.RowSelected) -> None:
        if event.data_table is not self.table:
            return
        event.stop()
        key = str(event.row_key.value)
        if self.pool is None:
            pool, region = key.split("/", 1)
            self._go((pool, region), None, NODE_COLUMNS)
        elif self.node is None:
            self._go(self.pool, key, GPU_COLUMNS)

    def action_up(self) -> None:
        if self.node:
            self._go(self.pool, None, NODE_COLUMNS)
        elif self.pool:
            self._go(None, None, POOL_COLUMNS)

    def _go(self, pool: tuple[str, str] | None, node: str | None, columns: tuple[Column, ...]) -> None:
        came_from = self.node or (f"{self.pool[0]}/{self.pool[1]}" if self.pool and not pool else None)
        self.pool, self.node = pool, node
        self._show_pods(node is not None)
        self.table.filter_text = ""
        self.table.set_columns(columns)
        if self._last:
            self.update_view(*self._last)
        if came_from and came_from in self.table.rows:
            self.table.move_cursor(row=self.table.get_row_index(came_from), animate=False)
        self.post_message(PoolLevelChanged(pool, node))
        self.table.focus()
