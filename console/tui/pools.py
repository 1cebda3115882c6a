"""The pools table: one row per pool and region, updated cell by cell so the cursor stays put."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import DataTable

from console.fleet.snapshot import FleetSnapshot, PoolRow
from console.tui.format import load, num

COLUMNS = (
    ("pool", "Pool"),
    ("region", "Region"),
    ("model", "GPU"),
    ("nodes", "Nodes"),
    ("total", "GPUs"),
    ("alloc", "Alloc"),
    ("idle", "Idle"),
    ("util", "Util%"),
    ("mem", "Mem%"),
    ("power", "Power W"),
)


def cells(p: PoolRow) -> dict[str, object]:
    mem = 100 * p.fb_used_mib / p.fb_total_mib if p.fb_total_mib else 0.0
    return {
        "pool": p.pool,
        "region": p.region,
        "model": p.model,
        "nodes": f"{p.nodes_ready}/{p.nodes}",
        "total": num(p.gpus_total),
        "alloc": num(p.gpus_allocated),
        "idle": Text(f"{p.gpus_idle:g}", style="yellow" if p.gpus_idle else "", justify="right"),
        "util": load(p.util),
        "mem": load(mem),
        "power": num(round(p.power_w)),
    }


class PoolsTable(DataTable):
    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.zebra_stripes = True
        for key, label in COLUMNS:
            self.add_column(label, key=key)

    def show(self, snap: FleetSnapshot) -> None:
        """Keyed diff: add new rows, update changed cells, remove vanished rows; never clear."""
        seen = set()
        for p in snap.pools:
            seen.add(p.key)
            values = cells(p)
            if p.key not in self.rows:
                self.add_row(*values.values(), key=p.key)
                continue
            for col, v in values.items():
                if str(self.get_cell(p.key, col)) != str(v):
                    self.update_cell(p.key, col, v)
        for key in [k.value for k in self.rows if k.value not in seen]:
            self.remove_row(key)
