"""Messages the console's widgets and workers post: small dataclasses, never widgets touched from a thread."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from textual.message import Message

from console.fleet.snapshot import FleetSnapshot


@dataclass
class SnapshotReady(Message):
    snapshot: FleetSnapshot
    timeline: Any = None  # the fleet's clock, when this refresh read it again (else None: keep the last)


@dataclass
class DrillChanged(Message):
    """The pool or node drilled into changed: the app refreshes at once to read its nodes or GPUs."""

    pool: tuple[str, str] | None
    node: str | None


@dataclass
class ActionDone(Message):
    """A mutating action (a silence) finished in a worker: what to tell the operator."""

    text: str
    error: bool = False


@dataclass
class PlanReady(Message):
    """A runbook's plan, or why there is none (bad parameters, a source down)."""

    plan: object | None  # console.runbooks.plan.Plan
    text: str
    error: bool = False


@dataclass
class RunProgress(Message):
    line: str


@dataclass
class RunFinished(Message):
    text: str
    ok: bool
