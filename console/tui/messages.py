"""Messages the console's workers post: small dataclasses, never widgets touched from a thread."""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message

from console.fleet.snapshot import FleetSnapshot


@dataclass
class SnapshotReady(Message):
    snapshot: FleetSnapshot
