"""Batch admission as Kueue does it, on the twin's clock: ResourceFlavors, ClusterQueues and LocalQueues from
the catalog (`queues:`), a Workload for every Job that names a queue (`kueue.x-k8s.io/queue-name`), and each
tick the admission loop.

A queued Job is created suspended and waits as a pending Workload. Admission takes a ClusterQueue's pending
Workloads oldest first (BestEffortFIFO: one that does not fit does not block the next) and gives each the first
flavor, in the queue's order, whose quota holds it, borrowing what the rest of the cohort leaves unused (up to
the queue's borrowing limit): Kueue's default flavor fungibility. Admitting a Job unsuspends it with the
flavor's node labels as its node selector; it then runs as any Job does (`controllers`). `spec.stopPolicy`
`Hold` stops admission and lets what runs finish; `HoldAndDrain` also evicts what runs (suspended again, back
to pending). Preemption is not modelled: a queue waits for quota rather than taking it back.

The state Kueue keeps outside its objects (when each Workload was admitted, its counters) lives in
`KueueBook`; the objects' status fields are written only when they change, so a quiet queue does not move
the store's revision.
"""

from __future__ import annotations

import hashlib
import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from console.catalog.model import GPU_RESOURCE, Arrivals, LocalQueue
from console.twin.model import CLUSTER_QUEUES, FLAVORS, JOBS, LOCAL_QUEUES, WORKLOADS, TwinState, fmt, resource_list
from console.twin.store import Obj, now_rfc3339, setting

QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
RUN_S = "gpuops.io/run-seconds"  # how long the twin runs an admitted Job (its arrivals'); absent: until deleted
FINISHED_TTL = timedelta(minutes=10)  # a finished Job and its Workload are deleted after this (ttlSecondsAfterFinished)
STOPPED = ("Hold", "HoldAndDrain")


@dataclass
class KueueBook:
    """What the admission loop remembers between ticks."""

    admitted_at: dict[str, datetime] = field(default_factory=dict)  # workload key -> the fleet's time
    finished_at: dict[str, datetime] = field(default_factory=dict)  # job key -> the fleet's time
    order: dict[str, int] = field(default_factory=dict)  # workload key -> arrival order (FIFO)
    workload_of: dict[str, str] = field(default_factory=dict)  # job key -> workload name
    arrived: dict[str, int] = field(default_factory=dict)  # local queue -> the last arrival slot submitted
    admitted_total: dict[str, int] = field(default_factory=lambda: defaultdict(int))  # cluster queue -> count
    evicted_total: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    seq: int = 0


@dataclass
class _Wl:
    key: str
    obj: Obj
    job: Obj
    cq: str
    gpus: float
    gone: bool = False  # deleted this tick

    @property
    def admission(self) -> dict[str, Any] | None:
        return (self.obj.get("status") or {}).get("admission")

    @property
    def finished(self) -> bool:
        return _cond(self.obj, "Finished")

    @property
    def flavor(self) -> str:
        adm = self.admission or {}
        return next(iter((adm.get("podSetAssignments") or [{}])[0].get("flavors", {}).values()), "")


def _cond(obj: Obj, kind: str) -> bool:
    return any(c["type"] == kind and c["status"] == "True" for c in (obj.get("status") or {}).get("conditions", []))


def _conditions(**state: tuple[bool, str]) -> list[Obj]:
    now = now_rfc3339()
    return [
        {"type": k, "status": "True" if ok else "False", "reason": reason, "message": "", "lastTransitionTime": now}
        for k, (ok, reason) in state.items()
    ]


def flavor_order(cq: Obj) -> list[tuple[str, float, float | None]]:
    """(flavor, nominal GPUs, borrowing limit) in the order admission tries them."""
    out = []
    for group in cq["spec"].get("resourceGroups", []):
        for f in group.get("flavors", []):
            for r in f.get("resources", []):
                if r["name"] == GPU_RESOURCE:
                    limit = r.get("borrowingLimit")
                    out.append((f["name"], float(r.get("nominalQuota", 0)), None if limit is None else float(limit)))
    return out


def gpus_of(job: Obj) -> float:
    spec = job["spec"]
    req = spec["template"]["spec"]["containers"][0]["resources"].get("requests", {})
    return float(req.get(GPU_RESOURCE, 0)) * int(spec.get("parallelism", 1))


class Kueue(TwinState):
    kueue: KueueBook

    # --- the objects the catalog declares -------------------------------------------------------------
    def _build_queues(self) -> None:
        self.kueue = KueueBook()
        q = self.catalog.queues
        if q is None:
            return
        for f in q.flavors:
            labels = self.where(f.pool, f.region)
            self.store.create(FLAVORS, None, {"metadata": {"name": f.name}, "spec": {"nodeLabels": labels}})
        for cq in q.cluster_queues:
            flavors = []
            for name, nominal in cq.quota.items():
                res: Obj = {"name": GPU_RESOURCE, "nominalQuota": fmt(nominal)}
                if cq.borrowing_limit is not None:
                    res["borrowingLimit"] = fmt(cq.borrowing_limit)
                flavors.append({"name": name, "resources": [res]})
            spec: Obj = {
                "namespaceSelector": {},
                "queueingStrategy": "BestEffortFIFO",
                "resourceGroups": [{"coveredResources": [GPU_RESOURCE], "flavors": flavors}],
            }
            if cq.cohort:
                spec["cohort"] = cq.cohort
            labels = {"gpuops.io/hold-for-events": str(cq.hold_for_events).lower()}
            self.store.create(CLUSTER_QUEUES, None, {"metadata": {"name": cq.name, "labels": labels}, "spec": spec})
        for lq in q.local_queues:
            self.store.create(
                LOCAL_QUEUES,
                lq.namespace,
                {"metadata": {"name": lq.name}, "spec": {"clusterQueue": lq.cluster_queue}},
            )

    # --- each tick ------------------------------------------------------------------------------------
    def _reconcile_queues(self, now: datetime) -> None:
        cqs = {o["metadata"]["name"]: o for o in self.store.iter(CLUSTER_QUEUES)}
        if not cqs:
            return
        lqs = {(o["metadata"]["namespace"], o["metadata"]["name"]): o for o in self.store.iter(LOCAL_QUEUES)}
        if self.catalog.queues:
            for lq in self.catalog.queues.local_queues:
                if lq.arrivals:
                    self._arrive(lq, lq.arrivals, now)
        wls = self._workloads(lqs)
        self._finish(wls, now)
        wls = [w for w in wls if not w.gone]
        for w in wls:
            cq = cqs.get(w.cq)
            if cq is not None and cq["spec"].get("stopPolicy") == "HoldAndDrain" and w.admission and not w.finished:
                self._evict(w)
        self._admit(cqs, [w for w in wls if not w.admission and not w.finished], wls, now)
        self._status(cqs, lqs, wls)

    def _arrive(self, lq: LocalQueue, a: Arrivals, now: datetime) -> None:
        """Submit the Jobs due since the last tick (at the start, those that would be running by now)."""
        every = a.every_min * 60
        slot = math.floor(now.timestamp() / every)
        key = f"{lq.namespace}/{lq.name}"
        last = self.kueue.arrived.get(key, slot - math.ceil(a.run_min / a.every_min))
        self.kueue.arrived[key] = slot
        team = self.catalog.team_of_namespace(lq.namespace)
        for i in range(max(last + 1, slot - a.max_pending), slot + 1):
            if self._pending_in(lq.namespace, lq.name) >= a.max_pending:
                return  # the submitters back off while the queue is this long
            name = f"{a.name}-{i}"
            if self.store.find(JOBS, lq.namespace, name) is not None:
                continue
            req = resource_list({GPU_RESOURCE: a.gpus_per_pod, "cpu": 4000 * a.gpus_per_pod, "memory": 32768})
            labels = {
                QUEUE_LABEL: lq.name,
                "gpuops.io/team": team.name if team else "",
                "gpuops.io/workload": "batch",
                "gpuops.io/job": name,
            }
            self.store.create(
                JOBS,
                lq.namespace,
                {
                    "metadata": {
                        "name": name,
                        "labels": labels,
                        "annotations": {"gpuops.io/utilisation": fmt(a.utilisation), RUN_S: fmt(a.run_min * 60)},
                    },
                    "spec": {
                        "parallelism": a.pods,
                        "completions": a.pods,
                        "completionMode": "Indexed",
                        "suspend": True,
                        "ttlSecondsAfterFinished": int(FINISHED_TTL.total_seconds()),
                        "template": {
                            "metadata": {"labels": labels},
                            "spec": {"containers": [{"name": "main", "resources": {"requests": req, "limits": req}}]},
                        },
                    },
                    "status": {"active": 0},
                },
            )

    def _pending_in(self, ns: str, queue: str) -> int:
        return sum(
            1
            for w in self.store.iter(WORKLOADS)
            if w["metadata"]["namespace"] == ns
            and w["spec"]["queueName"] == queue
            and not (w.get("status") or {}).get("admission")
            and not _cond(w, "Finished")
        )

    def _workloads(self, lqs: dict[tuple[str, str], Obj]) -> list[_Wl]:
        """Every queued Job's Workload (made for a Job that has none; a Job gone takes its Workload along)."""
        jobs = {
            f"{j['metadata']['namespace']}/{j['metadata']['name']}": j
            for j in self.store.iter(JOBS)
            if QUEUE_LABEL in (j["metadata"].get("labels") or {})
        }
        by_key = {f"{w['metadata']['namespace']}/{w['metadata']['name']}": w for w in self.store.iter(WORKLOADS)}
        for key, wl in list(by_key.items()):
            owner = (wl["metadata"].get("ownerReferences") or [{}])[0].get("name", "")
            if f"{wl['metadata']['namespace']}/{owner}" not in jobs:
                self.store.delete(WORKLOADS, wl["metadata"]["namespace"], wl["metadata"]["name"])
                del by_key[key]
                self.kueue.admitted_at.pop(key, None)
                self.kueue.order.pop(key, None)
        out = []
        for jkey, job in jobs.items():
            ns = job["metadata"]["namespace"]
            name = self.kueue.workload_of.get(jkey)
            found = by_key.get(f"{ns}/{name}") if name else None
            wl = found if found is not None else self._new_workload(job)
            if found is None:
                name = wl["metadata"]["name"]
                self.kueue.workload_of[jkey] = name
            queue = job["metadata"]["labels"][QUEUE_LABEL]
            lq = lqs.get((ns, queue))
            cq = lq["spec"]["clusterQueue"] if lq else ""
            out.append(_Wl(f"{ns}/{name}", wl, job, cq, gpus_of(job)))
        for jkey in [k for k in self.kueue.workload_of if k not in jobs]:
            del self.kueue.workload_of[jkey]
            self.kueue.finished_at.pop(jkey, None)
        return sorted(out, key=lambda w: self.kueue.order.get(w.key, 0))

    def _new_workload(self, job: Obj) -> Obj:
        meta = job["metadata"]
        ns, name = meta["namespace"], meta["name"]
        if not job["spec"].get("suspend"):
            # Kueue's webhook creates a queued Job suspended: it runs only once admitted.
            self.store.update(JOBS, ns, name, setting("spec", "suspend", value=True))
        digest = hashlib.blake2s(meta.get("uid", name).encode(), digest_size=3).hexdigest()[:5]
        spec = job["spec"]
        wl = self.store.create(
            WORKLOADS,
            ns,
            {
                "metadata": {
                    "name": f"job-{name}-{digest}",
                    "labels": {"kueue.x-k8s.io/job-uid": meta.get("uid", "")},
                    "ownerReferences": [
                        {
                            "apiVersion": "batch/v1",
                            "kind": "Job",
                            "name": name,
                            "uid": meta.get("uid", ""),
                            "controller": True,
                            "blockOwnerDeletion": True,
                        }
                    ],
                },
                "spec": {
                    "queueName": meta["labels"][QUEUE_LABEL],
                    "podSets": [
                        {"name": "main", "count": int(spec.get("parallelism", 1)), "template": spec["template"]}
                    ],
                },
                "status": {"conditions": _conditions(QuotaReserved=(False, "Pending"))},
            },
        )
        self.kueue.seq += 1
        self.kueue.order[f"{ns}/{wl['metadata']['name']}"] = self.kueue.seq
        return wl

    def _finish(self, wls: list[_Wl], now: datetime) -> None:
        """Admitted Jobs that ran their time complete; finished ones are deleted after FINISHED_TTL."""
        for w in wls:
            ns, jname = w.job["metadata"]["namespace"], w.job["metadata"]["name"]
            jkey = f"{ns}/{jname}"
            done = self.kueue.finished_at.get(jkey)
            if done is not None:
                if now - done >= FINISHED_TTL:
                    # The Job goes, and its Workload with it (the garbage collector's cascade).
                    self.store.delete(JOBS, ns, jname)
                    self.store.delete(WORKLOADS, ns, w.obj["metadata"]["name"])
                    self.kueue.admitted_at.pop(w.key, None)
                    self.kueue.order.pop(w.key, None)
                    w.gone = True
                continue
            run = (w.job["metadata"].get("annotations") or {}).get(RUN_S)
            since = self.kueue.admitted_at.get(w.key)
            if run is None or since is None or not w.admission or now - since < timedelta(seconds=float(run)):
                continue
            self.kueue.finished_at[jkey] = now
            pods = int(w.job["spec"].get("parallelism", 1))

            def complete(o: Obj, pods: int = pods) -> None:
                o["status"] = {
                    "active": 0,
                    "succeeded": pods,
                    "completionTime": now_rfc3339(),
                    "conditions": [{"type": "Complete", "status": "True"}],
                }

            self.store.update(JOBS, ns, jname, complete)
            conds = _conditions(QuotaReserved=(True, "QuotaReserved"), Admitted=(True, "Admitted"),
                                Finished=(True, "Succeeded"))  # fmt: skip
            w.obj = self.store.update(
                WORKLOADS, ns, w.obj["metadata"]["name"], setting("status", "conditions", value=conds)
            )

    def _evict(self, w: _Wl) -> None:
        """HoldAndDrain: the Job is suspended again (its pods go) and its Workload waits, not admitted."""
        ns = w.obj["metadata"]["namespace"]
        self.store.update(JOBS, ns, w.job["metadata"]["name"], _suspend)
        conds = _conditions(QuotaReserved=(False, "Pending"), Admitted=(False, "NoReservation"),
                            Evicted=(True, "ClusterQueueStopped"))  # fmt: skip
        w.obj = self.store.update(
            WORKLOADS, ns, w.obj["metadata"]["name"], setting("status", value={"conditions": conds})
        )
        self.kueue.admitted_at.pop(w.key, None)
        self.kueue.evicted_total[w.cq] += 1

    def _admit(self, cqs: dict[str, Obj], pending: list[_Wl], wls: list[_Wl], now: datetime) -> None:
        usage: dict[tuple[str, str], float] = defaultdict(float)
        for w in wls:
            if w.admission and not w.finished:
                usage[(w.cq, w.flavor)] += w.gpus
        flavors = {o["metadata"]["name"]: o for o in self.store.iter(FLAVORS)}
        for w in pending:
            cq = cqs.get(w.cq)
            if cq is None or cq["spec"].get("stopPolicy") in STOPPED:
                continue
            cohort = cq["spec"].get("cohort", "")
            members = [n for n, o in cqs.items() if cohort and o["spec"].get("cohort") == cohort] or [w.cq]
            for flavor, nominal, limit in flavor_order(cq):
                used = usage[(w.cq, flavor)] + w.gpus
                if flavor not in flavors:
                    continue
                pooled = sum(dict((f, n) for f, n, _ in flavor_order(cqs[m])).get(flavor, 0.0) for m in members)
                in_use = sum(usage[(m, flavor)] for m in members) + w.gpus
                # Within the cohort's quota as a whole (a queue borrowing leaves less to the others: without
                # preemption, a queue under its nominal quota waits for the borrower to finish), and within
                # the queue's borrowing limit. Without a cohort, `pooled` is the queue's own quota.
                borrowed = used - nominal
                if in_use <= pooled and (limit is None or borrowed <= limit):
                    usage[(w.cq, flavor)] = used
                    self._admit_one(w, flavor, flavors[flavor]["spec"].get("nodeLabels", {}), now)
                    break

    def _admit_one(self, w: _Wl, flavor: str, node_labels: dict[str, str], now: datetime) -> None:
        ns = w.obj["metadata"]["namespace"]
        pods = int(w.job["spec"].get("parallelism", 1))
        admission = {
            "clusterQueue": w.cq,
            "podSetAssignments": [
                {"name": "main", "flavors": {GPU_RESOURCE: flavor}, "resourceUsage": {GPU_RESOURCE: fmt(w.gpus)},
                 "count": pods}
            ],
        }  # fmt: skip
        conds = _conditions(QuotaReserved=(True, "QuotaReserved"), Admitted=(True, "Admitted"))
        w.obj = self.store.update(
            WORKLOADS,
            ns,
            w.obj["metadata"]["name"],
            setting("status", value={"admission": admission, "conditions": conds}),
        )

        def run(o: Obj) -> None:
            o["spec"]["suspend"] = False
            o["spec"]["template"]["spec"]["nodeSelector"] = dict(node_labels)

        self.store.update(JOBS, ns, w.job["metadata"]["name"], run)
        self.kueue.admitted_at[w.key] = now
        self.kueue.admitted_total[w.cq] += 1

    def _status(self, cqs: dict[str, Obj], lqs: dict[tuple[str, str], Obj], wls: list[_Wl]) -> None:
        live = [w for w in wls if not w.finished]
        for name, cq in cqs.items():
            status = _cq_status(cq, [w for w in live if w.cq == name])
            if cq.get("status") != status:
                self.store.update(CLUSTER_QUEUES, None, name, setting("status", value=status))
        for (ns, name), lq in lqs.items():
            mine = [w for w in live if w.obj["metadata"]["namespace"] == ns and w.obj["spec"]["queueName"] == name]
            status = _counts(mine)
            if lq.get("status") != status:
                self.store.update(LOCAL_QUEUES, ns, name, setting("status", value=status))


def _counts(wls: list[_Wl]) -> dict[str, Any]:
    admitted = sum(1 for w in wls if w.admission)
    return {"pendingWorkloads": len(wls) - admitted, "reservingWorkloads": admitted, "admittedWorkloads": admitted}


def _cq_status(cq: Obj, wls: list[_Wl]) -> dict[str, Any]:
    """A ClusterQueue's status as Kueue writes it: its workloads, its usage per flavor, whether it admits."""
    used: dict[str, float] = defaultdict(float)
    for w in wls:
        if w.admission:
            used[w.flavor] += w.gpus
    stopped = cq["spec"].get("stopPolicy") in STOPPED
    usage = [
        {
            "name": f,
            "resources": [{"name": GPU_RESOURCE, "total": fmt(used[f]), "borrowed": fmt(max(0.0, used[f] - n))}],
        }
        for f, n, _ in flavor_order(cq)
    ]
    active = {
        "type": "Active",
        "status": "False" if stopped else "True",
        "reason": "Stopped" if stopped else "Ready",
        "message": "Can't admit new workloads; clusterQueue is stopped" if stopped else "Can admit new workloads",
    }
    return {**_counts(wls), "flavorsUsage": usage, "conditions": [active]}


def _suspend(o: Obj) -> None:
    o["spec"]["suspend"] = True
    o["spec"]["template"]["spec"].pop("nodeSelector", None)
