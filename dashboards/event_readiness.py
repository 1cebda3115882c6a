"""Event readiness: for each catalog event, each service's expected peak against its capacity and buffer.

The expected peak is the last day's peak times the event's multiplier, the expression the capacity alert
reads; the readiness forecast (`gpuops readiness`) refines it.
"""

from __future__ import annotations

from grafanalib.core import Dashboard

from console.catalog.model import Catalog
from console.codegen import panels as kit
from console.fleet import queries as q


def build(catalog: Catalog) -> Dashboard:
    runbooks = catalog.grafana.runbooks_url
    panels = []
    for e in catalog.events:
        panels += [
            kit.row(f"{e.title} ({e.name}): x{e.multiplier:g} traffic, {e.buffer:.0%} buffer"),
            kit.stat(
                f"Time to {e.name}", q.event_countdown_seconds(e.start.timestamp()), unit="dtdurations", w=24, h=3
            ),
        ]
        for name in e.services:
            peak = q.in_regions(q.expected_peak_rps(name, e.multiplier))
            panels += [
                kit.timeseries(
                    kit.demand_title(name, e.name),
                    [
                        (q.for_service(q.PANEL_QUERIES["service_rps"], name), "now · {{region}}"),
                        (peak, "expected peak · {{region}}"),
                        (q.for_service(q.PANEL_QUERIES["service_capacity"], name), "capacity · {{region}}"),
                    ],
                    unit="reqps",
                    w=14,
                    description=f"Capacity must stay {e.buffer:.0%} above the expected peak.",
                    links=[kit.runbook(runbooks, "pre-scale", "pre-scale")],
                ),
                kit.bargauge(
                    f"{name}: headroom at the peak ({e.name})",
                    q.in_regions(q.headroom_at_peak(name, e.multiplier)),
                    "{{region}}",
                    w=10,
                    min_value=-1,
                    thresholds=[(None, kit.RED), (0, kit.ORANGE), (e.buffer, kit.GREEN)],
                ),
            ]
    return kit.dashboard(
        "GPU event readiness",
        "Each event's services: expected peak against ready capacity, and the headroom left against the buffer.",
        panels,
        kit.variables("region"),
        time_from="now-2d",
    )
