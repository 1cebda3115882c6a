"""The console's `:` commands, parsed in one place for the command bar and the command palette."""

from __future__ import annotations

from dataclasses import dataclass

VIEWS = ("pools", "quotas", "services", "alerts", "runbooks", "drills", "readiness", "costs", "queues")
_ALIASES = {
    "pools": "pools", "pool": "pools", "po": "pools",
    "quotas": "quotas", "quota": "quotas", "quo": "quotas",
    "services": "services", "service": "services", "svc": "services",
    "alerts": "alerts", "alert": "alerts", "al": "alerts",
    "runbooks": "runbooks", "runbook": "runbooks", "rb": "runbooks",
    "drills": "drills", "drill": "drills", "dr": "drills",
    "readiness": "readiness", "ready": "readiness", "rd": "readiness",
    "costs": "costs", "cost": "costs", "co": "costs",
    "queues": "queues", "queue": "queues", "cq": "queues", "kueue": "queues",
    "q": "quit", "quit": "quit", "q!": "quit",
    "ctx": "ctx", "context": "ctx",
    "help": "help", "?": "help",
    "refresh": "refresh",
}  # fmt: skip
HELP = (
    (":pools … :queues", "a view by its name (the keys 1-9)"),
    (":ctx NAME", "read another context; all: every cluster (Tab completes)"),
    (":refresh", "refresh now"),
    (":help", "this help"),
    (":q", "quit"),
)


@dataclass(frozen=True)
class Command:
    name: str  # a view name, "ctx", "quit", "help" or "refresh"
    arg: str = ""


class CommandError(ValueError):
    pass


def parse(text: str) -> Command:
    words = text.strip().removeprefix(":").split()
    if not words:
        raise CommandError("empty command; try :help")
    name = _ALIASES.get(words[0].lower())
    if name is None:
        raise CommandError(f"unknown command {words[0]!r}; try :help")
    if name == "ctx":
        if len(words) != 2:
            raise CommandError(":ctx takes one context name")
        return Command("ctx", words[1])
    if len(words) > 1:
        raise CommandError(f":{words[0]} takes no argument")
    return Command(name)
