"""An event's readiness from what `gather` read: a forecast and a verdict per service x region, the checklist,
and the runbook plans that close each gap. Pure: no source is called here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from console.catalog.model import Catalog, Event, Service
from console.drills.report import DrillReport
from console.fleet.sizing import Cost, Room, Sizing, Verdict, request_cost, size
from console.fleet.snapshot import FleetSnapshot, QuotaRow
from console.readiness.demand import Demand, PastEvent, PeakForecaster, forecast_demand
from console.readiness.forecast import Series

MIN_POINTS = 24  # history points gathered over even the shortest history: a few per hour of it


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
class Row:
    service: str
    region: str
    verdict: Verdict
    demand: Demand | None
    sizing: Sizing | None
    reason: str
    batch_gpus: float = 0.0  # of the gap, GPUs that only holding batch (hold-batch) frees


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
        verdicts = {r.verdict for r in self.rows}
        if verdicts & {Verdict.NOT_READY, Verdict.NO_DATA}:
            return str(Verdict.NOT_READY)
        return str(Verdict.AT_RISK if Verdict.AT_RISK in verdicts else Verdict.READY)

    def failed_items(self) -> list[Item]:
        return [i for i in self.checklist if not i.ok]


def assess(catalog: Catalog, event: Event, inp: Inputs, forecaster: PeakForecaster | None = None) -> Readiness:
    if inp.now >= event.end:
        note = f"{event.name} ended {event.end:%Y-%m-%d %H:%M} UTC: nothing to size; its verdicts are history"
        return Readiness(event, inp.now, "ended", notes=(note,))
    status = "live" if inp.now >= event.start else "upcoming"
    wanted = [(catalog.service(name), region) for name in event.services for region in catalog.service(name).regions]
    demands = {(svc.name, region): _demand(catalog, event, svc, region, inp, forecaster) for svc, region in wanted}
    free, quota = _pool_free(inp.snapshot), {q.namespace: _quota_room(q) for q in inp.snapshot.quotas}
    batch = batch_held(catalog, inp.snapshot)
    notes = (_batch_note(catalog, batch),) if batch else ()
    # The gaps take the free GPUs and quota room in team priority order: two services short in one pool
    # cannot both count on the same free GPUs (nor on the same GPUs batch gives back).
    sized: dict[tuple[str, str], Row] = {}
    for svc, region in sorted(wanted, key=lambda w: -catalog.team(w[0].team).priority):
        sized[(svc.name, region)] = _row(svc, region, event, inp, demands[(svc.name, region)], free, quota, batch)
    rows = [sized[(svc.name, region)] for svc, region in wanted]
    # One plan per runbook and parameters: two services short in a region share its reclaim.
    actions = list({(a.runbook, tuple(a.params.items())): a for a in _actions(catalog, rows)}.values())
    checklist = _checklist(catalog, event, inp, rows)
    return Readiness(event, inp.now, status, tuple(rows), tuple(checklist), tuple(actions), notes)


def _demand(
    catalog: Catalog,
    event: Event,
    svc: Service,
    region: str,
    inp: Inputs,
    forecaster: PeakForecaster | None,
) -> tuple[Demand, Cost] | None:
    past = [PastEvent(e.name, e.start.timestamp(), e.end.timestamp()) for e in catalog.events
            if e.end <= inp.now and svc.name in e.services]  # fmt: skip
    demand = forecast_demand(
        inp.history.get((svc.name, region)),
        event.start.timestamp(),
        event.end.timestamp(),
        inp.now.timestamp(),
        event.multiplier,
        forecaster,
        past,
    )
    if demand is None:
        return None
    return demand, request_cost(catalog, svc, region, inp.tokens_per_request.get((svc.name, region)))


def _pool_free(snap: FleetSnapshot) -> dict[tuple[str, str], float]:
    """GPUs no pod holds, per (pool, region)."""
    return {(p.pool, p.region): max(0.0, p.gpus_total - p.gpus_allocated) for p in snap.pools}


def batch_held(catalog: Catalog, snap: FleetSnapshot) -> dict[tuple[str, str], float]:
    """GPUs admitted batch holds in the queues the catalog marks hold_for_events, per (pool, region) of their
    flavors: what `hold-batch` frees as that batch finishes or is evicted."""
    q = catalog.queues
    if q is None:
        return {}
    held = set(q.held_for_events())
    where = {f.name: (f.pool, f.region) for f in q.flavors}
    out: dict[tuple[str, str], float] = {}
    for row in snap.queues:
        if row.cluster_queue in held:
            for flavor, used, _ in row.flavors:
                if flavor in where and used > 0:
                    out[where[flavor]] = out.get(where[flavor], 0.0) + used
    return out


def _batch_note(catalog: Catalog, batch: dict[tuple[str, str], float]) -> str:
    by_region: dict[str, list[str]] = {}
    for (pool, region), gpus in sorted(batch.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        by_region.setdefault(region, []).append(f"{gpus:g} ({pool})")
    total = sum(batch.values())
    regions = "; ".join(f"{r} {', '.join(parts)}" for r, parts in by_region.items())
    return f"hold-batch frees {total:g} GPUs that batch holds now: {regions}"


def _quota_room(q: QuotaRow) -> float | None:
    """GPUs the namespace's quota still allows (None: no GPU quota)."""
    return None if q.gpu_hard is None else max(0.0, q.gpu_hard - q.gpu_used)


def _row(
    svc: Service,
    region: str,
    event: Event,
    inp: Inputs,
    found: tuple[Demand, Cost] | None,
    free: dict[tuple[str, str], float],
    quota: dict[str, float | None],
    batch: dict[tuple[str, str], float],
) -> Row:
    """Size one service in one region against the room left (the pool's free GPUs, then those holding batch
    frees), and take its gap out of that room."""
    if found is None:
        why = f"no request history for {svc.name} in {region} (service_requests_total): cannot forecast its peak"
        return Row(svc.name, region, Verdict.NO_DATA, None, None, why)
    demand, cost = found
    current = next(
        (s.replicas_available for s in inp.snapshot.services if s.service == svc.name and s.region == region), 0
    )
    where = (svc.pool, region)
    pool_free, room, held = free.get(where, 0.0), quota.get(svc.namespace), batch.get(where, 0.0)
    s = size(svc, region, demand.peak_rps, cost, event.buffer, current, Room(pool_free + held, room))
    from_batch = max(0.0, s.gap_gpus - pool_free) if s.fillable else 0.0
    if s.gap_gpus and s.fillable:
        free[where] = max(0.0, pool_free - s.gap_gpus)
        batch[where] = held - from_batch
        if room is not None:
            quota[svc.namespace] = room - s.gap_gpus
    return Row(svc.name, region, s.verdict, demand, s, _reason(s, pool_free, room, held), from_batch)


def _reason(s: Sizing, pool_free: float, quota: float | None, batch: float = 0.0) -> str:
    if s.verdict is Verdict.READY:
        return f"{s.current_replicas} ready >= {s.required_replicas} required"
    where = "inside the buffer" if s.verdict is Verdict.AT_RISK else "short of the peak"
    held = f" + {batch:g} batch holds (hold-batch frees them)" if batch else ""
    room = f"pool has {pool_free:g} free GPUs{held}" + ("" if quota is None else f", quota room {quota:g}")
    return (
        f"{s.current_replicas} ready < {s.required_replicas} required ({where}): short {s.gap_replicas} replicas, "
        f"{s.gap_gpus:g} GPUs; {room}"
    )


def _actions(catalog: Catalog, rows: list[Row]) -> list[Action]:
    out: list[Action] = []
    for r in rows:
        s = r.sizing
        if s is None or s.verdict is Verdict.READY:
            continue

        def plan(runbook: str, why: str, r: Row = r, **params: str) -> Action:
            return Action(
                runbook, {"service": r.service, "region": r.region, **params}, f"{r.service} {r.region}: {why}"
            )

        moves = f"{s.current_replicas} -> {s.required_replicas} replicas"
        if s.fillable and r.batch_gpus:
            out.append(
                Action("hold-batch", {}, f"{r.service} {r.region}: {r.batch_gpus:g} of its GPUs are batch's now")
            )
        if s.fillable:
            out.append(plan("pre-scale", f"{moves} ({s.gap_gpus:g} GPUs from the pool's free ones)",
                            replicas=str(s.required_replicas)))  # fmt: skip
            continue
        # The pool cannot give the gap: borrow idle GPUs from batch work, then pre-scale; else degrade.
        gap = f"the pool and quota cannot give {s.gap_gpus:g} GPUs; free idle ones first"
        # (reclaim-idle-gpus takes the GPUs to free, not a region: idle batch is found wherever it is.)
        wanted = str(min(1000, max(1, math.ceil(s.gap_gpus))))
        out.append(Action("reclaim-idle-gpus", {"gpus": wanted}, f"{r.service} {r.region}: {gap}"))
        out.append(plan("pre-scale", f"then {moves}", replicas=str(s.required_replicas)))
        # The fallbacks act on a service in every region it runs in: they take no region.
        fallback = catalog.service(r.service).fallback
        whole = {"service": r.service}
        if fallback.mode == "rules":
            why = f"planned degrade if the GPUs cannot be found (GPU load x {fallback.gpu_load_factor:g})"
            out.append(Action("degrade-llm-to-rules", whole, f"{r.service} {r.region}: {why}"))
        elif fallback.mode == "cpu":
            why = "planned move to its CPU deployment if the GPUs cannot be found"
            out.append(Action("gpu-to-cpu-fallback", whole, f"{r.service} {r.region}: {why}"))
    return out


# Runbooks an event leans on: always pre-scale and reclaim; holding batch where queues hold GPUs for it; the
# fallbacks its services have; failover.
def _relevant_runbooks(catalog: Catalog, event: Event) -> list[str]:
    names = ["pre-scale", "reclaim-idle-gpus", "region-failover"]
    if catalog.queues and catalog.queues.held_for_events():
        names.append("hold-batch")
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
        room = _quota_room(q) if q else None
        if q is None or room is None:
            items.append(Item(f"quota {ns}", True, f"no GPU quota; needs {gap:g} more GPUs"))
            continue
        ok = gap <= room + 1e-9
        items.append(
            Item(f"quota {ns}", ok, f"needs {gap:g} more GPUs, quota leaves {room:g} ({q.gpu_used:g}/{q.gpu_hard:g})")
        )
    return items


def drilled_runbooks(reports: Sequence[DrillReport]) -> dict[str, datetime]:
    """Runbook -> when a passed drill last ran it."""
    out: dict[str, datetime] = {}
    for rep in reports:
        if rep.status != "passed" or not rep.ended:
            continue
        ended = datetime.fromisoformat(rep.ended)
        for r in rep.runbook_runs:
            if r.get("event") == "runbook_start":
                out[r["runbook"]] = max(out.get(r["runbook"], ended), ended)
    return out
