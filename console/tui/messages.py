"""Messages the console's widgets and workers post: small dataclasses, never widgets touched from a thread."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from textual.message import Message

from console.fleet.snapshot import FleetSnapshot

if TYPE_CHECKING:
    from console.runbooks.plan import Plan
    from console.sources.twin import Timeline


@dataclass
class SnapshotReady(Message):
    snapshot: FleetSnapshot


@dataclass
class TimelineRead(Message):
    """The fleet's clock (the twin's speed changes and jumps), read again after a refresh."""

    timeline: Timeline


@dataclass
class PoolLevelChanged(Message):
    """The pools view opened or closed a pool or a node: the app refreshes at once to read its nodes or GPUs."""

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

    plan: Plan | None
    text: str
    error: bool = False


@dataclass
class RunProgress(Message):
    line: str


@dataclass
class RunFinished(Message):
    text: str
    ok: bool
