"""Pool detail: each node and GPU of the selected pools, MIG instances, XID errors, temperature, missing GPUs."""

from __future__ import annotations

from grafanalib.core import Dashboard

from console.catalog.model import Catalog
from console.codegen.panels import (
    GREEN,
    ORANGE,
    RED,
    dashboard,
    heatmap,
    row,
    runbook,
    state_timeline,
    table,
    timeseries,
    variables,
)
from console.fleet.queries import PANEL_QUERIES as Q


def build(catalog: Catalog) -> Dashboard:
    runbooks = catalog.grafana.runbooks_url
    gpu = "{{node}} GPU {{gpu}}"
    return dashboard(
        "GPU pool detail",
        "The nodes and GPUs of the selected pools and regions: load, memory, MIG instances, XID errors, heat.",
        [
            table(
                "Nodes",
                [
                    (Q["node_busy"], "GPU busy %"),
                    (Q["node_power"], "Power W"),
                    (Q["node_temp_max"], "Hottest GPU °C"),
                    (Q["node_xid_max"], "Last XID"),
                ],
            ),
            row("GPUs"),
            timeseries("GPU busy", [(Q["gpu_busy"], gpu)], unit="percent", max_value=100),
            timeseries(
                "GPU memory used",
                [(Q["gpu_memory"], gpu + " {{GPU_I_ID}}")],
                unit="percentunit",
                max_value=1,
                thresholds=[(None, GREEN), (0.95, RED)],
            ),
            timeseries(
                "MIG instances busy",
                [(Q["mig_active"], gpu + " {{GPU_I_PROFILE}} #{{GPU_I_ID}}")],
                unit="percentunit",
                max_value=1,
                description="Graphics engine activity of each MIG instance (DCGM_FI_PROF_GR_ENGINE_ACTIVE).",
            ),
            heatmap(
                "GPU temperature",
                Q["gpu_temp"],
                unit="celsius",
                buckets=False,
                description="How many GPUs run at each temperature over time.",
            ),
            row("Faults"),
            state_timeline(
                "XID errors by GPU",
                Q["gpu_xid"],
                gpu,
                [
                    (0, "OK", GREEN),
                    (13, "XID 13", ORANGE),
                    (48, "XID 48 (ECC)", RED),
                    (79, "XID 79 (off the bus)", RED),
                ],
                description="The last XID a GPU reported; any non-zero value means a driver-reported fault.",
                thresholds=[(None, GREEN), (1, RED)],
            ),
            timeseries(
                "GPUs missing by node",
                [(Q["node_gpus_missing"], "{{node}}")],
                description="GPUs a node has that its exporter no longer reports.",
                thresholds=[(None, GREEN), (1, RED)],
                links=[runbook(runbooks, "gpu-node-xid", "a GPU node with XID errors")],
            ),
        ],
        variables("region", "pool", "node"),
    )
