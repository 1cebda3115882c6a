"""What every top-level view shares: a title line, a `KeyedTable`, and the frame it is drawn in."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Static

from console.fleet.history import History
from console.fleet.snapshot import FleetSnapshot
from console.tui.table import Column, KeyedTable


@dataclass(frozen=True)
class Frame:
    """The context a view is drawn in, besides the snapshot."""

    regions: frozenset[str] | None  # the current context's regions; None: all
    compact: bool
    now: datetime
    history: History

    def in_scope(self, region: str) -> bool:
        return self.regions is None or not region or region in self.regions


class View(Vertical):
    """A titled table. Subclasses fill `COLUMNS` and define `rows` (or draw themselves in `update_view`)."""

    NAME = ""
    TITLE = ""
    COLUMNS: tuple[Column, ...] = ()
    rows: Callable[[FleetSnapshot, Frame], list[tuple[str, dict[str, object]]]]

    def __init__(self) -> None:
        super().__init__(id=f"view-{self.NAME}")

    def compose(self) -> ComposeResult:
        yield Static(self.TITLE, classes="view-title")
        yield KeyedTable(self.COLUMNS, id=f"table-{self.NAME}")

    @property
    def table(self) -> KeyedTable:
        return self.query_one(KeyedTable)

    def set_title(self, text: str | Text) -> None:
        self.query_one(".view-title", Static).update(text)

    def update_view(self, snap: FleetSnapshot, frame: Frame) -> None:
        self.table.set_compact(frame.compact)
        self.table.show(self.rows(snap, frame))


@dataclass
class Computed(Message):
    """A `ComputedView`'s result from its worker (None, with the error, when it failed)."""

    view: str
    result: Any
    error: str = ""


class ComputedView(View):
    """A view whose data takes seconds to compute (forecasts, a month of cost history): computed in a worker
    when first shown and on Ctrl+R there, then kept with its time, not recomputed on every refresh."""

    EVERY_S: float | None = None  # computed again this often while shown (None: only on Ctrl+R)
    # (backend, the console's last snapshot) -> the result; runs in a worker thread.
    compute: Callable[[Any, FleetSnapshot | None], Any]

    def __init__(self) -> None:
        super().__init__()
        self.result: Any = None
        self.computed_at: datetime | None = None  # the console's clock when the result came
        self.error = ""
        self.busy = False

    def due(self, now: datetime) -> bool:
        """Whether a result this old is computed again (views with `EVERY_S`)."""
        if self.EVERY_S is None or self.computed_at is None:
            return False
        return (now - self.computed_at).total_seconds() >= self.EVERY_S
