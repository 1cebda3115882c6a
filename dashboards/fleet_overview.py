"""Fleet overview: how busy, full and hot each pool is in each region, what sits idle, and capacity vs demand."""

from __future__ import annotations

from grafanalib.core import Dashboard

from console.catalog.model import Catalog
from console.codegen import panels as kit
from console.fleet.queries import PANEL_QUERIES as Q


def build(catalog: Catalog) -> Dashboard:
    runbooks = catalog.grafana.runbooks_url
    money = f"suffix: {catalog.prices.currency}/h"
    legend = "{{pool}} · {{region}}"
    return kit.dashboard(
        "GPU fleet overview",
        "Every GPU pool by region: utilisation, memory, power, idle GPUs, and allocated against allocatable.",
        [
            kit.stat("GPUs", Q["fleet_gpus"], description="GPUs reported by dcgm-exporter in the selected pools."),
            kit.stat(
                "Idle GPUs",
                Q["fleet_gpus_idle"],
                description="GPUs (and MIG shares) that hold a pod and are under 5 % busy.",
                thresholds=[(None, kit.GREEN), (1, kit.ORANGE)],
            ),
            kit.stat("GPU busy", Q["fleet_busy"], unit="percent", decimals=1),
            kit.stat("GPU cost", Q["fleet_cost_per_hour"], unit=money, decimals=0),
            kit.stat(
                "Alerts firing",
                Q["alerts_firing"],
                thresholds=[(None, kit.GREEN), (1, kit.ORANGE)],
            ),
            kit.stat(
                "Regions with no Ready node",
                Q["regions_down"],
                thresholds=[(None, kit.GREEN), (1, kit.RED)],
            ),
            kit.row("Load"),
            kit.timeseries("GPU busy by pool", [(Q["pool_busy"], legend)], unit="percent", max_value=100),
            kit.timeseries(
                "GPU memory used by pool",
                [(Q["pool_memory"], legend)],
                unit="percentunit",
                max_value=1,
                thresholds=[(None, kit.GREEN), (0.95, kit.RED)],
            ),
            kit.timeseries("GPU power by pool", [(Q["pool_power"], legend)], unit="watt"),
            kit.timeseries(
                "Idle GPUs by pool",
                [(Q["pool_idle"], legend)],
                description="Allocated to a pod but under 5 % busy; MIG instances count as their share of a GPU.",
                links=[kit.runbook(runbooks, "reclaim-idle-gpus", "reclaim idle GPUs")],
            ),
            kit.row("Capacity"),
            kit.timeseries(
                "GPUs allocated and allocatable by pool",
                [(Q["pool_allocatable"], "allocatable · " + legend), (Q["pool_requested"], "allocated · " + legend)],
                description="Whole GPUs, MIG instances and shares as Kubernetes counts them (by resource).",
            ),
            kit.bargauge("GPUs allocated, share of allocatable", Q["pool_allocated_ratio"], legend),
            kit.timeseries(
                "Ready nodes by region",
                [(Q["region_nodes_ready"], "{{region}}")],
                description="0 means the region is down: its services' traffic must move.",
                thresholds=[(None, kit.RED), (1, kit.GREEN)],
                links=[kit.runbook(runbooks, "region-failover", "region failover")],
            ),
        ],
        kit.variables("region", "pool"),
    )
