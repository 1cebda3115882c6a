"""The Runbooks view and screens: the runbook list and the journal's last runs; one runbook's parameters
form, its plan, a confirmation (typing the context name on production), and the run's live progress.

Plans and runs happen in worker threads through the backend; they post messages and never touch widgets.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, cast

from rich.markup import escape
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, DataTable, Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from console.fleet.snapshot import FleetSnapshot
from console.tui.messages import PlanReady, RunFinished, RunProgress
from console.tui.table import Column
from console.tui.view import Console, Frame, View, ViewKey

if TYPE_CHECKING:
    from console.runbooks.journal import RunSummary
    from console.runbooks.model import Runbook

STATUS_STYLE = {
    "running": "bold cyan",
    "succeeded": "green",
    "rolled-back": "yellow",
    "failed": "bold red",
    "interrupted": "bold red",
    "refused": "dim",
}


def journal_line(r: RunSummary) -> str:
    """One run in the journal panel, as markup. An empty style would be `[]`, which Rich refuses: any status
    the journal may hold gets one."""
    style = STATUS_STYLE.get(r.status, "bold")
    return f"{r.id}  [{style}]{r.status}[/]  {escape(r.operator)}  {escape(r.detail[:80])}"


class RunbooksView(View):
    NAME = "runbooks"
    TITLE = "Runbooks"
    KEYS = (ViewKey("r", "runbook", "Runbook"),)
    COLUMNS = (
        Column("name", "Runbook"),
        Column("title", "Title", compact=False),
        Column("params", "Parameters"),
        Column("last", "Last run"),
    )

    def compose(self) -> ComposeResult:
        yield from super().compose()
        yield Static("", id="runbook-journal")

    def action_runbook(self) -> None:
        if self.table.selected_key:
            self.console.open_runbook(self.table.selected_key, {})

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        if event.row_key.value:
            self.console.open_runbook(event.row_key.value, {})

    def rows(self, snap: FleetSnapshot, frame: Frame) -> list[tuple[str, dict[str, object]]]:
        backend = self.console.backend
        try:
            rbs = backend.runbooks()
        except Exception as e:  # a broken file: say which, keep the console running
            self.set_title(f"Runbooks — [red]{escape(str(e).splitlines()[0])}[/red]")
            return []
        try:
            runs = backend.runs()
            journal = ""
        except Exception as e:
            runs, journal = [], f"[red]journal: {escape(str(e))}[/red]"
        last = {r.runbook: r for r in runs}
        recent = [journal_line(r) for r in runs[-5:]]
        self.query_one("#runbook-journal", Static).update(
            journal or ("[b]Journal[/b] (last runs)\n" + "\n".join(recent) if recent else "[dim]no runs yet[/dim]")
        )
        problems = backend.runbook_problems()
        broken = f" — [red]{len(problems)} error(s), a file left out: {escape(problems[0])}[/red]" if problems else ""
        self.set_title(f"Runbooks — {len(rbs)}; Enter or r opens one (plan, confirm, run){broken}")
        out = []
        for name, rb in sorted(rbs.items()):
            run = last.get(name)
            out.append(
                (
                    name,
                    {
                        "name": name,
                        "title": rb.title,
                        "params": " ".join(
                            p.name + ("?" if p.optional or p.default is not None else "") for p in rb.parameters
                        ),
                        "last": Text(run.status, style=STATUS_STYLE.get(run.status, ""))
                        if run
                        else Text("—", style="dim"),
                    },
                )
            )
        return out


class RunbookChooser(ModalScreen["str | None"]):
    """Which runbook for the selected service: those that take a service parameter."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, title: str, names: list[tuple[str, str]]):
        super().__init__(id="runbook-chooser")
        self.heading, self.names = title, names

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(self.heading)
            yield OptionList(
                *[Option(f"{n}  [dim]{escape(t)}[/dim]", id=n) for n, t in self.names], id="runbook-options"
            )

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()

    @on(OptionList.OptionSelected)
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)


class ConfirmRun(ModalScreen[bool]):
    """The plan once more, and nothing happens until confirmed; a production context must be typed."""

    BINDINGS = [Binding("escape", "dismiss(False)", "Cancel")]

    def __init__(self, plan_text: str, context: str, production: bool):
        super().__init__(id="confirm-run")
        self.plan_text, self.context, self.production = plan_text, context, production

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(f"[b]Run on context {escape(self.context)}?[/b]")
            with VerticalScroll(id="confirm-plan"):
                yield Static(escape(self.plan_text))
            if self.production:
                yield Label(f"{self.context} is production: type its name to run")
                yield Input(id="confirm-context")
            with Horizontal(classes="buttons"):
                yield Button("Run", variant="error", id="confirm-run-button", disabled=self.production)
                yield Button("Cancel", id="confirm-cancel")

    def on_mount(self) -> None:
        # Enter answers the dialog as it opens: it runs (a production context once its name is typed in full),
        # and Escape cancels. Without a focus here neither key reached a button until Tab moved to one.
        self.query_one("#confirm-context" if self.production else "#confirm-run-button").focus()

    @on(Input.Changed, "#confirm-context")
    def _typed(self, event: Input.Changed) -> None:
        self.query_one("#confirm-run-button", Button).disabled = event.value != self.context

    @on(Input.Submitted, "#confirm-context")
    def _submitted(self, event: Input.Submitted) -> None:
        if event.value == self.context:
            self.dismiss(True)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "confirm-run-button")


class Approval(ModalScreen[bool]):
    BINDINGS = [Binding("escape", "dismiss(False)", "No")]

    def __init__(self, prompt: str):
        super().__init__(id="approval")
        self.prompt = prompt

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(f"[b]{escape(self.prompt)}[/b]")
            with Horizontal(classes="buttons"):
                yield Button("Approve", variant="warning", id="approve-yes")
                yield Button("Stop the run", id="approve-no")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "approve-yes")


def ask_from_thread(app: Any, prompt: str) -> bool:
    """From a worker thread: show the Approval dialog and block until the operator answers."""
    answer: list[bool] = []
    done = threading.Event()

    def answered(ok: bool | None) -> None:
        answer.append(bool(ok))
        done.set()

    def ask() -> None:
        app.push_screen(Approval(prompt), answered)

    app.call_from_thread(ask)
    done.wait()
    return answer[0]


class RunbookScreen(Screen[None]):
    """One runbook: parameters (filled from where it was opened), Plan, Run (after a clean plan), progress."""

    BINDINGS = [Binding("escape", "close", "Back")]

    def __init__(self, rb: Runbook, given: dict[str, str]):
        super().__init__(id="runbook-screen")
        self.rb, self.given = rb, given
        self.plan: Any = None
        self.running = False

    def compose(self) -> ComposeResult:
        app: Any = self.app
        with VerticalScroll(id="runbook-body"):
            yield Static(f"[b]{escape(self.rb.name)}[/b]: {escape(self.rb.title)}", classes="view-title")
            yield Static(escape(self.rb.description.strip()), id="runbook-description")
            for p in self.rb.parameters:
                lo, hi = ("" if v is None else f"{v:g}" for v in (p.min, p.max))
                rng = f" {lo}..{hi}" if lo or hi else ""
                hint = " (left out: every one)" if p.optional else ""
                yield Label(f"{p.name} [dim]{p.type.value}{rng}{hint} {escape(p.description)}[/dim]")
                value = self.given.get(p.name, "" if p.default is None else str(p.default))
                yield Input(value, id=f"param-{p.name}", classes="runbook-param")
            with Horizontal(classes="buttons"):
                yield Button("Plan", variant="primary", id="runbook-plan")
                if not app.readonly:  # read-only: the plan can be read, no run is offered
                    yield Button("Run…", variant="error", id="runbook-run", disabled=True)
                yield Button("Back", id="runbook-back")
            yield Static("", id="runbook-plan-text")
            yield Static("", id="runbook-progress")

    def on_mount(self) -> None:
        self.query(Input).first().focus()

    def given_values(self) -> dict[str, str]:
        return {p.name: v for p in self.rb.parameters if (v := self.query_one(f"#param-{p.name}", Input).value.strip())}

    def action_close(self) -> None:
        if self.running:
            self.notify("a run is in progress; it keeps going, and its progress is here", severity="warning")
            return
        self.dismiss(None)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "runbook-plan":
            self._set_run_enabled(False)
            self.query_one("#runbook-plan-text", Static).update(
                "[dim]planning (reads the fleet, changes nothing)…[/dim]"
            )
            self.make_plan(self.given_values())
        elif event.button.id == "runbook-run" and self.plan is not None:
            app: Any = self.app
            cluster = app.backend.cluster()
            # `all`: a run may change any cluster, so any production one asks for the name typed.
            every = app.backend.catalog.read_clusters() if cluster is None else [cluster]
            production = any(c.production for c in every)
            self.app.push_screen(ConfirmRun(self._plan_text, app.backend.context, production), self._confirmed)
        elif event.button.id == "runbook-back":
            self.action_close()

    def _set_run_enabled(self, on_: bool) -> None:
        for b in self.query("#runbook-run").results(Button):
            b.disabled = not on_

    @work(thread=True, exclusive=True, group="runbook-plan")
    def make_plan(self, given: dict[str, str]) -> None:
        from console.runbooks.params import ParameterError
        from console.runbooks.plan import describe_plan

        backend = cast(Console, self.app).backend
        try:
            plan = backend.plan_runbook(self.rb.name, given)
        except ParameterError as e:
            self.post_message(PlanReady(None, "parameters:\n" + "\n".join(f"  {p}" for p in e.problems), error=True))
            return
        except Exception as e:
            self.post_message(PlanReady(None, f"no plan: {type(e).__name__}: {e}", error=True))
            return
        self.post_message(PlanReady(plan, describe_plan(plan), error=bool(plan.problems)))

    def on_plan_ready(self, message: PlanReady) -> None:
        self.plan = None if message.error else message.plan
        self._plan_text = message.text
        style = "red" if message.error else ""
        plan_text = self.query_one("#runbook-plan-text", Static)
        plan_text.update(Text(message.text, style=style))
        # Below the parameters, the plan runs under the fold: bring the buttons (Run) to the top, the plan under
        # them, once it is laid out (`scroll_visible` would not move buttons already in view).
        body = self.query_one("#runbook-body", VerticalScroll)
        buttons = self.query_one("#runbook-body > .buttons", Horizontal)
        self.call_after_refresh(lambda: body.scroll_to(y=buttons.virtual_region.y, animate=False))
        self._set_run_enabled(self.plan is not None and not self.running)

    def _confirmed(self, ok: bool | None) -> None:
        app: Any = self.app
        if not ok or self.plan is None:
            return
        if app.readonly:
            self.notify("read-only: runs are refused", severity="warning")
            return
        self.running = True
        self._set_run_enabled(False)
        self._lines: list[str] = []
        self._show_progress()
        self.execute(self.plan)

    def _show_progress(self) -> None:
        """The progress so far, under the plan, scrolled to its last line: the run's steps are what the operator
        watches, and below a long plan they were out of sight while the run went on."""
        self.query_one("#runbook-progress", Static).update("[b]Progress[/b]\n" + "\n".join(self._lines))
        body = self.query_one("#runbook-body", VerticalScroll)
        self.call_after_refresh(body.scroll_end, animate=False)

    @work(thread=True, exclusive=True, group="runbook-run")
    def execute(self, plan: Any) -> None:
        from console.runbooks.engine import Refused

        app: Any = self.app

        def progress(p: Any) -> None:
            if p.state == "running" and p.stage != "step":
                return
            label = {"step": f"step {p.index}", "verify": "verify", "rollback": "rollback", "run": "run"}[p.stage]
            self.post_message(RunProgress(f"[{p.state}] {label}: {p.name}" + (f" — {p.detail}" if p.detail else "")))

        try:
            out = app.backend.run_plan(plan, app.operator, progress, lambda prompt: ask_from_thread(app, prompt))
        except Refused as e:
            self.post_message(RunFinished(f"refused: {e}", ok=False))
            return
        except Exception as e:
            self.post_message(RunFinished(f"error: {type(e).__name__}: {e}", ok=False))
            return
        self.post_message(
            RunFinished(
                f"run {out.run_id}: {out.status}" + (f" ({out.detail})" if out.detail else ""),
                out.status == "succeeded",
            )
        )

    def on_run_progress(self, message: RunProgress) -> None:
        self._lines.append(escape(message.line))
        self._show_progress()

    def on_run_finished(self, message: RunFinished) -> None:
        self.running = False
        self._lines.append(f"[{'green' if message.ok else 'bold red'}]{escape(message.text)}[/]")
        self._show_progress()
        self.notify(message.text, severity="information" if message.ok else "error")
        self.plan = None  # a new run needs a new plan: the fleet has changed


def runbook_for_alert(runbook_url: str) -> str:
    """The runbook an alert's runbook_url names: `<base>/<name>.yaml`."""
    return runbook_url.rstrip("/").rsplit("/", 1)[-1].removesuffix(".yaml")
