"""A runbook's plan: every step resolved to the objects and fields it changes, with the values before and
after read from the fleet, each change dry-run on the server, and every check's PromQL and current value.

Planning changes nothing. `run` executes exactly what the plan lists (re-reading each value as it goes).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING

from console.catalog.clusters import cluster_of
from console.catalog.model import Catalog, Service, default_weights, deployment_name, routing_configmap
from console.fleet.queries import expected_peak_rps, runbook_query
from console.fleet.sizing import replicas_for
from console.runbooks import capacity
from console.runbooks.changes import (
    ALERTMANAGER,
    EVICTION,
    RUN_MARK,
    SILENCE,
    SILENCE_END,
    Change,
    Lock,
    Target,
    read,
    show,
)
from console.runbooks.model import (
    MUTATING,
    Approve,
    Check,
    CheckNow,
    Cordon,
    Evict,
    ExpireSilences,
    ReclaimIdle,
    Runbook,
    Scale,
    SetConfig,
    ShiftTraffic,
    Silence,
    Step,
    StopQueues,
    WaitFor,
    seconds,
)
from console.runbooks.params import Value, bounds, check_args, fill
from console.runbooks.reads import PromReads
from console.sources.kube import KubeError

# The labels an alert names its node by: kube-state-metrics' `node`, dcgm-exporter's `Hostname` (older ones:
# `hostname`).
NODE_MATCHERS = ("node", "Hostname", "hostname")

if TYPE_CHECKING:
    from console.runbooks.annotations import Annotations
    from console.sources.alertmanager import AlertmanagerSource
    from console.sources.kube import KubeObjects
    from console.sources.prometheus import PrometheusSource


@dataclass
class Sources:
    """What a runbook reads and acts on: one Kubernetes context, Prometheus, and Alertmanager if given."""

    catalog: Catalog
    kube: KubeObjects
    prom: PrometheusSource
    am: AlertmanagerSource | None = None
    grafana: Annotations | None = None  # runs and drills annotate its dashboards, when one is configured
    # Each cluster's API by catalog cluster name, when the fleet is read cluster by cluster: a change is made,
    # reviewed and locked in the cluster its target lives in.
    kubes: dict[str, KubeObjects] = field(default_factory=dict)
    # Each cluster's own Prometheus by catalog cluster name, where the catalog names one: a check of one region
    # is read in its cluster (console.runbooks.reads).
    proms: dict[str, PrometheusSource] = field(default_factory=dict)
    # Each cluster's own Alertmanager by catalog cluster name, where the catalog names one: a run's silence is
    # made where the alerts it mutes arrive, and a drill watches them all.
    ams: dict[str, AlertmanagerSource] = field(default_factory=dict)

    def am_of(self, cluster: str) -> AlertmanagerSource | None:
        """The Alertmanager of `cluster` ("": the one given)."""
        return self.ams.get(cluster) if cluster else self.am

    def alertmanagers(self) -> list[tuple[str, AlertmanagerSource]]:
        """Every Alertmanager: the one given (as "") and each cluster's own, by name."""
        given = [("", self.am)] if self.am is not None else []
        return given + sorted(self.ams.items())

    def silence_in(self, matchers: dict[str, str]) -> list[str]:
        """Where a silence on `matchers` is made: the Alertmanager given ("") and each cluster's own whose alerts
        they can match (a `region` matcher keeps the cluster that holds the region, a cluster-label matcher
        that cluster, a node matcher the cluster that has the node): a silence elsewhere than where the alert
        arrives mutes nothing, and only clutters that Alertmanager."""
        label = self.catalog.monitoring.cluster_label
        regions = {c.name: set(c.regions) for c in self.catalog.clusters}
        holder = self._node_holder(matchers)

        def may_hold(cluster: str) -> bool:
            in_region = "region" not in matchers or matchers["region"] in regions.get(cluster, set())
            return in_region and matchers.get(label, cluster) == cluster and holder in ("", cluster)

        return [name for name, _ in self.alertmanagers() if not name or may_hold(name)]

    def _node_holder(self, matchers: dict[str, str]) -> str:
        """The cluster that has the node a node matcher names; "" when none does or no cluster answers for it
        (the silence then goes everywhere, as without the matcher)."""
        node = next((matchers[k] for k in NODE_MATCHERS if k in matchers), "")
        if not node or not self.kubes or not self.ams:
            return ""
        try:
            return self.find("node", node, [])
        except PlanError:
            return ""

    @cached_property
    def reads(self) -> PromReads:
        # One for the run: it remembers which cluster's Prometheus held nothing (console.runbooks.reads).
        return PromReads(self.catalog, self.prom, self.proms)

    @property
    def context(self) -> str:
        return self.kube.context or "(current)"

    def kube_for(self, cluster: str) -> KubeObjects:
        """The API of `cluster` ("" or one not known: the run's context)."""
        return self.kubes.get(cluster, self.kube) if cluster else self.kube

    def cluster_of(self, region: str) -> str:
        """The cluster that holds `region`, when the run spans clusters ("" otherwise)."""
        return cluster_of(self.catalog.read_clusters(), region) if self.kubes else ""

    def clusters(self) -> list[tuple[str, KubeObjects]]:
        """Every cluster's API, by name, when the run spans clusters; else the context's, as ""."""
        return sorted(self.kubes.items()) if self.kubes else [("", self.kube)]

    def find(self, kind: str, name: str, notes: list[str]) -> str:
        """The cluster that has the (cluster-scoped) object when the run spans clusters ("" for the one
        context); a cluster that does not answer is passed over with a note. PlanError when none has it."""
        if not self.kubes:
            return ""
        for cl, kube in self.clusters():
            try:
                kube.get(kind, None, name)
            except KubeError as e:
                if e.code != 404:
                    notes.append(_unanswered(cl, e))
                continue
            return cl
        raise PlanError(f"no {kind} {name!r} in any cluster")

    def close(self) -> None:
        for k in {id(k): k for k in (self.kube, *self.kubes.values())}.values():
            k.close()
        for _, am in self.alertmanagers():
            am.close()


def _unanswered(cluster: str, e: KubeError) -> str:
    return f"cluster {cluster} does not answer ({e.reason or e.code})"


@dataclass(frozen=True)
class CheckPlan:
    name: str
    promql: str
    lo: float | None
    hi: float | None
    within_s: float | None = None
    # The named query and its arguments behind `promql`: where each cluster runs its own Prometheus, they say
    # which one reads it.
    query: str = ""
    args: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(
        cls,
        name: str,
        query: str,
        args: dict[str, str],
        lo: float | None,
        hi: float | None,
        within_s: float | None = None,
    ) -> CheckPlan:
        """The check of the named `query` with `args` filled: its PromQL, and what says where it is read."""
        return cls(name, runbook_query(query, **args), lo, hi, within_s, query, tuple(sorted(args.items())))

    def holds(self, value: float | None) -> bool:
        if value is None or math.isnan(value):
            return False
        return (self.lo is None or value >= self.lo) and (self.hi is None or value <= self.hi)

    @property
    def expect(self) -> str:
        if self.lo is not None and self.hi is not None:
            return f"{self.lo:g}" if self.lo == self.hi else f"{self.lo:g}..{self.hi:g}"
        return f">= {self.lo:g}" if self.lo is not None else f"<= {self.hi:g}"


def evaluate(src: Sources, check: CheckPlan) -> float | None:
    """The check's value now: its first sample, or None when the query returns nothing."""
    return src.reads.value(check.query, dict(check.args), check.promql)


@dataclass(frozen=True)
class SilencePlan:
    matchers: dict[str, str]
    duration_s: float
    comment: str


@dataclass
class StepPlan:
    index: int
    step: Step
    changes: list[Change] = field(default_factory=list)
    check: CheckPlan | None = None
    silence: SilencePlan | None = None
    prompt: str = ""
    note: str = ""  # what the operator should know: nothing to change, how replicas were sized
    dry_run: list[str] = field(default_factory=list)  # per object: the server's answer
    now: float | None = None  # a check's value at plan time
    timeout_s: float = 60.0
    retry_delay_s: float = 2.0

    @property
    def mutating(self) -> bool:
        return self.step.do.action in MUTATING


@dataclass
class Plan:
    runbook: Runbook
    values: dict[str, Value]
    context: str
    preconditions: list[tuple[CheckPlan, float | None]] = field(default_factory=list)
    steps: list[StepPlan] = field(default_factory=list)
    verification: list[CheckPlan] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # any one stops `run --execute`
    read_in: dict[str, str] = field(default_factory=dict)  # a precondition's Prometheus, where clusters have their own
    over_quota: list[str] = field(default_factory=list)  # capacity short, run anyway (--allow-over-quota)

    @property
    def changes(self) -> list[Change]:
        return [c for s in self.steps for c in s.changes]

    @property
    def locks(self) -> list[Lock]:
        return sorted({c.lock for c in self.changes if c.lock}, key=lambda lk: lk.subject)


class PlanError(Exception):
    pass


def resolve_check(check: Check, values: dict[str, Value], step_timeout: str | None = None) -> CheckPlan:
    lo, hi = bounds(check, values)
    within = check.within or step_timeout
    within_s = seconds(fill(within, values)) if within else None
    return CheckPlan.of(check.name, check.query, check_args(check, values), lo, hi, within_s)


def make_plan(
    rb: Runbook, values: dict[str, Value], src: Sources, *, dry_run: bool = True, allow_over_quota: bool = False
) -> Plan:
    plan = Plan(rb, values, src.context)
    for c in rb.preconditions:
        cp = resolve_check(c, values)
        now = _safe_value(src, cp, plan)
        plan.preconditions.append((cp, now))
        plan.read_in[cp.name] = src.reads.where(cp.query, dict(cp.args), cp.promql)
        if not cp.holds(now):
            plan.problems.append(f"precondition {c.name!r}: reads {show_value(now)}, wants {cp.expect}")
    for i, step in enumerate(rb.steps, 1):
        sp = StepPlan(i, step, timeout_s=seconds(fill(step.timeout, values)))
        sp.retry_delay_s = seconds(fill(step.retry.delay, values))
        try:
            _plan_step(sp, values, src)
        except (PlanError, KubeError) as e:
            plan.problems.append(f"step {i} ({step.name}): {e}")
        if sp.check is not None:
            sp.now = _safe_value(src, sp.check, plan)
        if dry_run and sp.changes:
            _dry_run(sp, src, plan)
        plan.steps.append(sp)
    plan.verification = [resolve_check(c, values) for c in rb.verification]
    _check_capacity(plan, src, allow_over_quota)
    if any(s.silence and not s.changes for s in plan.steps):
        plan.problems.append(
            "a step creates a silence, and no Alertmanager was given (--alertmanager) nor has the cluster one"
        )
    return plan


def _check_capacity(plan: Plan, src: Sources, allowed: bool) -> None:
    """Scale-ups past the namespace's quota or the nodes' free GPUs are problems unless allowed."""
    if not any(c.target.kind == "deployment" for c in plan.changes):
        return
    try:
        # Each cluster's quotas and nodes for the scale-ups made in it.
        clusters = sorted({c.target.cluster for c in plan.changes if c.target.kind == "deployment"})
        short = [
            s
            for cl in clusters
            for s in capacity.shortfalls(src.kube_for(cl), [c for c in plan.changes if c.target.cluster == cl])
        ]
    except KubeError as e:
        plan.problems.append(f"capacity: could not read quotas, nodes and pods: {e}")
        return
    if allowed:
        plan.over_quota = [str(s) for s in short]
        return
    plan.problems += [f"capacity: {s}" for s in short]
    nodes = [s for s in short if s.limit.startswith("nodes ")]
    if nodes:
        gpus = math.ceil(max(s.need - s.room for s in nodes))
        plan.problems.append(
            f"capacity: free {gpus} GPUs on those nodes first (gpuops runbook plan reclaim-idle-gpus gpus={gpus}), "
            "ask for fewer replicas, or pass --allow-over-quota to run anyway (journalled)"
        )
    elif short:
        plan.problems.append(
            "capacity: raise the quota, ask for fewer replicas, or pass --allow-over-quota to run anyway (journalled)"
        )


def _safe_value(src: Sources, cp: CheckPlan, plan: Plan) -> float | None:
    try:
        return evaluate(src, cp)
    except Exception as e:  # Prometheus down: the plan says so rather than failing
        plan.problems.append(f"{cp.name!r}: Prometheus: {e}")
        return None


def show_value(v: float | None) -> str:
    return "no data" if v is None else f"{v:.4g}"


def _dry_run(sp: StepPlan, src: Sources, plan: Plan) -> None:
    """One server-side dry run per object, with every field the step sets on it."""
    by_target: dict[Target, list[Change]] = defaultdict(list)
    for c in sp.changes:
        if c.target.kind not in ALERTMANAGER:
            by_target[c.target].append(c)
    for target, changes in by_target.items():
        try:
            if target.kind == EVICTION:
                src.kube_for(target.cluster).delete("pod", target.namespace, target.name, dry_run=True)
            else:
                _patch_all(src.kube_for(target.cluster), target, [(c.path, c.after) for c in changes])
            sp.dry_run.append(f"{target}: accepted")
        except KubeError as e:
            sp.dry_run.append(f"{target}: refused: {e}")
            plan.problems.append(f"step {sp.index} ({sp.step.name}): dry run of {target} refused: {e.message}")


def _patch_all(kube: KubeObjects, target: Target, fields: list[tuple[tuple[str, ...], object]]) -> None:
    body: dict[str, object] = {}
    for path, value in fields:
        cur = body
        for p in path[:-1]:
            cur = cur.setdefault(p, {})  # type: ignore[assignment]
        cur[path[-1]] = value
    kube.patch(target.kind, target.namespace or None, target.name, body, dry_run=True)


# --- each action, planned ----------------------------------------------------------------------------------
def _plan_step(sp: StepPlan, values: dict[str, Value], src: Sources) -> None:
    do = sp.step.do
    if isinstance(do, WaitFor | CheckNow):
        sp.check = resolve_check(do.check, values, sp.step.timeout if isinstance(do, WaitFor) else None)
    elif isinstance(do, Approve):
        sp.prompt = fill(do.prompt, values)
    elif isinstance(do, Silence):
        matchers = {k: fill(v, values) for k, v in do.matchers.items()}
        sp.silence = SilencePlan(matchers, seconds(fill(do.duration, values)), fill(do.comment, values))
        for cl in src.silence_in(matchers):  # one silence in each Alertmanager its alerts may reach
            target = Target(SILENCE, "", _matchers_text(matchers), cl)
            sp.changes.append(Change(target, ("silence",), None, fill(do.duration, values), None))
    elif isinstance(do, ExpireSilences):
        _plan_expire(sp, {k: fill(v, values) for k, v in do.matchers.items()}, src)
    elif isinstance(do, Scale):
        _plan_scale(sp, do, values, src)
    elif isinstance(do, SetConfig):
        svc = _service(src.catalog, fill(do.service, values))
        _set_config(sp, src, svc, do.key, fill(do.value, values))
    elif isinstance(do, ShiftTraffic):
        _plan_shift(sp, do, values, src)
    elif isinstance(do, ReclaimIdle):
        _plan_reclaim(sp, fill(do.idle_for, values), int(fill(str(do.gpus), values)), src)
    elif isinstance(do, StopQueues):
        _plan_stop_queues(sp, do, values, src)
    elif isinstance(do, Cordon | Evict):
        _plan_node(sp, do, fill(do.node, values), src)


def _plan_node(sp: StepPlan, do: Cordon | Evict, node: str, src: Sources) -> None:
    """Cordon a node, or evict its pods, in the cluster that has it."""
    notes: list[str] = []
    cl = src.find("node", node, notes)
    lock, kube = Lock("default", f"node/{node}", cl), src.kube_for(cl)
    if isinstance(do, Cordon):
        target = Target("node", "", node, cl)
        before, _ = read(kube, target, ("spec", "unschedulable"))
        if before:
            notes.append(f"node {node} is already cordoned")
        else:
            sp.changes.append(Change(target, ("spec", "unschedulable"), before, True, lock))
    else:
        for pod in kube.list("pod", field_selector=f"spec.nodeName={node}"):
            meta = pod["metadata"]
            why = "its controller places it on another node"
            sp.changes.append(
                Change(Target(EVICTION, meta["namespace"], meta["name"], cl), ("pod",), node, None, lock, why)
            )
        if not sp.changes:
            notes.append(f"no pod runs on node {node}")
    sp.note = "; ".join(notes)


def _alertmanager_of(cluster: str) -> str:
    """A silence's Alertmanager, as the plan names it."""
    return f"cluster {cluster}'s Alertmanager" if cluster else "Alertmanager"


def _matchers_text(matchers: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(matchers.items()))


def _plan_expire(sp: StepPlan, matchers: dict[str, str], src: Sources) -> None:
    """Each active silence a gpuops run made on exactly these matchers becomes a change that ends it.

    A missing or unreachable Alertmanager is a note, not a problem: a restore must not wait on it."""
    what = _matchers_text(matchers)
    if not src.alertmanagers():
        sp.note = f"no Alertmanager given (--alertmanager): any silence on {what} is left to run out"
        return
    notes = []
    for cl, am in src.alertmanagers():
        where = _alertmanager_of(cl)
        try:
            silences = am.silences()
        except Exception as e:  # Alertmanager down: say so, and change nothing there
            notes.append(f"{where} unreachable ({e}): any silence on {what} there is left to run out")
            continue
        for s in sorted(silences, key=lambda s: s.ends_at):
            if s.state == "expired" or s.exact_matchers() != matchers:
                continue
            end = s.ends_at.strftime("%Y-%m-%d %H:%M UTC")
            if RUN_MARK not in s.created_by:
                notes.append(f"left alone: silence {s.id} by {s.created_by} until {end} (a person's, not a run's)")
                continue
            why = f"{what}, made by {s.created_by}, until {end}" + (f", in {where}" if cl else "")
            target = Target(SILENCE_END, "", s.id, cl)
            sp.changes.append(Change(target, ("endsAt",), s.ends_at.isoformat(), "now", None, why))
    if not sp.changes:
        notes.insert(0, f"no active silence from a gpuops run on {what}")
    sp.note = "\n".join(notes)


def _service(catalog: Catalog, name: str) -> Service:
    try:
        return catalog.service(name)
    except StopIteration:
        raise PlanError(f"no service {name!r} in the catalog") from None


def _lock(svc: Service, cluster: str = "") -> Lock:
    return Lock(svc.namespace, f"service/{svc.name}", cluster)


def _set_config(sp: StepPlan, src: Sources, svc: Service, key: str, value: str) -> None:
    """`key` in the service's routing config map: in each cluster it runs in (each has its own map), a cluster
    that does not answer left with a note."""
    notes = []
    for cl in sorted({src.cluster_of(r) for r in svc.regions}):
        target = Target("configmap", svc.namespace, routing_configmap(svc), cl)
        try:
            before, _ = read(src.kube_for(cl), target, ("data", key))
        except KubeError as e:
            if not cl or e.code == 404:
                raise
            notes.append(f"{_unanswered(cl, e)}: its {key} stays")
            continue
        if before == value:
            notes.append(f"{key} is already {value}" + (f" in cluster {cl}" if cl else ""))
            continue
        sp.changes.append(Change(target, ("data", key), before, value, _lock(svc, cl)))
    sp.note = "; ".join(notes)


def _plan_shift(sp: StepPlan, do: ShiftTraffic, values: dict[str, Value], src: Sources) -> None:
    svc = _service(src.catalog, fill(do.service, values))
    source, dest, share = fill(do.source, values), fill(do.target, values), float(fill(str(do.share), values))
    for r in (source, dest):
        if r not in svc.regions:
            raise PlanError(f"{svc.name} does not run in {r!r} (it runs in {', '.join(svc.regions)})")
    if source == dest:
        raise PlanError(f"source and target are both {source!r}")
    if src.cluster_of(source) != src.cluster_of(dest):
        _plan_shift_across(sp, svc, source, dest, share, src)
        return
    target = Target("configmap", svc.namespace, routing_configmap(svc), src.cluster_of(source))
    obj = src.kube_for(target.cluster).get("configmap", svc.namespace, target.name)
    data = obj.get("data") or {}
    try:
        ws, wt = float(data[f"weight.{source}"]), float(data[f"weight.{dest}"])
    except (KeyError, ValueError) as e:
        raise PlanError(f"{target}: no numeric weight {e}") from None
    moved = ws * share
    if moved <= 0:
        sp.note = f"{source} already carries no traffic weight"
        return
    sp.note = f"moves weight {moved:g} of {ws:g} from {source} to {dest}"
    lock = _lock(svc, target.cluster)
    sp.changes += [
        Change(target, ("data", f"weight.{source}"), data[f"weight.{source}"], f"{ws - moved:g}", lock),
        Change(target, ("data", f"weight.{dest}"), data[f"weight.{dest}"], f"{wt + moved:g}", lock),
    ]


def _weight(src: Sources, svc: Service, region: str) -> tuple[Target, str]:
    """The region's weight in its own cluster's routing config map, and that map."""
    target = Target("configmap", svc.namespace, routing_configmap(svc), src.cluster_of(region))
    data = src.kube_for(target.cluster).get("configmap", svc.namespace, target.name).get("data") or {}
    try:
        float(data[f"weight.{region}"])
    except (KeyError, ValueError) as e:
        raise PlanError(f"{target}: no numeric weight {e}") from None
    return target, data[f"weight.{region}"]


def _plan_shift_across(sp: StepPlan, svc: Service, source: str, dest: str, share: float, src: Sources) -> None:
    """Between clusters: each region's weight is in its own cluster's routing config map, which the global load
    balancer reads. A source cluster that does not answer keeps its weight (the balancer's health checks have
    taken it out already); the target then takes the weight the source has by default."""
    dest_map, wt = _weight(src, svc, dest)
    try:
        source_map, ws_text = _weight(src, svc, source)
        ws = float(ws_text)
    except KubeError as e:
        mine = [r for r in svc.regions if src.cluster_of(r) == src.cluster_of(source)]
        ws_text, ws = "", default_weights(svc, mine)[source]
        lost = f"cluster {src.cluster_of(source)} does not answer ({e.reason or e.code}): its weight stays"
    else:
        lost = ""
    moved = ws * share
    if moved <= 0:
        sp.note = f"{source} already carries no traffic weight"
        return
    notes = [f"moves weight {moved:g} from {source} (cluster {src.cluster_of(source)}) to {dest} (cluster "
             f"{src.cluster_of(dest)})"]  # fmt: skip
    if lost:
        notes.append(lost)
    else:
        sp.changes.append(
            Change(source_map, ("data", f"weight.{source}"), ws_text, f"{ws - moved:g}", _lock(svc, source_map.cluster))
        )
    sp.changes.append(
        Change(dest_map, ("data", f"weight.{dest}"), wt, f"{float(wt) + moved:g}", _lock(svc, dest_map.cluster))
    )
    sp.note = "; ".join(notes)


def _plan_scale(sp: StepPlan, do: Scale, values: dict[str, Value], src: Sources) -> None:
    ref = do.service[1:-1] if do.service.startswith("{") else None
    many = values.get(ref) if ref else None
    names = list(many) if isinstance(many, tuple) else [fill(do.service, values)]
    listed: dict[str, dict[tuple[str, str], dict]] = {}

    def hpas(cluster: str) -> dict[tuple[str, str], dict]:
        """The HPAs of the cluster a region is in, each listed once."""
        if cluster not in listed:
            found = src.kube_for(cluster).list("hpa")
            listed[cluster] = {(h["metadata"]["namespace"], h["spec"]["scaleTargetRef"]["name"]): h for h in found}
        return listed[cluster]

    notes: list[str] = []
    for name in names:
        svc = _service(src.catalog, name)
        region_ref = do.region[1:-1] if do.region and do.region.startswith("{") else None
        every = do.region is None or (region_ref is not None and region_ref not in values)
        regions = list(svc.regions) if every else [fill(str(do.region), values)]
        if regions[0] not in svc.regions:
            if len(names) > 1:
                continue  # an event's service that does not run in the region asked for
            raise PlanError(f"{svc.name} does not run in {regions[0]!r} (it runs in {', '.join(svc.regions)})")
        wanted = _wanted_replicas(do, svc, regions, values, src, notes)
        for region in regions:
            if do.deployment == "cpu":
                if not svc.fallback.deployment:
                    raise PlanError(f"{svc.name} has no CPU deployment (catalog fallback.deployment)")
                dep = f"{svc.fallback.deployment}-{region}"
            else:
                dep = deployment_name(svc, region)
            cluster = src.cluster_of(region)
            hpa = hpas(cluster).get((svc.namespace, dep))
            dep_t = Target("deployment", svc.namespace, dep, cluster)
            _scale_one(sp, src, svc, dep_t, wanted[region], hpa, do.only_up, notes)
    if notes:
        sp.note = "\n".join(notes)
    elif not sp.changes:
        sp.note = "every deployment is already at its replicas"


def _wanted_replicas(
    do: Scale, svc: Service, regions: list[str], values: dict[str, Value], src: Sources, notes: list[str]
) -> dict[str, int]:
    ref = do.replicas.strip("{}") if isinstance(do.replicas, str) and do.replicas.startswith("{") else None
    if ref is None:
        return dict.fromkeys(regions, int(do.replicas))
    if ref in values:
        return dict.fromkeys(regions, int(values[ref]))  # type: ignore[arg-type]
    # Left out: sized for the event's expected peak with its buffer, as the capacity alert reckons it.
    event_name = next((str(v) for k, v in values.items() if k == "event"), None)
    now = datetime.now(UTC)
    events = [e for e in src.catalog.events if svc.name in e.services and e.end > now]
    event = (
        next((e for e in events if e.name == event_name), None)
        if event_name
        else min(events, key=lambda e: e.start, default=None)
    )
    if event is None:
        raise PlanError(f"replicas: not given, and {svc.name} is in no coming catalog event to size it for")
    peak = expected_peak_rps(svc.name, event.multiplier)
    peaks = {s.labels.get("region", ""): s.value for s in src.reads.samples(peak)}
    out = {}
    for r in regions:
        if r not in peaks:
            raise PlanError(f"replicas: no request history for {svc.name} in {r} to size it from")
        out[r] = replicas_for(peaks[r] * (1 + event.buffer), svc.capacity_per_replica_rps)
        notes.append(
            f"{svc.name} {r}: peak {peaks[r]:.1f} rps x (1 + {event.buffer:g} buffer) / "
            f"{svc.capacity_per_replica_rps:.2f} rps per replica = {out[r]} replicas ({event.name})"
        )
    return out


def _scale_one(
    sp: StepPlan, src: Sources, svc: Service, dep_t: Target, n: int, hpa: dict | None, only_up: bool, notes: list[str]
) -> None:
    """One deployment (`dep_t`, in its region's cluster) to `n` replicas, through its HPA when it has one."""
    lock = _lock(svc, dep_t.cluster)
    cur, _ = read(src.kube_for(dep_t.cluster), dep_t, ("spec", "replicas"))
    if only_up and isinstance(cur, int) and cur >= n:
        notes.append(f"{dep_t.name} already runs {cur} replicas (>= {n}): left as it is")
        return
    changes = []
    if hpa is None:
        if cur != n:
            changes.append(Change(dep_t, ("spec", "replicas"), cur, n, lock))
    else:
        hpa_t = Target("hpa", dep_t.namespace, hpa["metadata"]["name"], dep_t.cluster)
        lo, hi = hpa["spec"].get("minReplicas", 1), hpa["spec"]["maxReplicas"]
        floor = Change(hpa_t, ("spec", "minReplicas"), lo, n, lock, "the HPA's floor, so it keeps them")
        # Ordered so every intermediate state is valid (min <= max) and the HPA never undoes the step;
        # the rollback runs them in reverse.
        if n > hi:
            changes.append(Change(hpa_t, ("spec", "maxReplicas"), hi, n, lock, "the HPA's ceiling, to allow them"))
        if n >= lo:
            if cur != n:
                changes.append(Change(dep_t, ("spec", "replicas"), cur, n, lock))
            if lo != n:
                changes.append(floor)
        else:
            changes.append(floor)
            if cur != n:
                changes.append(Change(dep_t, ("spec", "replicas"), cur, n, lock))
    sp.changes += changes


def _plan_stop_queues(sp: StepPlan, do: StopQueues, values: dict[str, Value], src: Sources) -> None:
    """`spec.stopPolicy` on each ClusterQueue named, and a note of the GPUs it holds, by region: what holding
    it frees as its running work finishes (or is evicted)."""
    ref = do.queue[1:-1] if do.queue.startswith("{") else None
    many = values.get(ref) if ref else None
    names = list(many) if isinstance(many, tuple) else [fill(do.queue, values)]
    queues = src.catalog.queues
    regions = {f.name: f.region for f in queues.flavors} if queues else {}
    held: dict[str, float] = defaultdict(float)
    try:
        for s in src.reads.samples(runbook_query("queue_gpus_by_flavor", queue="|".join(names))):
            held[regions.get(s.labels.get("flavor", ""), s.labels.get("flavor", "?"))] += s.value
    except Exception as e:  # Prometheus away: the change is still right; only the figure is missing
        held, notes = {}, [f"GPUs held: Prometheus: {e}"]
    else:
        total = sum(held.values())
        where = ", ".join(f"{r} {g:g}" for r, g in sorted(held.items()) if g) or "none"
        notes = [f"batch holds {total:g} GPUs in these queues now ({where}): "
                 + ("they come free as running Jobs finish" if do.policy == "Hold"
                    else "what of it still runs when this step comes is evicted and waits in its queue")]  # fmt: skip
    for name in names:
        target = Target("clusterqueue", "", name, src.find("clusterqueue", name, notes))
        before, _ = read(src.kube_for(target.cluster), target, ("spec", "stopPolicy"))
        if before == do.policy:
            notes.append(f"{name} is already {do.policy}")
            continue
        why = "no new admissions" if do.policy == "Hold" else "evicts what runs; it waits in its queue"
        lock = Lock("default", f"clusterqueue/{name}", target.cluster)
        sp.changes.append(Change(target, ("spec", "stopPolicy"), before, do.policy, lock, why))
    sp.note = "\n".join(dict.fromkeys(notes))


def _plan_reclaim(sp: StepPlan, idle_for: str, gpus: int, src: Sources) -> None:
    """Suspend the batch Jobs whose every GPU pod has been idle for `idle_for`, in namespaces of teams not
    marked critical, lowest team priority first, until `gpus` GPUs are free."""
    idle: dict[tuple[str, str], int] = {}
    for s in src.reads.samples(runbook_query("idle_gpus_by_pod", window=idle_for)):
        idle[(s.labels.get("namespace", ""), s.labels.get("pod", ""))] = int(s.value)
    candidates, unanswered = [], []
    for cl, kube in src.clusters():  # each cluster's Jobs, suspended in their own cluster
        try:
            pods, jobs = kube.list("pod", label_selector="gpuops.io/job"), kube.list("job")
        except KubeError as e:
            if not cl:
                raise
            unanswered.append(f"{_unanswered(cl, e)}: its Jobs are left")
            continue
        pods_of: dict[tuple[str, str], list[str]] = defaultdict(list)
        for p in pods:
            meta = p["metadata"]
            pods_of[(meta["namespace"], meta["labels"]["gpuops.io/job"])].append(meta["name"])
        for job in jobs:
            meta = job["metadata"]
            ns, name = meta["namespace"], meta["name"]
            team = src.catalog.team_of_namespace(ns)
            held = pods_of.get((ns, name), [])
            queued = "kueue.x-k8s.io/queue-name" in (meta.get("labels") or {})  # Kueue's to suspend: hold-batch
            if job["spec"].get("suspend") or queued or team is None or team.critical or not held:
                continue
            if all((ns, p) in idle for p in held):
                candidates.append((team.priority, -sum(idle[(ns, p)] for p in held), ns, name, team.name, cl))
    freed, picked = 0, []
    for prio, neg_idle, ns, name, team_name, cl in sorted(candidates):
        if freed >= gpus:
            break
        freed += -neg_idle
        where = f" in cluster {cl}" if cl else ""
        picked.append(f"{ns}/{name}{where} ({-neg_idle} idle GPUs, team {team_name}, priority {prio})")
        lock = Lock(ns, f"namespace/{ns}", cl)
        sp.changes.append(Change(Target("job", ns, name, cl), ("spec", "suspend"), False, True, lock,
                                 "pauses it; resumes on rollback"))  # fmt: skip
    if not picked:
        raise PlanError(f"no batch Job in a non-critical namespace holds only GPUs idle for {idle_for}")
    sp.note = "\n".join([f"frees {freed} of {gpus} GPUs:", *picked, *unanswered])


def _lease(lk: Lock) -> str:
    """A Lease by name, and by cluster where it has one: a target in several clusters takes one Lease in each,
    all of one name."""
    return f"{lk.namespace}/{lk.lease}" + (f" in cluster {lk.cluster}" if lk.cluster else "")


def _describe_step(sp: StepPlan) -> list[str]:
    out = [f"  {sp.index}. {sp.step.name}  [{sp.step.do.action}]"]
    for c in sp.changes:
        if c.target.kind == SILENCE:
            where = f" in {_alertmanager_of(c.target.cluster)}" if c.target.cluster else ""
            out.append(f"     silence {c.target.name} for {c.after}{where}")
            continue
        if c.target.kind == SILENCE_END:
            out.append(f"     end silence {c.target.name} now ({c.why})")
            continue
        why = f"  ({c.why})" if c.why else ""
        out.append(f"     {c.target}  {c.field}: {show(c.before)} -> {show(c.after)}{why}")
    if sp.check is not None:
        timeout = f" within {sp.check.within_s:g}s" if sp.check.within_s else ""
        out.append(f"     {sp.check.name}: now {show_value(sp.now)}, wants {sp.check.expect}{timeout}")
        out.append(f"       {sp.check.promql}")
    if sp.prompt:
        out.append(f"     asks: {sp.prompt}")
    out += [f"     note: {line}" for line in sp.note.splitlines()]
    accepted = [d for d in sp.dry_run if d.endswith(": accepted")]
    if accepted:
        out.append(f"     server-side dry run: {len(accepted)} of {len(sp.dry_run)} objects accepted")
    out += [f"     dry run: {d}" for d in sp.dry_run if not d.endswith(": accepted")]
    return out


def describe_plan(plan: Plan) -> str:
    """The plan as the CLI prints it and the console's confirmation dialog shows it."""
    rb = plan.runbook
    out = [f"{rb.name}: {rb.title}", f"context: {plan.context}"]
    params = ", ".join(f"{k}={'|'.join(v) if isinstance(v, tuple) else v}" for k, v in sorted(plan.values.items()))
    out.append(f"parameters: {params or '(none)'}")
    if plan.preconditions:
        out.append("\npreconditions:")
        for cp, now in plan.preconditions:
            mark = "ok  " if cp.holds(now) else "FAIL"
            out.append(f"  {mark} {cp.name}: {show_value(now)} (wants {cp.expect})")
            if plan.read_in.get(cp.name):
                out.append(f"       read {plan.read_in[cp.name]}")
    out.append("\nsteps:")
    for sp in plan.steps:
        out += _describe_step(sp)
    if plan.verification:
        out.append("\nverification:")
        out += [f"  - {c.name}: wants {c.expect} within {c.within_s:g}s" for c in plan.verification]
    if plan.locks:
        out.append("\nleases: " + ", ".join(map(_lease, plan.locks)))
    if plan.over_quota:
        out.append("\ncapacity short, run anyway (--allow-over-quota, journalled):")
        out += [f"  - {line}" for line in plan.over_quota]
    if plan.problems:
        out.append("\nproblems (run --execute refuses until they are fixed):")
        out += [f"  - {p}" for p in plan.problems]
    return "\n".join(out)
