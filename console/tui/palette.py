"""The command palette (Ctrl+P): the same commands as the `:` bar, searchable."""

from __future__ import annotations

from functools import partial

from textual.command import Hit, Hits, Provider

from console.tui.commands import VIEWS


class ConsoleCommands(Provider):
    def _commands(self) -> list[tuple[str, str, str]]:
        app = self.app
        out = [(f"View: {v}", f":{v}", f"show the {v} view") for v in VIEWS]
        out += [(f"Context: {c}", f":ctx {c}", "read this kubeconfig context") for c in app.backend.contexts()]  # type: ignore[attr-defined]
        out += [("Refresh now", ":refresh", ""), ("Help: keys", ":help", ""), ("Quit", ":q", "")]
        return out

    async def discover(self) -> Hits:
        for title, command, help_ in self._commands():
            yield Hit(1.0, title, partial(self.app.run_command, command), help=f"{command}  {help_}")  # type: ignore[attr-defined]

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, command, help_ in self._commands():
            score = max(matcher.match(title), matcher.match(command))
            if score > 0:
                run = partial(self.app.run_command, command)  # type: ignore[attr-defined]
                yield Hit(score, matcher.highlight(title), run, help=f"{command}  {help_}")
