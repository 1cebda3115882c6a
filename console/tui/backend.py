"""What the console needs from the outside world, as a small interface (the harlequin adapter idea).

`console.wiring.Connections` implements it over Prometheus, Kubernetes and Alertmanager; the screens
never import an HTTP client.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Protocol

from console.catalog.model import Catalog, Cluster
from console.fleet.snapshot import FleetSnapshot


class Backend(Protocol):
    catalog: Catalog
    context: str

    def snapshot(self, detail_pool: tuple[str, str] | None = None, detail_node: str | None = None) -> FleetSnapshot:
        """One refresh; with the pool (pool, region) and node an operator has drilled into."""

    def contexts(self) -> list[str]: ...

    def cluster(self, context: str | None = None) -> Cluster | None:
        """The catalog's cluster for a context (the current one by default): its regions, read-only flag."""

    def switch(self, context: str) -> None:
        """Read from another kubeconfig context; raises `ValueError` naming the known ones."""

    def silence(self, matchers: dict[str, str], duration: timedelta, created_by: str, comment: str) -> str:
        """Create an Alertmanager silence; returns its id."""
