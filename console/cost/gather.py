"""What a cost report reads from Prometheus, placed on the fleet's clock: each pod's GPUs and their busy
over the period, the pools' allocatable GPUs, which service or Job each pod belonged to, GPU memory peaks and
quotas. Then the priced report, the month's budgets and the savings."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from console.catalog.model import Catalog, kube_resource_name
from console.cost.attribution import Grid, PodSeries, allocate, grid, namespace_peaks, peak_hour_gpu_hours
from console.cost.budgets import Budget, budgets, month_bounds
from console.cost.export import Line, Report, group
from console.cost.pricing import price
from console.cost.savings import Saving, recommend
from console.fleet import queries as q
from console.sources.prometheus import Range, Sample
from console.sources.twin import Timeline
from console.timefmt import parse_duration

MAX_POINTS = 2000  # grid points per range query: Prometheus refuses over 11,000
PEAK_HOURS = (15, 3)  # local hours of the upper half of the short-video day, which peaks at 21:00


class Prom(Protocol):
    def query(self, promql: str, at: float | None = None) -> list[Sample]: ...

    def query_range(self, promql: str, start: float, end: float, step_s: float) -> list[Range]: ...

    def intervals(self) -> tuple[float, float]: ...


@dataclass(frozen=True)
class Period:
    """A report's rows and what the savings need beside them."""

    report: Report
    measured_from: datetime  # where Prometheus' history of the period starts (its start, or later)
    quotas: dict[str, float]
    namespace_peak: dict[str, float]
    memory_peak: dict[tuple[str, str], float]
    peak_gpu_hours: dict[tuple[str, str], float]


@dataclass(frozen=True)
class Month:
    """The month so far: its report, each team's budget, and the savings found in it."""

    period: Period
    budgets: list[Budget]
    savings: list[Saving]
    now: datetime
    teams: dict[str, Line]  # the month's GPU-hours and costs by team (`__idle__` included)

    @property
    def measured_h(self) -> float:
        """Hours of the month that Prometheus' history holds."""
        return _hours_since(self.period.measured_from, self.now)


def _is_peak(catalog: Catalog) -> Callable[[str, float], bool]:
    offsets = {r.name: r.utc_offset_hours for r in catalog.regions}
    lo, hi = PEAK_HOURS

    def peak(region: str, t: float) -> bool:
        hour = (t / 3600 + offsets.get(region, 0.0)) % 24
        return hour >= lo or hour < hi

    return peak


def read_period(
    prom: Prom,
    catalog: Catalog,
    timeline: Timeline,
    start: datetime,
    end: datetime,
    step_s: float | None = None,
    say: Callable[[str], None] = lambda _: None,
) -> Period:
    """The priced rows of [start, end) in the fleet's time."""
    now = time.time()
    wall_start = max(timeline.wall_at(start), timeline.segments[0][0])
    scrape_s = prom.intervals()[0]
    wall_end = min(timeline.wall_at(end), now)
    if wall_end <= wall_start:
        raise ValueError(f"{start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M}: Prometheus has no samples in it")
    # Where the history starts: a coarse probe first, so a month asked of a day-old Prometheus is read at
    # the day's resolution, not the month's. Each probe point counts the samples in the step before it, and
    # the last point is the end: together they cover the whole period, however coarse the step.
    probe_step = max(math.ceil((wall_end - wall_start) / 500), math.ceil(scrape_s))
    probe_start = wall_end - probe_step * math.ceil((wall_end - wall_start) / probe_step)
    probe = prom.query_range(q.history_probe(f"{probe_step}s"), probe_start, wall_end, probe_step)
    first = min((r.samples[0][0] for r in probe if r.samples), default=None)
    if first is None:
        raise ValueError(f"{start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M}: Prometheus has no fleet samples in it")
    wall_start = max(wall_start, first - probe_step)
    # Milliseconds: what the range query sends, so the grid here is Prometheus' grid.
    step = max(0.001, round(step_s or max(scrape_s, (wall_end - wall_start) / MAX_POINTS), 3))
    # A reading stands until the next grid point: the grid runs two steps past the end so the last one inside
    # the period is read (its weight is cut at the end).
    wall_end = min(wall_end + 2 * step, now)
    sim = lambda w: timeline.sim_at(w).timestamp()  # noqa: E731
    g = grid(sim, wall_start, wall_end, step, start.timestamp(), end.timestamp(), timeline.elapsed)
    mig = catalog.mig_per_gpu()
    say(f"reading GPU requests {step:g}s apart over {(wall_end - wall_start) / 60:.0f} min of Prometheus history …")
    pods = _pods(prom.query_range(q.pod_gpus(mig), wall_start, wall_end, step), g)
    for r in prom.query_range(q.POD_GPU_BUSY_PCT, wall_start, wall_end, step):
        p = pods.get((r.labels.get("namespace", ""), r.labels.get("pod", "")))
        if p:
            p.busy_pct.update({g.index(t): v for t, v in r.samples if math.isfinite(v)})
            p.busy_pct.pop(-1, None)
    alloc: dict[tuple[str, str, str], dict[int, float]] = {}
    for r in prom.query_range(q.pool_gpus_allocatable(mig), wall_start, wall_end, step):
        key = (r.labels.get("pool", ""), r.labels.get("region", ""), r.labels.get("model", ""))
        alloc[key] = {k: v for t, v in r.samples if (k := g.index(t)) >= 0}
    window = f"{max(1, math.ceil(wall_end - wall_start))}s"
    at = wall_end
    service_of = {
        (s.labels.get("namespace", ""), s.labels.get("pod", "")): (
            s.labels.get("label_gpuops_io_service", ""),
            s.labels.get("label_gpuops_io_region", ""),
        )
        for s in prom.query(q.pod_service(window), at)
    }
    job_of = {
        (s.labels.get("namespace", ""), s.labels.get("pod", "")): s.labels.get("created_by_name", "")
        for s in prom.query(q.pod_job(window), at)
    }
    memory = {
        (s.labels.get("namespace", ""), s.labels.get("pod", "")): s.value
        for s in prom.query(q.pod_gpu_memory_peak(window), at)
        if math.isfinite(s.value)
    }
    quotas: dict[str, float] = {}
    for s in prom.query(q.QUOTA_GPUS_HARD, at):
        ns = s.labels.get("namespace", "")
        share = 1 / mig.get(kube_resource_name(s.labels.get("resource", "").removeprefix("requests.")), 1)
        # A namespace may cap whole GPUs and MIG instances, each to the same GPUs: the largest is its quota.
        quotas[ns] = max(quotas.get(ns, 0.0), s.value * share)

    def team_of(ns: str) -> str:
        t = catalog.team_of_namespace(ns)
        return t.name if t else ns

    series = list(pods.values())
    rows = allocate(series, alloc, g, team_of=team_of, service_of=service_of, job_of=job_of)
    period_h = g.seconds / 3600
    month_h = _month_hours(end)
    priced = price(catalog, rows, period_h, month_h)
    measured_from = datetime.fromtimestamp(max(start.timestamp(), sim(wall_start)), UTC)
    late = measured_from if measured_from > start else None
    report = Report(start, end, catalog.prices.currency, tuple(priced), step * _speed(g), late)
    return Period(
        report,
        measured_from,
        quotas,
        namespace_peaks(series, g),
        memory,
        peak_hour_gpu_hours(series, g, _is_peak(catalog)),
    )


def _speed(g: Grid) -> float:
    """Fleet seconds per wall second over the grid (1 on a cluster)."""
    span = g.fleet_times[-1] - g.fleet_times[0] if len(g.fleet_times) > 1 else 0.0
    return span / (g.step * (len(g.fleet_times) - 1)) if span > 0 else 1.0


def _hours_since(a: datetime, b: datetime) -> float:
    return max(1e-9, (b - a).total_seconds() / 3600)


def _month_hours(t: datetime) -> float:
    a, b = month_bounds(t)
    return (b - a).total_seconds() / 3600


def _pods(ranges: list[Range], g: Grid) -> dict[tuple[str, str], PodSeries]:
    out: dict[tuple[str, str], PodSeries] = {}
    for r in ranges:
        lab = r.labels
        key = (lab.get("namespace", ""), lab.get("pod", ""))
        p = out.get(key)
        if p is None:
            p = out[key] = PodSeries(key[0], key[1], lab.get("pool", ""), lab.get("region", ""), lab.get("model", ""))
        for t, v in r.samples:
            k = g.index(t)
            if k >= 0:
                p.gpus[k] = p.gpus.get(k, 0.0) + v
    return out


def read_month(prom: Prom, catalog: Catalog, timeline: Timeline, say: Callable[[str], None] = lambda _: None) -> Month:
    """The month to date on the fleet's clock, its budgets and savings."""
    now = timeline.sim_at(time.time()).astimezone(UTC)
    start, _ = month_bounds(now)
    period = read_period(prom, catalog, timeline, start, now, say=say)
    rows = list(period.report.rows)
    measured_h = _hours_since(period.measured_from, now)
    found = recommend(
        catalog,
        rows,
        measured_h,
        _month_hours(now),
        quotas=period.quotas,
        namespace_peak=period.namespace_peak,
        memory_peak=period.memory_peak,
        peak_gpu_hours=period.peak_gpu_hours,
    )
    teams = {ln.key: ln for ln in group(rows, "team")}
    return Month(period, budgets(catalog, rows, now, period.measured_from), found, now, teams)


def parse_when(text: str, now: datetime) -> datetime:
    """`now`, `month` (its first day), `-90m` / `-6h` / `-7d` before now, or an ISO 8601 date or time (UTC
    unless it says otherwise)."""
    t = text.strip()
    if t == "now":
        return now
    if t == "month":
        return month_bounds(now)[0]
    try:
        if t.startswith("-"):
            return now - timedelta(seconds=parse_duration(t[1:]))
        when = datetime.fromisoformat(t.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r}: not a time (now, month, -6h, -7d, or ISO 8601 like 2026-11-01T00:00Z)") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)
