"""Teams: GPUs held and GPU-hours, cost rate against the monthly budget, and quota use by namespace."""

from __future__ import annotations

from grafanalib.core import Dashboard

from console.catalog.model import Catalog
from console.codegen import panels as kit
from console.fleet.queries import PANEL_QUERIES as Q


def build(catalog: Catalog) -> Dashboard:
    runbooks = catalog.grafana.runbooks_url
    currency = catalog.prices.currency
    return kit.dashboard(
        "GPU teams",
        "What each team holds and spends: GPUs requested, GPU-hours, cost rate, budget projection and quotas.",
        [
            kit.timeseries("GPUs requested", [(Q["team_gpus"], "{{team}}")], stack=True),
            kit.bargauge(
                "GPU-hours in the time range",
                Q["team_gpu_hours"],
                "{{team}}",
                unit="short",
                max_value=None,
                thresholds=[(None, kit.GREEN)],
                description="The average GPUs requested over the dashboard's time range, times its hours.",
            ),
            kit.row("Cost"),
            kit.timeseries(
                "GPU cost per hour",
                [(Q["team_cost_per_hour"], "{{team}}")],
                unit=f"suffix: {currency}/h",
                stack=True,
            ),
            kit.bargauge(
                "Budget projected for the month",
                Q["team_budget_projected"],
                "{{team}}",
                max_value=1.5,
                thresholds=[(None, kit.GREEN), (0.8, kit.ORANGE), (1, kit.RED)],
                description="The month's cost at the current rate, as a share of the team's monthly budget.",
                links=[kit.runbook(runbooks, "reclaim-idle-gpus", "reclaim idle GPUs")],
            ),
            kit.timeseries(
                "Monthly budget",
                [(Q["team_budget"], "{{team}}")],
                unit=f"suffix: {currency}",
                w=24,
                h=6,
            ),
            kit.row("Quotas"),
            kit.bargauge(
                "Quota used by namespace",
                Q["namespace_quota_used"],
                "{{namespace}} · {{resource}}",
                description="Used over hard, per namespace and resource: warning at 80 %, critical at 95 %.",
            ),
            kit.timeseries("GPUs requested by namespace", [(Q["namespace_gpus"], "{{namespace}}")], stack=True),
        ],
        kit.variables("team", "namespace"),
    )
