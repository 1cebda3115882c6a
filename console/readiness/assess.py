"""An event's readiness from what `gather` read: a forecast and a verdict per service x region, the checklist,
and the runbook plans that close each gap. Pure: no source is called here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from console.catalog.model import Catalog, Event, Service
from console.fleet.snapshot import FleetSnapshot
from console.readiness.forecast import DAY_S, Forecast, Series, last_value, prophet, seasonal_naive
from console.readiness.sizing import Room, Sizing, Verdict, request_cost, size

MIN_POINTS = 24  # fewer history points than this: no model, the last value times the multiplier
FORECAST_POINTS = 400  # points over the event window


@dataclass(frozen=True)
class Inputs:
    """Everything readiness reads, at one moment of the fleet's clock."""

    now: datetime  # the fleet's time (a twin's simulated clock)
    wall_now: datetime  # the operator's (drill reports are stamped in it)
    history: dict[tuple[str, str], Series]  # (service, region) -> requests/s over the fleet's time
    tokens_per_request: dict[tuple[str, str], float]
    snapshot: FleetSnapshot
    alert_rules: list[tuple[str, str, dict[str, str]]] | None  # (name, query, labels); None: not readable
    alert_rules_error: str
    fallbacks: dict[tuple[str, str], str]  # (service, region) -> "" if its fallback exists, else why not
    runbooks: set[str]
    drilled: dict[str, datetime]  # runbook -> when a passed drill last ran it (wall time)
    dashboards: str  # "" if they build and pass the schema, else why not


@dataclass(frozen=True)
class Demand:
    method: str
    peak_rps: float
    upper_rps: float
    baselines: dict[str, float]  # method -> peak over the window
    history_points: int
    note: str = ""


@dataclass(frozen=True)
class Row:
    service: str
    region: str
    verdict: Verdict
    demand: Demand | None
    sizing: Sizing | None
    reason: str


@dataclass(frozen=True)
class Item:
    name: str
    ok: bool
    reason: str


@dataclass(frozen=True)
class Action:
    """A runbook plan that closes a gap: what `gpuops runbook run` (or the console's `r`) takes."""

    runbook: str
    params: dict[str, str]
    why: str

    def command(self) -> str:
        args = " ".join(f"{k}={v}" for k, v in self.params.items())
        return f"gpuops runbook run {self.runbook} {args}".rstrip()


@dataclass(frozen=True)
class Readiness:
    event: Event
    now: datetime
    status: str  # upcoming | live | ended
    rows: tuple[Row, ...] = ()
    checklist: tuple[Item, ...] = ()
    actions: tuple[Action, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def countdown(self) -> timedelta:
        return max(timedelta(0), self.event.start - self.now)

    @property
    def verdict(self) -> str:
        """The event's: ENDED, or its worst service's (NO DATA counts as NOT READY: nobody can say it holds)."""
        if self.status == "ended":
            return "ENDED"
        order = [Verdict.NOT_READY, Verdict.NO_DATA, Verdict.AT_RISK, Verdict.READY]
        worst = min((order.index(r.verdict) for r in self.rows), default=order.index(Verdict.READY))
        verdict = order[worst]
        return str(Verdict.NOT_READY if verdict is Verdict.NO_DATA else verdict)

    def failed_items(self) -> list[Item]:
        return [i for i in self.checklist if not i.ok]


Forecaster = Callable[[Series, Sequence[float], Sequence[tuple[str, float, float]]], Forecast]


def _prophet(history: Series, future: Sequence[float], holidays: Sequence[tuple[str, float, float]]) -> Forecast:
    return prophet(history, future, holidays=holidays)


def assess(catalog: Catalog, event: Event, inp: Inputs, forecaster: Forecaster = _prophet) -> Readiness:
    if inp.now >= event.end:
        note = f"{event.name} ended {event.end:%Y-%m-%d %H:%M} UTC: nothing to size; its verdicts are history"
        return Readiness(event, inp.now, "ended", notes=(note,))
    status = "live" if inp.now >= event.start else "upcoming"
    window_start = max(event.start, inp.now)
    span = (event.end - window_start).total_seconds()
    future = [window_start.timestamp() + span * i / (FORECAST_POINTS - 1) for i in range(FORECAST_POINTS)]
    # Earlier events in the history are Prophet holidays: their spikes must not lift the baseline.
    past = [(e.name, e.start.timestamp(), e.end.timestamp()) for e in catalog.events if e.start < inp.now]
    rows: list[Row] = []
    for name in event.services:
        svc = catalog.service(name)
        for region in svc.regions:
            rows.append(_row(catalog, event, svc, region, inp, future, past, forecaster))
    rooms = _rooms(inp.snapshot)
    # The gaps take the free GPUs and quota room in team priority order: two services short in one pool
    # cannot both count on the same free GPUs.
    order = sorted(range(len(rows)), key=lambda i: -catalog.team(catalog.service(rows[i].service).team).priority)
    for i in order:
        rows[i] = _with_room(catalog, event, rows[i], rooms)
    # One plan per runbook and parameters: two services short in a region share its reclaim.
    actions = list({(a.runbook, tuple(a.params.items())): a for a in _actions(catalog, rows)}.values())
    checklist = _checklist(catalog, event, inp, rows)
    return Readiness(event, inp.now, status, tuple(rows), tuple(checklist), tuple(actions))


def forecast_demand(
    history: Series | None,
    future: Sequence[float],
    multiplier: float,
    past: Sequence[tuple[str, float, float]],
    forecaster: Forecaster = _prophet,
) -> Demand | None:
    """The event window's peak: the model's baseline there times the catalog's multiplier (the event has not
    happened, so its effect is the prior), with the seasonal-naive and last-value baselines beside it."""
    if history is None or len(history) == 0:
        return None
    naive_last = last_value(history, future)
    baselines = {"last-value": naive_last.peak() * multiplier}
    if history.span_s >= DAY_S:
        baselines["seasonal-naive"] = seasonal_naive(history, future, DAY_S).peak() * multiplier
    if len(history) < MIN_POINTS:
        hours = history.span_s / 3600
        note = f"{len(history)} points ({hours:.1f} h) of history: last value x {multiplier:g}, no model"
        return Demand(
            "last-value", baselines["last-value"], naive_last.peak_upper() * multiplier, baselines, len(history), note
        )
    f = forecaster(history, future, past)
    note = "" if history.span_s >= 2 * DAY_S else f"{history.span_s / 3600:.1f} h of history: no daily season"
    return Demand(f.method, f.peak() * multiplier, f.peak_upper() * multiplier, baselines, len(history), note)


def _row(
    catalog: Catalog,
    event: Event,
    svc: Service,
    region: str,
    inp: Inputs,
    future: Sequence[float],
    past: Sequence[tuple[str, float, float]],
    forecaster: Forecaster,
) -> Row:
    demand = forecast_demand(inp.history.get((svc.name, region)), future, event.multiplier, past, forecaster)
    if demand is None:
        why = f"no request history for {svc.name} in {region} (service_requests_total): cannot forecast its peak"
        return Row(svc.name, region, Verdict.NO_DATA, None, None, why)
    cost = request_cost(catalog, svc, region, inp.tokens_per_request.get((svc.name, region)))
    current = next(
        (s.replicas_available for s in inp.snapshot.services if s.service == svc.name and s.region == region), 0
    )
    sizing = size(svc, region, demand.peak_rps, cost, event.buffer, current, Room(0.0, None))
    return Row(svc.name, region, sizing.verdict, demand, sizing, "")


def _rooms(snap: FleetSnapshot) -> dict[object, float | None]:
    """Free GPUs per (pool, region) and GPU quota room per namespace (None: no quota)."""
    free: dict[object, float | None] = {}
    for p in snap.pools:
        free[(p.pool, p.region)] = max(0.0, p.gpus_total - p.gpus_allocated)
    for q in snap.quotas:
        free[q.namespace] = None if q.gpu_hard is None else max(0.0, q.gpu_hard - q.gpu_used)
    return free


def _with_room(catalog: Catalog, event: Event, row: Row, rooms: dict[object, float | None]) -> Row:
    if row.sizing is None or row.demand is None:
        return row
    svc = catalog.service(row.service)
    pool_key = (svc.pool, row.region)
    pool_free = rooms.get(pool_key) or 0.0
    quota = rooms.get(svc.namespace)
    s = size(
        svc,
        row.region,
        row.demand.peak_rps,
        row.sizing.cost,
        event.buffer,
        row.sizing.current_replicas,
        Room(pool_free, quota),
    )
    if s.gap_gpus and s.fillable:
        rooms[pool_key] = pool_free - s.gap_gpus
        if quota is not None:
            rooms[svc.namespace] = quota - s.gap_gpus
    return Row(row.service, row.region, s.verdict, row.demand, s, _reason(s, pool_free, quota))


def _reason(s: Sizing, pool_free: float, quota: float | None) -> str:
    if s.verdict is Verdict.READY:
        return f"{s.current_replicas} ready >= {s.required_replicas} required"
    where = "inside the buffer" if s.verdict is Verdict.AT_RISK else "short of the peak"
    room = f"pool has {pool_free:g} free GPUs" + ("" if quota is None else f", quota room {quota:g}")
    return (
        f"{s.current_replicas} ready < {s.required_replicas} required ({where}): short {s.gap_replicas} replicas, "
        f"{s.gap_gpus:g} GPUs; {room}"
    )


def _actions(catalog: Catalog, rows: list[Row]) -> list[Action]:
    out = []
    for r in rows:
        s = r.sizing
        if s is None or s.verdict is Verdict.READY:
            continue
        svc = catalog.service(r.service)
        if s.fillable:
            out.append(
                Action(
                    "pre-scale",
                    {"service": r.service, "region": r.region, "replicas": str(s.required_replicas)},
                    f"{r.service} {r.region}: {s.current_replicas} -> {s.required_replicas} replicas "
                    f"({s.gap_gpus:g} GPUs from the pool's free ones)",
                )
            )
            continue
        # The pool cannot give the gap: borrow idle GPUs from batch work, then pre-scale; else degrade.
        out.append(
            Action(
                "reclaim-idle-gpus",
                {"region": r.region},
                f"{r.service} {r.region}: the pool and quota cannot give {s.gap_gpus:g} GPUs; free idle ones first",
            )
        )
        out.append(
            Action(
                "pre-scale",
                {"service": r.service, "region": r.region, "replicas": str(s.required_replicas)},
                f"{r.service} {r.region}: then {s.current_replicas} -> {s.required_replicas} replicas",
            )
        )
        if svc.fallback.mode == "rules":
            out.append(
                Action(
                    "degrade-llm-to-rules",
                    {"service": r.service, "region": r.region},
                    f"{r.service} {r.region}: planned degrade if the GPUs cannot be found "
                    f"(GPU load x {svc.fallback.gpu_load_factor:g})",
                )
            )
        elif svc.fallback.mode == "cpu":
            out.append(
                Action(
                    "gpu-to-cpu-fallback",
                    {"service": r.service, "region": r.region},
                    f"{r.service} {r.region}: planned move to its CPU deployment if the GPUs cannot be found",
                )
            )
    return out


# Runbooks an event leans on: always pre-scale and reclaim; the fallbacks its services have; failover.
def _relevant_runbooks(catalog: Catalog, event: Event) -> list[str]:
    names = ["pre-scale", "reclaim-idle-gpus", "region-failover"]
    modes = {catalog.service(n).fallback.mode for n in event.services}
    if "rules" in modes:
        names.append("degrade-llm-to-rules")
    if "cpu" in modes:
        names.append("gpu-to-cpu-fallback")
    return names


def _checklist(catalog: Catalog, event: Event, inp: Inputs, rows: list[Row]) -> list[Item]:
    items: list[Item] = []
    for name in event.services:
        items.append(_alerts_item(name, event, inp))
    items.append(Item("dashboards build and lint", not inp.dashboards, inp.dashboards or "built, schema valid"))
    for name in event.services:
        items.append(_fallback_item(catalog.service(name), inp))
    window = timedelta(days=event.drilled_within_days)
    for rb in _relevant_runbooks(catalog, event):
        if rb not in inp.runbooks:
            items.append(Item(f"runbook {rb}", False, f"no runbooks/{rb}.yaml"))
            continue
        when = inp.drilled.get(rb)
        if when is None:
            items.append(Item(f"runbook {rb}", False, "exists, never run in a passed drill"))
        elif inp.wall_now - when > window:
            days = (inp.wall_now - when).days
            items.append(Item(f"runbook {rb}", False, f"last drilled {days} days ago (window {window.days} days)"))
        else:
            items.append(Item(f"runbook {rb}", True, f"drilled {when:%Y-%m-%d %H:%M} UTC, passed"))
    items.extend(_quota_items(catalog, event, inp.snapshot, rows))
    return items


def _alerts_item(service: str, event: Event, inp: Inputs) -> Item:
    name = f"alerts for {service}"
    if inp.alert_rules is None:
        return Item(name, False, f"Prometheus rules not readable: {inp.alert_rules_error}")
    needle = f'service="{service}"'
    found = sorted({n for n, query, _ in inp.alert_rules if needle in query})
    capacity = any(labels.get("event") == event.name and needle in query for n, query, labels in inp.alert_rules)
    if not found:
        return Item(name, False, "no alerting rule loaded in Prometheus selects it")
    if not capacity:
        return Item(name, False, f"{', '.join(found)} loaded, but no capacity alert for {event.name}")
    return Item(name, True, ", ".join(found))


def _fallback_item(svc: Service, inp: Inputs) -> Item:
    name = f"fallback for {svc.name}"
    if svc.fallback.mode == "none":
        return Item(name, False, "none in the catalog (fallback.mode: none): no way to shed GPU load")
    missing = [f"{r}: {why}" for r in svc.regions if (why := inp.fallbacks.get((svc.name, r), "not checked"))]
    if missing:
        return Item(name, False, "; ".join(missing))
    what = "rules model (routing config map)" if svc.fallback.mode == "rules" else "CPU deployment"
    return Item(name, True, f"{what} in {', '.join(svc.regions)}")


def _quota_items(catalog: Catalog, event: Event, snap: FleetSnapshot, rows: list[Row]) -> list[Item]:
    gaps: dict[str, float] = {}
    for r in rows:
        if r.sizing is not None:
            ns = catalog.service(r.service).namespace
            gaps[ns] = gaps.get(ns, 0.0) + r.sizing.gap_gpus
    items = []
    for ns, gap in sorted(gaps.items()):
        q = next((q for q in snap.quotas if q.namespace == ns), None)
        if q is None or q.gpu_hard is None:
            items.append(Item(f"quota {ns}", True, f"no GPU quota; needs {gap:g} more GPUs"))
            continue
        room = q.gpu_hard - q.gpu_used
        ok = gap <= room + 1e-9
        items.append(
            Item(f"quota {ns}", ok, f"needs {gap:g} more GPUs, quota leaves {room:g} ({q.gpu_used:g}/{q.gpu_hard:g})")
        )
    return items


def drilled_runbooks(reports: Sequence[object]) -> dict[str, datetime]:
    """Runbook -> when a passed drill last ran it, from drill reports (`console.drills.report.DrillReport`)."""
    out: dict[str, datetime] = {}
    for rep in reports:
        if getattr(rep, "status", "") != "passed" or not getattr(rep, "ended", ""):
            continue
        ended = datetime.fromisoformat(rep.ended)  # type: ignore[attr-defined]
        for r in rep.runbook_runs:  # type: ignore[attr-defined]
            if r.get("event") == "runbook_start":
                name = r["runbook"]
                out[name] = max(out.get(name, ended), ended)
    return out
