"""What readiness reads, from the sources: request-rate history from Prometheus placed on the fleet's clock,
tokens per request, loaded alert rules, fallbacks in Kubernetes, runbooks, drills and the dashboards' build.

On a twin the history lies on its simulated clock (Prometheus stamps samples with wall time; the twin says
how its clock ran); on a cluster the two are the same.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from console.catalog.model import Catalog, Event, routing_configmap
from console.fleet import queries as q
from console.fleet.snapshot import FleetSnapshot
from console.readiness.assess import MIN_POINTS, Inputs, drilled_runbooks
from console.readiness.forecast import Series, resample
from console.runbooks.plan import Sources
from console.sources.twin import Timeline

# What the forecast reads back, in the fleet's time: three weeks, so that peak-ensemble calibrates at any lead
# (it needs 12 to 18 days of analogs, by lead); a shorter retention is read as far as it goes.
HISTORY = timedelta(days=21)
MIN_STEP_S = 300.0  # the finest history step in the fleet's time
RANGE_POINTS = 1500  # points per range query


def request_history(
    src: Sources, timeline: Timeline, now: datetime, scrape_s: float, history: timedelta = HISTORY
) -> dict[tuple[str, str], Series]:
    """Requests per second per (service, region) over the last `history` of the fleet's time."""
    wall_end = time.time()
    # Not before the twin started (a cluster's clock starts at the epoch).
    wall_start = max(timeline.wall_at(now - history), timeline.segments[0][0])
    wall_start = min(wall_start, wall_end - 4 * scrape_s)
    wall_step = max((wall_end - wall_start) / RANGE_POINTS, 0.001)
    # A rate needs a few scrapes in its window; wider windows smooth the curve less than they would
    # at a finer step.
    window = max(wall_step, 4 * scrape_s)
    sim_span = (now - timeline.sim_at(wall_start)).total_seconds()
    if sim_span >= 3600:
        # A backfilled past holds a sample every MIN_STEP_S of fleet time: over an hour or more, the window
        # spans two of them (finer would read nothing there; the forecast resamples coarser anyway).
        speed = timeline.segments[0][2] or 1.0
        window = max(window, 2 * MIN_STEP_S / speed)
    ranges = src.prom.query_range(q.service_rps_history(window), wall_start, wall_end, wall_step)
    # Coarse enough for Prophet on weeks, fine enough that minutes of history still make a few points.
    step = max(sim_span / RANGE_POINTS, min(MIN_STEP_S, sim_span / MIN_POINTS))
    out = {}
    for r in ranges:
        key = (r.labels.get("service", ""), r.labels.get("region", ""))
        # A rate over the window before t is the rate at the window's middle.
        points = [(timeline.sim_at(t - window / 2).timestamp(), v) for t, v in r.samples]
        out[key] = resample(points, step)
    return out


def tokens_per_request(
    src: Sources, timeline: Timeline, now: datetime, scrape_s: float
) -> dict[tuple[str, str], float]:
    """Generated tokens per request over the fleet's last day (LLM services)."""
    day_wall = max(time.time() - timeline.wall_at(now - timedelta(days=1)), 4 * scrape_s)
    return {
        (s.labels.get("service", ""), s.labels.get("region", "")): s.value
        for s in src.prom.query(q.service_tokens_per_request(day_wall))
        if math.isfinite(s.value) and s.value > 0  # NaN where no request was served
    }


def fallbacks(catalog: Catalog, event: Event, src: Sources) -> dict[tuple[str, str], str]:
    """(service, region) -> "" where the fallback the catalog names exists in Kubernetes, else why not."""
    from console.sources.kube import KubeError

    out = {}
    for name in event.services:
        svc = catalog.service(name)
        for region in svc.regions:
            if svc.fallback.mode == "rules":
                kind, obj = "configmap", routing_configmap(svc)
            elif svc.fallback.mode == "cpu" and svc.fallback.deployment:
                kind, obj = "deployment", f"{svc.fallback.deployment}-{region}"
            elif svc.fallback.mode == "cpu":
                out[(name, region)] = "no CPU deployment named in the catalog"
                continue
            else:
                continue
            try:
                found = src.kube.get(kind, svc.namespace, obj)
            except KubeError as e:
                out[(name, region)] = f"{kind} {obj}: {e.reason or e.code}"
                continue
            # The rules fallback is switched by the config map's `mode` key: without it there is no switch.
            missing = kind == "configmap" and "mode" not in (found.get("data") or {})
            out[(name, region)] = f"config map {obj} has no mode key" if missing else ""
    return out


def dashboards_problem(catalog: Catalog, schema: Path) -> str:
    """ "" when every dashboard builds and passes Grafana's schema, else the first problems."""
    from console.codegen.dashboard_lint import check_schema
    from console.codegen.dashboards import DashboardError, build_all

    try:
        built = build_all(catalog)
    except DashboardError as e:
        return f"build failed: {e}"
    if not schema.exists():
        return f"schema {schema} not found"
    bad = [f"{f.target}: {f.output.splitlines()[0]}" for f in check_schema(built, schema) if not f.ok]
    return "; ".join(bad[:3]) + (f" (+{len(bad) - 3} more)" if len(bad) > 3 else "")


def gather(
    catalog: Catalog,
    event: Event,
    src: Sources,
    snapshot: FleetSnapshot,
    *,
    runbooks: set[str],
    drill_records: list[dict[str, Any]],
    schema: Path,
    timeline: Timeline,
    say: Callable[[str], None] = lambda line: None,
) -> Inputs:
    from console.drills.report import build_report, drills

    now = timeline.sim_at(time.time())
    scrape_s, _ = src.prom.intervals()
    say("reading request history …")
    history = request_history(src, timeline, now, scrape_s)
    tokens = tokens_per_request(src, timeline, now, scrape_s)
    try:
        rules, rules_error = src.prom.alert_rules(), ""
    except Exception as e:  # the checklist says so; the verdicts stand without it
        rules, rules_error = None, str(e)
    say("checking fallbacks and dashboards …")
    reports = [r for d in drills(drill_records) if (r := build_report(drill_records, d))]
    return Inputs(
        now=now,
        wall_now=datetime.now(UTC),
        history=history,
        tokens_per_request=tokens,
        snapshot=snapshot,
        alert_rules=rules,
        alert_rules_error=rules_error,
        fallbacks=fallbacks(catalog, event, src),
        runbooks=runbooks,
        drilled=drilled_runbooks(reports),
        dashboards=dashboards_problem(catalog, schema),
    )
