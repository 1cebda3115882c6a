"""The Drills view: the scenarios with their last results, and a timeline — live while a drill runs, else the
selected scenario's last drill. Enter starts the selected scenario after a confirmation; `x` stops a running
drill (its rollbacks still run).

The drill runs in a worker thread through the backend; it posts messages and never touches widgets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rich.markup import escape
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, DataTable, Static

from console.fleet.snapshot import FleetSnapshot
from console.tui.runbooks import ask_from_thread
from console.tui.table import Column
from console.tui.view import Frame, View

RESULT_STYLE = {"passed": "green", "failed": "bold red", "running": "yellow"}


@dataclass
class DrillDone(Message):
    text: str
    ok: bool


class DrillsView(View):
    NAME = "drills"
    TITLE = "Drills"
    COLUMNS = (
        Column("name", "Scenario"),
        Column("faults", "Faults"),
        Column("targets", "Targets"),
        Column("last", "Last: detect/mitigate"),
        Column("detect", "Detected by", compact=False),
    )

    def __init__(self) -> None:
        super().__init__()
        self.running: str | None = None
        self.live: list[str] = []
        self._last: tuple[list[dict[str, Any]], dict[str, Any]] | None = None

    def compose(self) -> ComposeResult:
        yield from super().compose()
        yield Static("", id="drill-timeline")

    def rows(self, snap: FleetSnapshot, frame: Frame) -> list[tuple[str, dict[str, object]]]:
        from console.drills.report import last_by_scenario, mmss

        backend = self.console.backend
        try:
            scs = backend.drills()
        except Exception as e:  # a broken scenario file: say which, keep the console running
            self.set_title(f"Drills — [red]{escape(str(e).splitlines()[0])}[/red]")
            return []
        try:
            records = backend.drill_records()
        except Exception:
            records = []
        # The same list while the journal is unchanged: its reports are built once, not on every refresh.
        if self._last is None or self._last[0] is not records:
            self._last = (records, last_by_scenario(records))
        last = self._last[1]
        state = f"running {self.running} (x stops it)" if self.running else "Enter runs the selected one"
        self.set_title(f"Drills — {len(scs)} scenarios; {state}")
        self._timeline(last)
        out = []
        for name, sc in sorted(scs.items()):
            rep = last.get(name)
            result: Text = (
                Text(f"{rep.status} {mmss(rep.ttd_s)}/{mmss(rep.ttm_s)}", style=RESULT_STYLE.get(rep.status, ""))
                if rep
                else Text("never run", style="dim")
            )
            out.append(
                (
                    name,
                    {
                        "name": name,
                        "faults": ", ".join(f.kind for f in sc.faults),
                        "detect": str(sc.detect),
                        "targets": f"{sc.targets.detect}/{sc.targets.mitigate}",
                        "last": result,
                    },
                )
            )
        return out

    def _timeline(self, last: dict[str, Any]) -> None:
        from console.drills.report import mmss

        box = self.query_one("#drill-timeline", Static)
        if self.running or self.live:
            head = f"[b]Timeline[/b] {escape(self.running or '')}"
            box.update(head + "\n" + "\n".join(self.live[-14:]))
            return
        rep = last.get(self.table.selected_key or "")
        if rep is None:
            box.update("[dim]no drill of this scenario yet[/dim]")
            return
        lines = [
            f"{mmss(line.offset_s) if line.offset_s is not None else '':>7}  {line.event:<14} {escape(line.text)}"
            for line in rep.timeline
            if line.event != "probe"
        ]
        box.update(f"[b]Last drill[/b] {rep.drill}\n" + "\n".join(lines[-14:]))

    def add_line(self, line: str) -> None:
        self.live.append(line)
        self.query_one("#drill-timeline", Static).update(
            f"[b]Timeline[/b] {escape(self.running or '')}\n" + "\n".join(self.live[-14:])
        )

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        """Enter: start the selected scenario, after a confirmation naming the context."""
        event.stop()
        name = event.row_key.value
        if not name:
            return
        if self.running:
            self.notify(f"drill {self.running} is running; x stops it", severity="warning")
            return
        if self.console.readonly:
            self.notify("read-only: drills inject faults; refused", severity="warning")
            return
        try:
            sc = self.console.backend.drills()[name]
        except Exception as e:
            self.notify(f"drills: {e}", severity="error")
            return
        context = self.console.backend.context or "(current)"

        def confirmed(ok: bool | None) -> None:
            if ok:
                self._start(name)

        self.app.push_screen(ConfirmDrill(sc, context), confirmed)

    def _start(self, name: str) -> None:
        self.running, self.live = name, []
        self.add_line(f"starting {name} …")
        self._drill_worker(name)

    @work(thread=True, exclusive=True, group="drill")
    def _drill_worker(self, name: str) -> None:
        run_drill_in_thread(self.app, self, name)

    def on_drill_done(self, message: DrillDone) -> None:
        message.stop()
        self.add_line(f"[{'green' if message.ok else 'bold red'}]{escape(message.text)}[/]")
        self.running = None
        self.notify(message.text, severity="information" if message.ok else "error")
        self.console.redraw()


class ConfirmDrill(ModalScreen[bool]):
    """What the drill will inject and run, and nothing happens until confirmed."""

    BINDINGS = [Binding("escape", "dismiss(False)", "Cancel")]

    def __init__(self, scenario: Any, context: str):
        super().__init__(id="confirm-drill")
        self.sc, self.context = scenario, context

    def compose(self) -> ComposeResult:
        sc = self.sc
        faults = "\n".join(f"  {f.kind} {f.target} for {f.duration}" for f in sc.faults)
        responses = "\n".join(
            f"  {r.runbook} {r.params} ({'on ' + str(r.when) if r.when else 'you start it'})" for r in sc.runbooks
        )
        text = (
            f"[b]{escape(sc.title)}[/b] on [b]{escape(self.context)}[/b]\n\n"
            f"Injects:\n{escape(faults)}\nRuns:\n{escape(responses)}\n"
            f"Targets: detect {sc.targets.detect}, mitigate {sc.targets.mitigate}. Rollbacks always run."
        )
        with Vertical(classes="dialog"):
            yield Static(text)
            with Horizontal(classes="buttons"):
                yield Button("Start the drill", variant="warning", id="drill-start")
                yield Button("Cancel", id="drill-cancel")

    def on_mount(self) -> None:
        self.query_one("#drill-start").focus()  # Enter starts it as it opens, Escape cancels

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "drill-start")


def run_drill_in_thread(app: Any, view: DrillsView, name: str) -> None:
    """The worker body: the drill, its events as lines in the view, operator questions as dialogs."""
    from console.drills.engine import DrillRefused
    from console.drills.report import mmss

    def on_event(e: Any) -> None:
        if not e.changed:
            return  # every reading is in the journal; the timeline shows a probe when its verdict changes
        app.call_from_thread(view.add_line, f"{e.sim:%H:%M:%S}  {e.event:<14} {escape(e.text)}")

    try:
        out = app.backend.run_drill(name, app.operator, on_event, lambda prompt: ask_from_thread(app, prompt))
    except DrillRefused as e:
        view.post_message(DrillDone(f"drill refused: {e}", False))
        return
    except Exception as e:
        view.post_message(DrillDone(f"drill error: {type(e).__name__}: {e}", False))
        return
    text = f"{out.status.upper()}: detect {mmss(out.ttd_s)}, mitigate {mmss(out.ttm_s)}" + (
        " — " + "; ".join(out.reasons) if out.reasons else ""
    )
    view.post_message(DrillDone(text, out.status == "passed"))
