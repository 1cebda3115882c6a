"""What every top-level view shares: a title line, a `KeyedTable`, the frame it is drawn in, the keys it
binds (k9s's model: each view declares its own and marks the mutating ones) and the console it acts through.
The app routes a key to the view on screen; it knows no view's actions."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, cast

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Static

from console.fleet.history import History
from console.fleet.snapshot import FleetSnapshot
from console.tui.table import Column, KeyedTable

if TYPE_CHECKING:
    from console.tui.backend import Backend


@dataclass(frozen=True)
class ViewKey:
    """A key a view binds: the app shows it in the footer while the view is on screen and routes it there
    (to the view's `action_<action>`). A mutating key is greyed out, and refused, in read-only mode."""

    key: str
    action: str
    description: str
    mutating: bool = False


class Console(Protocol):
    """What a view may ask of the console app it sits in."""

    backend: Backend
    snapshot: FleetSnapshot | None
    operator: str

    @property
    def readonly(self) -> bool: ...

    def clock(self) -> datetime: ...

    def open_runbook(self, name: str, labels: dict[str, str]) -> None: ...

    def refresh_now(self) -> None: ...

    def redraw(self) -> None: ...


@dataclass(frozen=True)
class Frame:
    """The context a view is drawn in, besides the snapshot."""

    regions: frozenset[str] | None  # the current context's regions; None: all
    compact: bool
    now: datetime
    history: History
    by_cluster: bool = False  # the fleet is read cluster by cluster: rows say which
    cluster: str | None = None  # that one cluster in scope (`:ctx NAME`); None: all

    def in_scope(self, region: str) -> bool:
        return self.regions is None or not region or region in self.regions

    def in_cluster(self, cluster: str) -> bool:
        return self.cluster is None or not cluster or cluster == self.cluster


class View(Vertical):
    """A titled table. Subclasses fill `COLUMNS` and define `rows` (or draw themselves in `update_view`)."""

    NAME = ""
    TITLE = ""
    COLUMNS: tuple[Column, ...] = ()
    KEYS: ClassVar[tuple[ViewKey, ...]] = ()
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

    @property
    def console(self) -> Console:
        return cast(Console, self.app)

    def key_state(self, action: str, readonly: bool) -> bool | None:
        """For the footer and the key: False (not this view's: hidden), None (greyed out: read-only), True."""
        key = next((k for k in self.KEYS if k.action == action), None)
        if key is None:
            return False
        return None if key.mutating and readonly else True

    def update_view(self, snap: FleetSnapshot, frame: Frame) -> None:
        self.table.set_compact(frame.compact, frame.by_cluster)
        self.table.show(self.rows(snap, frame))

    # What the app tells the view on screen; most views draw from the snapshot alone and need none of it.
    def shown(self) -> None:
        """The view came on screen."""

    def refreshed(self, now: datetime) -> None:
        """A new snapshot arrived (before the redraw)."""

    def refresh_requested(self) -> None:
        """The operator asked for fresh data (Ctrl+R) while the view is on screen."""


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
    compute: Callable[[Backend, FleetSnapshot | None], Any]

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

    def shown(self) -> None:
        if self.result is None and not self.error:
            self.start_compute()

    def refreshed(self, now: datetime) -> None:
        if self.due(now):
            self.start_compute()

    def refresh_requested(self) -> None:
        self.start_compute()

    def start_compute(self) -> None:
        if self.busy:
            return
        self.busy = True
        console = self.console
        self._compute_worker(console.backend, console.snapshot)

    @work(thread=True, group="computed")
    def _compute_worker(self, backend: Backend, snapshot: FleetSnapshot | None) -> None:
        try:
            self.post_message(Computed(self.NAME, self.compute(backend, snapshot)))
        except Exception as e:  # a source or the catalog: said on the view, the console keeps running
            self.post_message(Computed(self.NAME, None, f"{type(e).__name__}: {e}"))

    def on_computed(self, message: Computed) -> None:
        message.stop()
        self.busy = False
        self.result, self.error = message.result or self.result, message.error
        if message.result is not None:
            self.computed_at = self.console.clock()
        if message.error:
            self.notify(f"{message.view}: {message.error}", severity="error")
        self.console.redraw()
