"""The Queues view: one row per Kueue ClusterQueue with its pending and admitted workloads, the GPUs it holds
against its quota, what it borrows from its cohort, its oldest wait and whether it admits; Enter opens its
workloads, Escape goes back. `h` opens the hold-batch runbook."""

from __future__ import annotations

from rich.text import Text
from textual.binding import Binding

from console.fleet.snapshot import FleetSnapshot, QueueRow, WorkloadRow
from console.timefmt import age
from console.tui.format import bar, num, ratio_style, used_of
from console.tui.table import CLUSTER_COLUMN, Column, KeyedTable
from console.tui.view import Frame, View, ViewKey

QUEUE_COLUMNS = (
    CLUSTER_COLUMN,
    Column("queue", "ClusterQueue"),
    Column("cohort", "Cohort", compact=False),
    Column("state", "Admits"),
    Column("pending", "Pending", numeric=True),
    Column("admitted", "Admitted", numeric=True),
    Column("gpus", "GPUs used/quota", numeric=True),
    Column("bar", "Use", numeric=True),
    Column("borrowed", "Borrowed", numeric=True),
    Column("oldest", "Oldest wait", numeric=True),
    Column("flavors", "Flavors used/quota", compact=False),
)
WORKLOAD_COLUMNS = (
    Column("workload", "Workload"),
    Column("namespace", "Namespace"),
    Column("queue", "LocalQueue", compact=False),
    Column("state", "State"),
    Column("flavor", "Flavor"),
    Column("gpus", "GPUs", numeric=True),
    Column("age", "Age", numeric=True),
)
STATE_STYLE = {"admitted": "green", "pending": "yellow", "evicted": "bold red", "finished": "dim"}


def admits(stop_policy: str) -> Text:
    """`yes`, or the stop policy that holds it (in the warning colour: nothing new starts)."""
    return Text("yes", style="green") if not stop_policy else Text(stop_policy, style="bold yellow")


def queue_cells(q: QueueRow, compact: bool) -> dict[str, object]:
    ratio = q.gpus_used / q.gpus_nominal if q.gpus_nominal else 0.0
    return {
        "cluster": q.cluster,
        "queue": Text(q.cluster_queue, style=ratio_style(ratio)),
        "cohort": q.cohort or "—",
        "state": admits(q.stop_policy),
        "pending": num(q.pending),
        "admitted": num(q.admitted),
        "gpus": used_of(q.gpus_used, q.gpus_nominal),
        "bar": bar(ratio, 6 if compact else 10),
        "borrowed": num(q.gpus_borrowed),
        "oldest": Text(age(q.oldest_pending_s) if q.oldest_pending_s is not None else "—", justify="right"),
        "flavors": " ".join(f"{f} {u:g}/{n:g}" for f, u, n in q.flavors),
    }


def workload_cells(w: WorkloadRow) -> dict[str, object]:
    return {
        "workload": w.name,
        "namespace": w.namespace,
        "queue": w.queue,
        "state": Text(w.state, style=STATE_STYLE.get(w.state, "")),
        "flavor": w.flavor or "—",
        "gpus": num(w.gpus),
        "age": Text(age(w.age_s), justify="right"),
    }


class QueuesView(View):
    NAME = "queues"
    TITLE = "Queues"
    COLUMNS = QUEUE_COLUMNS
    KEYS = (ViewKey("h", "hold", "Hold batch", mutating=True),)
    BINDINGS = [Binding("escape,backspace", "up", "Back", show=False)]

    def __init__(self) -> None:
        super().__init__()
        self.queue: str | None = None  # the ClusterQueue opened
        self._last: tuple[FleetSnapshot, Frame] | None = None

    def update_view(self, snap: FleetSnapshot, frame: Frame) -> None:
        self._last = (snap, frame)
        self.table.set_compact(frame.compact, frame.by_cluster)
        if self.queue:
            mine = [w for w in snap.workloads if w.queue_key == self.queue]
            waiting = sum(1 for w in mine if w.state in ("pending", "evicted"))
            self.set_title(f"Queues > {self.queue} — {len(mine)} workloads, {waiting} waiting · Esc: back")
            self.table.show([(w.key, workload_cells(w)) for w in mine])
            return
        queues = [q for q in snap.queues if frame.in_cluster(q.cluster)]
        if not queues:
            self.set_title("Queues — the catalog has no batch queues (queues:)")
        else:
            held = sum(1 for q in queues if q.stop_policy)
            gpus = sum(q.gpus_used for q in queues)
            self.set_title(
                f"Queues — {len(queues)} cluster queues, {held} held, {gpus:g} GPUs admitted to batch"
                " · Enter: workloads, h: hold batch"
            )
        self.table.show([(q.key, queue_cells(q, frame.compact)) for q in queues])

    def on_data_table_row_selected(self, event: KeyedTable.RowSelected) -> None:
        if event.data_table is not self.table:
            return
        event.stop()
        if self.queue is None:
            self._go(str(event.row_key.value))

    def action_up(self) -> None:
        if self.queue:
            self._go(None)

    def action_hold(self) -> None:
        """`h`: the hold-batch runbook's plan (every queue marked hold_for_events), to confirm or cancel."""
        self.console.open_runbook("hold-batch", {})

    def _go(self, queue: str | None) -> None:
        came_from = self.queue
        self.queue = queue
        self.table.filter_text = ""
        self.table.set_columns(WORKLOAD_COLUMNS if queue else QUEUE_COLUMNS)
        if self._last:
            self.update_view(*self._last)
        if came_from and came_from in self.table.rows:
            self.table.move_cursor(row=self.table.get_row_index(came_from), animate=False)
        self.table.focus()
