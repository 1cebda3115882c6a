"""The console app: the frame (header, banner, views, command bar), the refresh loop and the keys.

The loop follows dolphie: one refresh at a time in a worker thread, the next scheduled when the last
ends, skipped while a dialog is open; the worker posts a message and never touches widgets.
"""

from __future__ import annotations

import contextlib
import getpass
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.css.query import NoMatches
from textual.events import Key, Resize
from textual.screen import ModalScreen
from textual.timer import Timer
from textual.widgets import ContentSwitcher, Footer, Input, Static

from console.fleet.history import History
from console.fleet.snapshot import FleetSnapshot
from console.tui.alerts import AlertsView
from console.tui.backend import Backend
from console.tui.commands import HELP, VIEWS, CommandError, parse
from console.tui.costs import CostsView
from console.tui.dialogs import HelpScreen
from console.tui.drills import DrillsView
from console.tui.format import since
from console.tui.header import header_markup
from console.tui.messages import ActionDone, PoolLevelChanged, SnapshotReady, TimelineRead
from console.tui.palette import ConsoleCommands
from console.tui.pools import PoolsView
from console.tui.queues import QueuesView
from console.tui.quotas import QuotasView
from console.tui.readiness import ReadinessView
from console.tui.runbooks import RunbookScreen, RunbooksView
from console.tui.services import ServicesView
from console.tui.view import Frame, View, ViewKey

if TYPE_CHECKING:
    from console.sources.twin import Timeline

COMPACT_WIDTH, COMPACT_HEIGHT = 100, 30
VIEWS_SHOWN = (
    PoolsView,
    QuotasView,
    ServicesView,
    AlertsView,
    RunbooksView,
    DrillsView,
    ReadinessView,
    CostsView,
    QueuesView,
)


def view_bindings(views: tuple[type[View], ...]) -> list[Binding]:
    """One app binding per key the views bind, routed to the view on screen (`GpuopsApp.action_view_key`);
    the mutating ones first, as k9s lists its dangerous keys."""
    keys: dict[str, ViewKey] = {}
    for view in views:
        for k in view.KEYS:
            keys.setdefault(k.key, k)
    ordered = sorted(keys.values(), key=lambda k: not k.mutating)
    return [Binding(k.key, f"view_key('{k.action}')", k.description) for k in ordered]


class CommandBar(Input):
    BINDINGS = [Binding("escape", "close", "Close", show=False)]

    def action_close(self) -> None:
        self.app.close_bar(cancel=True)  # type: ignore[attr-defined]


TIMELINE_EVERY_S = 30.0


class GpuopsApp(App[None]):
    CSS_PATH = "styles.tcss"
    TITLE = "gpuops"
    COMMANDS = App.COMMANDS | {ConsoleCommands}
    BINDINGS = [
        Binding("1", "view('pools')", "Pools"),
        Binding("2", "view('quotas')", "Quotas"),
        Binding("3", "view('services')", "Services"),
        Binding("4", "view('alerts')", "Alerts"),
        Binding("5", "view('runbooks')", "Runbooks"),
        Binding("6", "view('drills')", "Drills"),
        Binding("7", "view('readiness')", "Readiness"),
        Binding("8", "view('costs')", "Costs"),
        Binding("9", "view('queues')", "Queues"),
        Binding("x", "stop_drill", "Stop drill", show=False),
        # Priority: handled by the app before the next key is routed, so what follows `:` reaches the bar.
        Binding("colon", "command_bar", ":cmd", key_display=":", priority=True),
        Binding("slash", "filter_bar", "Filter", key_display="/", priority=True),
        Binding("o", "sort", "Sort"),
        *view_bindings(VIEWS_SHOWN),
        Binding("ctrl+r", "refresh_now", "Refresh"),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("q", "quit", "Quit"),
    ]
    KEY_HELP = [
        ("1-9", "pools, quotas, services, alerts, runbooks, drills, readiness, costs, queues"),
        (":", "command bar (see Commands below)"),
        ("/", "filter the current table (Esc clears)"),
        ("Enter", "pools: nodes, then GPUs; queues: a queue's workloads"),
        ("Esc, Backspace", "back up one level"),
        ("o", "sort by the next column (or click a header)"),
        ("s", "alerts: silence the selected alert"),
        ("r", "services, alerts, runbooks: the selected row's runbook, filled in"),
        ("Enter / x", "drills: start the selected scenario / stop the running one"),
        ("Enter / ^r", "readiness: open the selected row's plan / forecast again"),
        ("^r", "costs: read the month's costs again"),
        ("^R ^P ? q", "refresh now, command palette, this help, quit"),
    ]

    def __init__(
        self,
        backend: Backend,
        *,
        interval: float = 2.0,
        readonly: bool = False,
        operator: str | None = None,
        clock: Callable[[], datetime] | None = None,
    ):
        super().__init__()
        self.backend = backend
        self.interval = interval
        self.readonly_flag = readonly
        self.operator = operator or getpass.getuser()
        self.clock = clock or (lambda: datetime.now(UTC))  # wall time: ages, refresh and recompute timing
        # The fleet's clock (the twin's simulated time on a twin) for the event countdown, as readiness and
        # costs read it; None until the refresh worker has read it, or with a clock given (tests fix both).
        self._timeline: Timeline | None = None
        self._timeline_due = 0.0 if clock is None else float("inf")
        # What the next refresh reads beside the fleet: the pool and node the pools view has open. Kept here
        # from its messages and handed to the worker, which never reads a widget.
        self._detail: tuple[tuple[str, str] | None, str | None] = (None, None)
        self.snapshot: FleetSnapshot | None = None
        self.history = History()
        self._trend_live = clock is None  # a fixed clock (tests) has no past to place the trend on
        self.refreshes = 0
        self._refreshing = False
        self._timer: Timer | None = None
        self._bar_mode = ""  # ":" or "/" while the bar is open
        self.compact = False

    # --- frame ------------------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Static(id="header")
        yield Static(id="banner")
        with ContentSwitcher(initial="view-pools", id="views"):
            for view in VIEWS_SHOWN:
                yield view()
        with Horizontal(id="bar"):
            yield Static(":", id="bar-prompt")
            yield CommandBar(id="bar-input")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#banner").display = False
        self.query_one("#bar").display = False
        self._apply_size(self.size.width, self.size.height)
        self._render_header()
        self.set_interval(1.0, self._tick_header)
        self.current_view.table.focus()
        self.refresh_snapshot()
        if self._trend_live:
            self._seed_trend()

    @work(thread=True, group="trend")
    def _seed_trend(self) -> None:
        """The hour before the console opened, for the trend bars: beside the first refresh, not in its way.
        Best effort: without it the bars fill from the refreshes."""
        with contextlib.suppress(Exception):
            self.call_from_thread(self._seeded, self.backend.pool_trend())

    def _seeded(self, past: dict[str, list[tuple[float, float]]]) -> None:
        self.history.seed(past)
        with contextlib.suppress(NoMatches):  # the app may be quitting
            self._redraw()

    @property
    def readonly(self) -> bool:
        cluster = self.backend.cluster()
        # `all` (the fleet read cluster by cluster): read-only if any of its clusters is.
        every = self.backend.catalog.read_clusters() if cluster is None else [cluster]
        return self.readonly_flag or any(c.readonly for c in every)

    @property
    def current_view(self) -> View:
        switcher = self.query_one("#views", ContentSwitcher)
        return self.query_one(f"#{switcher.current}", View)

    def frame(self) -> Frame:
        cluster = self.backend.cluster()
        regions = frozenset(cluster.regions) if cluster and cluster.regions else None
        by_cluster = bool(self.backend.catalog.read_clusters())
        one = cluster.name if by_cluster and cluster else None
        return Frame(regions, self.compact, self.clock(), self.history, by_cluster, one)

    def on_resize(self, event: Resize) -> None:
        self._apply_size(event.size.width, event.size.height)

    def _apply_size(self, width: int, height: int) -> None:
        compact = width < COMPACT_WIDTH or height < COMPACT_HEIGHT
        if compact != self.compact:
            self.compact = compact
            self.set_class(compact, "compact")
            self._redraw()

    def _render_header(self) -> None:
        cluster = self.backend.cluster()
        markup = header_markup(
            context=self.backend.context,
            regions=list(cluster.regions) if cluster else [],
            snap=self.snapshot,
            # No countdown before the fleet's clock is read: on a twin, wall time would count to the wrong day.
            events=list(self.backend.catalog.events) if self._clock_known() else [],
            now=self.clock(),
            fleet_now=self.fleet_now(),
            readonly=self.readonly,
            compact=self.compact,
        )
        self.query_one("#header", Static).update(markup)

    def _tick_header(self) -> None:
        """The 1 s countdown. It can fire while the app takes its screens down (quitting with a dialog
        open): then there is no header left to draw, which is not an error."""
        if self.query("#header"):
            self._render_header()

    def _render_banner(self) -> None:
        banner = self.query_one("#banner", Static)
        failing = self.snapshot.failing() if self.snapshot else []
        banner.display = bool(failing)
        if not failing:  # nothing of an ended failure left behind, hidden or not
            banner.update("")
        else:
            now = self.clock()
            lines = []
            for s in failing:
                for_ = since(now, s.failing_since) if s.failing_since else "?"
                shown = f"data from {since(now, s.last_success)} ago" if s.last_success else "no data yet"
                lines.append(f"⚠ {s.name} failing since {for_} ago: {s.error}  (showing {shown})")
            banner.update("\n".join(lines))

    def redraw(self) -> None:
        self._redraw()

    def refresh_now(self) -> None:
        self.action_refresh_now()

    def _redraw(self) -> None:
        if self.snapshot is None:
            return
        # Only the view on screen: the others catch up when shown (at 200 namespaces, this halves the work).
        with self.batch_update():
            self.current_view.update_view(self.snapshot, self.frame())
            self._render_banner()
            self._render_header()

    # --- refresh loop -------------------------------------------------------------------------------------

    def _clock_known(self) -> bool:
        """Whether the header may count down: the fleet's clock has been read, or none is to be (a fixed clock)."""
        return self._timeline is not None or self._timeline_due == float("inf")

    def fleet_now(self) -> datetime:
        now = self.clock()
        return self._timeline.sim_at(now.timestamp()) if self._timeline is not None else now

    def refresh_snapshot(self) -> None:
        self._refreshing = True
        # It changes only when someone sets the twin's speed or jumps it: read again every 30 s (and right
        # after a context switch), not on every refresh.
        self._refresh_worker(*self._detail, read_timeline=time.monotonic() >= self._timeline_due)

    @work(thread=True, exclusive=True, group="refresh")
    def _refresh_worker(self, pool: tuple[str, str] | None, node: str | None, read_timeline: bool) -> None:
        try:
            snap = self.backend.snapshot(pool, node)
            self.post_message(SnapshotReady(snap))
            if read_timeline:
                # After the rows are on their way: the first read of the fleet's clock loads the Kubernetes client,
                # which the first paint need not wait for (the header counts down once it is known).
                self.post_message(TimelineRead(self.backend.timeline()))
                self._timeline_due = time.monotonic() + TIMELINE_EVERY_S
        finally:
            self._refreshing = False

    def on_timeline_read(self, message: TimelineRead) -> None:
        self._timeline = message.timeline
        with contextlib.suppress(NoMatches):  # the app may be quitting
            self._render_header()

    def on_snapshot_ready(self, message: SnapshotReady) -> None:
        self.snapshot = message.snapshot
        self.refreshes += 1
        self.history.add(message.snapshot, self.clock().timestamp())
        try:
            self.current_view.refreshed(self.clock())
            self._redraw()
        except NoMatches:
            # The refresh landed while the app takes its screens down (quitting): nothing left to draw on.
            return
        self._schedule()

    def _schedule(self) -> None:
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_timer(self.interval, self._scheduled_refresh)

    def _scheduled_refresh(self) -> None:
        self._timer = None
        if not self.screen_stack:  # shutting down
            return
        if isinstance(self.screen, ModalScreen):  # a dialog is open: try again later
            self._schedule()
            return
        self.refresh_snapshot()

    def action_refresh_now(self) -> None:
        self.current_view.refresh_requested()
        if not self._refreshing:
            self.refresh_snapshot()

    def on_pool_level_changed(self, message: PoolLevelChanged) -> None:
        self._detail = (message.pool, message.node)
        self.action_refresh_now()  # the level below needs readings the last refresh did not ask for

    # --- views, commands, filter ----------------------------------------------------------------------

    def action_view(self, name: str) -> None:
        self.query_one("#views", ContentSwitcher).current = f"view-{name}"
        self.set_focus(self.current_view.table)
        self.refresh_bindings()
        self.current_view.shown()
        self._redraw()

    def action_sort(self) -> None:
        self.current_view.table.cycle_sort()

    def action_help(self) -> None:
        self.push_screen(HelpScreen(self.KEY_HELP, HELP))

    def action_command_bar(self) -> None:
        if not self._typed(":"):
            self._open_bar(":", "")

    def action_filter_bar(self) -> None:
        if not self._typed("/"):
            self._open_bar("/", self.current_view.table.filter_text)

    def _typed(self, char: str) -> bool:
        """A priority key pressed while typing into an input is just a character."""
        if isinstance(self.focused, Input):
            self.focused.insert_text_at_cursor(char)
            return True
        return False

    def _open_bar(self, mode: str, value: str) -> None:
        self._bar_mode = mode
        self.query_one("#bar-prompt", Static).update(mode)
        self.query_one("#bar").display = True
        bar = self.query_one("#bar-input", CommandBar)
        bar.value = value
        # Focus now, not on the next idle (as `focus()` does): keys typed right after `:` belong to the bar.
        self.set_focus(bar)

    def close_bar(self, cancel: bool = False) -> None:
        if cancel and self._bar_mode == "/":
            self.current_view.table.set_filter("")
        self._bar_mode = ""
        self.query_one("#bar").display = False
        self.set_focus(self.current_view.table)

    @on(Input.Changed, "#bar-input")
    def _bar_changed(self, event: Input.Changed) -> None:
        if self._bar_mode == "/":  # filter as you type, as k9s does
            self.current_view.table.set_filter(event.value)

    @on(Input.Submitted, "#bar-input")
    def _bar_submitted(self, event: Input.Submitted) -> None:
        mode = self._bar_mode
        self.close_bar()
        if mode == ":":
            self.run_command(event.value)

    def run_command(self, text: str) -> None:
        try:
            cmd = parse(text)
        except CommandError as e:
            self.notify(str(e), severity="error")
            return
        if cmd.name in VIEWS:
            self.action_view(cmd.name)
        elif cmd.name == "ctx":
            self.switch_context(cmd.arg)
        elif cmd.name == "help":
            self.action_help()
        elif cmd.name == "refresh":
            self.action_refresh_now()
        elif cmd.name == "quit":
            self.exit()

    def switch_context(self, name: str) -> None:
        try:
            self.backend.switch(name)
        except ValueError as e:
            self.notify(str(e), severity="error")
            return
        self.notify(f"context {name}" + (" (read-only)" if self.readonly else ""))
        if self._timeline_due != float("inf"):  # another fleet, another clock: read it with the next refresh
            self._timeline, self._timeline_due = None, 0.0
        self.refresh_bindings()
        self._redraw()
        self.action_refresh_now()

    # --- runbooks ---------------------------------------------------------------------------------------

    def open_runbook(self, name: str, labels: dict[str, str]) -> None:
        rb = self.backend.runbooks().get(name)
        if rb is None:
            self.notify(f"no runbook {name} in the runbooks folder", severity="warning")
            return
        # Only what the runbook takes: an alert's labels or a service row name more than its parameters.
        given = {p.name: labels[p.name] for p in rb.parameters if p.name in labels}
        if "node" in {p.name for p in rb.parameters} and "node" not in given:
            node = labels.get("Hostname") or labels.get("hostname")
            if node:
                given["node"] = node
        self.push_screen(RunbookScreen(rb, given), lambda _: self._redraw())

    # --- drills: `x` stops the running one from any view, a safety stop like Ctrl+C -----------------------

    def action_stop_drill(self) -> None:
        if not self.backend.stop_drill():
            self.notify("no drill is running", severity="warning")
            return
        self.notify("stopping the drill; its rollbacks run")

    # --- keys the views bind -----------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "view_key":
            return self.current_view.key_state(str(parameters[0]), self.readonly)
        return True

    def on_key(self, event: Key) -> None:
        # A greyed-out key still deserves an answer: say why it did nothing.
        if self.readonly and any(k.key == event.key and k.mutating for k in self.current_view.KEYS):
            self.notify("read-only: this console does not change anything here", severity="warning")

    async def action_view_key(self, action: str) -> None:
        """A view's key: run the view's own action, if the view on screen binds it."""
        view = self.current_view
        if view.key_state(action, self.readonly):
            await self.run_action(action, view)

    def on_action_done(self, message: ActionDone) -> None:
        self.notify(message.text, severity="error" if message.error else "information")
        self.action_refresh_now()
