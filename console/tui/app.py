"""The console app: a header with context and data age, the pools view, and the refresh loop.

The loop follows dolphie: one refresh at a time in a worker thread, the next scheduled when the last
ends, skipped while a dialog is open; the worker posts a message and never touches widgets.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.widgets import Footer, Static

from console.fleet.snapshot import FleetSnapshot
from console.tui.format import age
from console.tui.messages import SnapshotReady
from console.tui.pools import PoolsTable


class GpuopsApp(App[None]):
    CSS_PATH = "styles.tcss"
    TITLE = "gpuops"
    BINDINGS = [Binding("q", "quit", "Quit"), Binding("r", "refresh_now", "Refresh")]

    def __init__(
        self, refresh: Callable[[], FleetSnapshot], context: str, interval: float = 2.0, readonly: bool = False
    ):
        super().__init__()
        self._fetch = refresh
        self.context = context
        self.interval = interval
        self.readonly = readonly
        self.snapshot: FleetSnapshot | None = None
        self._refreshing = False

    def compose(self) -> ComposeResult:
        yield Static(id="header")
        yield Static(id="banner")
        yield PoolsTable(id="pools")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#banner").display = False
        self._render_header()
        self.set_interval(1.0, self._render_header)
        self.refresh_snapshot()

    @work(thread=True, exclusive=True, group="refresh")
    def refresh_snapshot(self) -> None:
        self._refreshing = True
        try:
            snap = self._fetch()
        finally:
            self._refreshing = False
        self.post_message(SnapshotReady(snap))

    def on_snapshot_ready(self, message: SnapshotReady) -> None:
        self.snapshot = message.snapshot
        with self.batch_update():
            self.query_one(PoolsTable).show(message.snapshot)
            self._render_banner()
            self._render_header()
        self.set_timer(self.interval, self._scheduled_refresh)

    def _scheduled_refresh(self) -> None:
        if len(self.screen_stack) > 1:  # a dialog is open: try again later
            self.set_timer(self.interval, self._scheduled_refresh)
            return
        self.refresh_snapshot()

    def action_refresh_now(self) -> None:
        if not self._refreshing:
            self.refresh_snapshot()

    def _render_header(self) -> None:
        snap = self.snapshot
        data = "loading…" if snap is None else f"data {age((datetime.now(UTC) - snap.taken_at).total_seconds())} old"
        mode = "  [reverse] READ-ONLY [/]" if self.readonly else ""
        self.query_one("#header", Static).update(f"[b]gpuops[/b]  ctx [b]{self.context}[/b]  {data}{mode}")

    def _render_banner(self) -> None:
        banner = self.query_one("#banner", Static)
        failing = self.snapshot.failing() if self.snapshot else []
        banner.display = bool(failing)
        if failing:
            now = datetime.now(UTC)
            lines = []
            for s in failing:
                since = age((now - s.failing_since).total_seconds()) if s.failing_since else "?"
                shown = f"{age((now - s.last_success).total_seconds())} ago" if s.last_success else "never"
                lines.append(f"⚠ {s.name} failing for {since}: {s.error}  (showing data from {shown})")
            banner.update("\n".join(lines))
