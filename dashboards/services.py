"""Services: traffic, p95 latency against the SLO, errors, replicas, serving mode and traffic weight by region."""

from __future__ import annotations

from grafanalib.core import Dashboard

from console.catalog.model import Catalog
from console.codegen import panels as kit
from console.fleet.queries import PANEL_QUERIES as Q


def build(catalog: Catalog) -> Dashboard:
    runbooks = catalog.grafana.runbooks_url
    legend = "{{service}} · {{region}}"
    return kit.dashboard(
        "GPU services",
        "Each service in each region: requests, p95 latency against its SLO, errors, replicas, mode and weight.",
        [
            kit.timeseries(
                "Requests per second",
                [(Q["service_rps"], legend), (Q["service_capacity"], "capacity · " + legend)],
                unit="reqps",
                description="Capacity: what the ready replicas serve at the service's target utilisation.",
                links=[kit.runbook(runbooks, "pre-scale", "pre-scale")],
            ),
            kit.timeseries(
                "p95 latency against the SLO",
                [(Q["service_p95"], legend), (Q["service_slo"], "SLO · {{service}}")],
                unit="s",
            ),
            kit.timeseries(
                "Error ratio",
                [(Q["service_errors"], legend)],
                unit="percentunit",
                thresholds=[(None, kit.GREEN), (0.01, kit.ORANGE), (0.05, kit.RED)],
            ),
            kit.timeseries(
                "Latency SLO misses",
                [(Q["service_slo_miss_1h"], "1h · " + legend), (Q["service_slo_miss_6h"], "6h · " + legend)],
                unit="percentunit",
                description="Requests slower than the SLO: what the burn-rate alerts compare with the budget.",
            ),
            kit.heatmap(
                "Latency distribution",
                Q["service_latency_buckets"],
                unit="s",
                buckets=True,
                description="The selected services' request durations, from their histogram buckets.",
            ),
            kit.timeseries("GPU busy", [(Q["service_gpu_busy"], legend)], unit="percent", max_value=100),
            kit.row("Replicas and routing"),
            kit.timeseries(
                "Replicas",
                [
                    (Q["service_replicas_available"], "ready · " + legend),
                    (Q["service_replicas_desired"], "wanted · " + legend),
                ],
            ),
            kit.state_timeline(
                "Serving mode",
                Q["service_mode"],
                legend,
                [(0, "normal", kit.GREEN), (1, "degraded (rules)", kit.ORANGE), (2, "CPU fallback", kit.RED)],
                description="Normal, degraded to the rules model, or on the CPU fallback.",
            ),
            kit.timeseries(
                "Traffic weight",
                [(Q["service_weight"], legend)],
                unit="percentunit",
                max_value=1,
                description="The share of a service's traffic routed to each region.",
                links=[
                    kit.runbook(runbooks, "region-failover", "region failover"),
                    kit.runbook(runbooks, "degrade-llm-to-rules", "degrade the LLM to rules"),
                    kit.runbook(runbooks, "gpu-to-cpu-fallback", "GPU to CPU fallback"),
                    kit.runbook(runbooks, "restore-normal", "restore normal mode"),
                ],
            ),
        ],
        kit.variables("team", "service", "region"),
    )
