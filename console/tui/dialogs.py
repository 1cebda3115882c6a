"""Modal dialogs: the key help, and the silence confirmation. While one is open, refreshes wait."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from console.fleet.snapshot import AlertRow
from console.timefmt import parse_duration as seconds

MAX_SILENCE = timedelta(days=7)


def parse_duration(text: str) -> timedelta:
    """`30m`, `2h`, `1d`: what Alertmanager's own tools accept, up to a week."""
    try:
        value = timedelta(seconds=seconds(text))
    except ValueError:
        raise ValueError(f"{text!r} is not a duration like 30m, 2h or 1d") from None
    if not timedelta(minutes=1) <= value <= MAX_SILENCE:
        raise ValueError("a silence lasts between 1m and 7d")
    return value


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,question_mark,q", "dismiss", "Close")]

    def __init__(self, keys: list[tuple[str, str]], commands: tuple[tuple[str, str], ...]):
        super().__init__(id="help")
        self.keys, self.commands = keys, commands

    def compose(self) -> ComposeResult:
        lines = ["[b]Keys[/b]"] + [f"  [b]{k:<14}[/b] {d}" for k, d in self.keys]
        lines += ["", "[b]Commands[/b] (type : then the command)"] + [f"  [b]{c}[/b]  {d}" for c, d in self.commands]
        with VerticalScroll(classes="dialog"):
            yield Static("\n".join(lines), id="help-text")
            yield Static("[dim]Esc or ? closes[/dim]")


@dataclass(frozen=True)
class SilenceRequest:
    matchers: dict[str, str]
    duration: timedelta
    created_by: str
    comment: str
    alertmanager: str = ""  # the cluster whose own Alertmanager holds the alert ("": the console's)


class SilenceDialog(ModalScreen[SilenceRequest | None]):
    """Shows exactly what will be silenced, for how long and by whom; nothing happens until confirmed."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, alert: AlertRow, operator: str):
        super().__init__(id="silence")
        self.alert, self.operator = alert, operator

    def compose(self) -> ComposeResult:
        matchers = "  ".join(f"{k}={v}" for k, v in self.alert.labels)
        with Vertical(classes="dialog"):
            yield Static(f"[b]Silence {self.alert.name}[/b] ({self.alert.severity}, {self.alert.team or 'no team'})")
            yield Static(f"[dim]matching[/dim] {matchers}", id="silence-matchers")
            if self.alert.alertmanager:  # where it is made: a silence in another Alertmanager would silence nothing
                yield Static(f"[dim]in[/dim] cluster {self.alert.alertmanager}'s Alertmanager", id="silence-where")
            yield Label("For (30m, 2h, 1d):")
            yield Input("1h", id="silence-duration")
            yield Label("Comment:")
            yield Input(f"silenced from the gpuops console: {self.alert.summary}"[:200], id="silence-comment")
            yield Static(f"created by [b]{self.operator}[/b]")
            yield Static("", id="silence-error")
            with Horizontal(classes="buttons"):
                yield Button("Silence", variant="warning", id="silence-confirm")
                yield Button("Cancel", id="silence-cancel")

    def on_mount(self) -> None:
        self.query_one("#silence-duration", Input).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "silence-confirm":
            self._confirm()
        else:
            self.dismiss(None)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self._confirm()

    def action_cancel(self) -> None:
        self.dismiss(None)

    def _confirm(self) -> None:
        try:
            duration = parse_duration(self.query_one("#silence-duration", Input).value)
        except ValueError as e:
            self.query_one("#silence-error", Static).update(f"[red]{e}[/red]")
            return
        comment = self.query_one("#silence-comment", Input).value.strip() or "silenced from the gpuops console"
        self.dismiss(SilenceRequest(dict(self.alert.labels), duration, self.operator, comment, self.alert.alertmanager))
