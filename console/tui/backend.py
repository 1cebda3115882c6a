"""What the console needs from the outside world, as a small interface (the harlequin adapter idea).

`console.wiring.Connections` implements it over Prometheus, Kubernetes and Alertmanager; the screens
never import an HTTP client.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Protocol

from console.catalog.model import Catalog, Cluster
from console.fleet.snapshot import FleetSnapshot

if TYPE_CHECKING:
    from console.cost.gather import Month
    from console.drills.engine import DrillEvent, DrillOutcome
    from console.drills.model import Scenario
    from console.readiness.assess import Readiness
    from console.runbooks.engine import Outcome, Progress
    from console.runbooks.journal import RunSummary
    from console.runbooks.model import Runbook
    from console.runbooks.plan import Plan
    from console.sources.twin import Timeline


class Backend(Protocol):
    catalog: Catalog
    context: str

    def snapshot(self, detail_pool: tuple[str, str] | None = None, detail_node: str | None = None) -> FleetSnapshot:
        """One refresh; with the pool (pool, region) and node the operator has opened."""

    def contexts(self) -> list[str]: ...

    def cluster(self, context: str | None = None) -> Cluster | None:
        """The catalog's cluster for a context (the current one by default): its regions, read-only flag."""

    def switch(self, context: str) -> None:
        """Read from another kubeconfig context; raises `ValueError` naming the known ones."""

    def silence(
        self, matchers: dict[str, str], duration: timedelta, created_by: str, comment: str, alertmanager: str = ""
    ) -> str:
        """Create an Alertmanager silence, in the named cluster's own Alertmanager ("": the one given); returns
        its id."""

    def runbooks(self) -> dict[str, Runbook]:
        """The runbook files that load, by name (a broken one is left out)."""

    def runbook_problems(self) -> list[str]:
        """Each broken runbook file's `file:line: field: message` lines."""

    def plan_runbook(self, name: str, given: dict[str, str]) -> Plan:
        """Parameters resolved (ParameterError) and the plan read from the fleet; changes nothing."""

    def run_plan(
        self, plan: Plan, operator: str, progress: Callable[[Progress], None], approve: Callable[[str], bool]
    ) -> Outcome:
        """Run the plan (Refused before any change); blocks, so call it from a worker."""

    def runs(self) -> list[RunSummary]:
        """The journal's runs, oldest first (JournalError if its chain is broken)."""

    def drills(self) -> dict[str, Scenario]:
        """The drill scenarios, by name (raises ScenarioError naming file:line: field)."""

    def drill_records(self) -> list[dict[str, Any]]:
        """The drill journal's records, oldest first."""

    def readiness(self, event: str | None, snapshot: FleetSnapshot | None = None) -> Readiness:
        """An event's readiness against `snapshot` (a fresh one if
        None); event None: the one running or next, else the last. Forecasts take seconds: call from a worker."""

    def pool_trend(self) -> dict[str, list[tuple[float, float]]]:
        """Each pool's utilisation over the last hour, "pool/region" -> (Unix time, percent): the sparklines'
        first bars. A range query: call from a worker."""

    def timeline(self) -> Timeline:
        """The fleet's clock: the twin's, with its speed changes and jumps,
        on a twin; real time on a cluster. A read on a twin: call from a worker."""

    def costs(self) -> Month:
        """The month to date on the fleet's clock: allocations, budgets and
        savings. Range queries over the month: call from a worker."""

    def run_drill(
        self, name: str, operator: str, on_event: Callable[[DrillEvent], None], ask: Callable[[str], bool]
    ) -> DrillOutcome:
        """Run a scenario on the current context (DrillRefused before anything is injected); blocks."""

    def stop_drill(self) -> bool:
        """Ask the drill running now to stop (its rollbacks run); False when none runs."""
