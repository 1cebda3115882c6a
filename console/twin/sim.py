"""The fleet twin's simulation: the catalog's fleet (build), a scheduler, controllers, service load, faults.

Kubernetes objects live in the `Store` (what the API serves); the twin keeps the device-level state a
cluster does not hold in its API (which GPU a pod got, energy counters; `console.twin.model`) beside it,
under the same lock. Each concern is a module of its own: `build` (the fleet from the catalog), `pods` and
`scheduler` (placing pods), `controllers` (Deployments, Jobs, HPAs, quotas), `traffic` (demand, serving,
utilisation) and `faults` (what each injected fault does).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from console.catalog.model import Catalog, Event, mig_resource
from console.twin.build import FleetBuilder
from console.twin.clusters import Router
from console.twin.controllers import Controllers
from console.twin.faults import FaultBook
from console.twin.kubeapi import DenyRule, KubeApi
from console.twin.kueue import Kueue
from console.twin.labels import CONVENTIONS
from console.twin.model import (
    CONFIGMAPS,
    DEPLOYMENTS,
    NAMESPACES,
    NODES,
    PODS,
    Node,
    Pod,
    ServiceRegion,
    SimClock,
)
from console.twin.resources import Resource
from console.twin.storage import StoreLoad
from console.twin.store import Obj, Store
from console.twin.traffic import Traffic

__all__ = ["CONFIGMAPS", "DEPLOYMENTS", "NAMESPACES", "Twin"]


class Twin(FleetBuilder, Controllers, Kueue, Traffic):
    def __init__(
        self,
        catalog: Catalog,
        *,
        speed: float = 1.0,
        start: datetime | None = None,
        warmup_s: float = 90.0,
        deny: Iterable[str] = (),
        tick_s: float = 0.25,
        labels: str = "gpuops",
        ksm_node_labels: Iterable[str] | None = None,
        clock: SimClock | None = None,
        router: Router | None = None,
    ):
        """`labels`: the node label convention (console/twin/labels.py); `ksm_node_labels`: the node labels
        kube-state-metrics exports (its `--metric-labels-allowlist=nodes=[...]`), None for all of them.
        `clock` and `router`: shared by the clusters of one twin (console/twin/clusters.py); this twin is then
        its catalog's one cluster."""
        self.catalog = catalog
        self.conv = CONVENTIONS[labels]
        self.ksm_node_labels = None if ksm_node_labels is None else frozenset(ksm_node_labels)
        self.store = Store()
        self.lock = self.store.lock
        self.api = KubeApi(self.store, deny=[DenyRule.parse(d) for d in deny])
        self.clock = clock or SimClock(start or datetime.now(UTC), speed)
        self.router = router
        self.cluster_name = catalog.clusters[0].name if router else ""
        self.warmup = timedelta(seconds=warmup_s)
        self.tick_s = tick_s
        self.faults = FaultBook(prefix=f"{self.cluster_name}-f" if self.cluster_name else "f")
        self.nodes: dict[str, Node] = {}
        self.by_pool: dict[tuple[str, str], list[Node]] = {}
        self.pods: dict[str, Pod] = {}
        self.services: dict[tuple[str, str], ServiceRegion] = {}
        self.store_loads: dict[tuple[str, str], StoreLoad] = {}  # each pool's store by region, at the last tick
        self.mig_per_gpu: dict[str, int] = {
            mig_resource(p.mig): p.mig.instances_per_gpu for p in catalog.pools if p.mig
        }
        self._last_wall = time.monotonic()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._by_dep: dict[str, dict[str, Pod]] = {}
        self._by_job: dict[str, dict[str, Pod]] = {}
        self._pod_seq = 0
        self.past_events: list[Event] = []  # events only the backfilled history holds (console.twin.history)
        self.store.listeners.append(self._on_change)
        with self.lock:
            self._build()
            self._build_queues()
            self.tick()
            # The fleet the twin starts with has been running, as a cluster's has when the console first reads
            # it: its first replicas serve at once (a replica added later warms up). Without this, every
            # service failed all its requests for the warm-up's length after a start without history.
            warm = self.clock.now() - self.warmup
            for pod in self.pods.values():
                pod.created = min(pod.created, warm)
            self.tick(0.0)

    def __getstate__(self) -> dict[str, object]:
        """The fleet as it stands, for a kept history: no lock, thread or stop flag (a loaded twin makes its own)."""
        return {k: v for k, v in vars(self).items() if k not in ("lock", "_stop", "_thread")}

    def __setstate__(self, state: dict[str, object]) -> None:
        vars(self).update(state)
        self.lock = self.store.lock
        self._stop = threading.Event()
        self._thread = None
        self.store.listeners.append(self._on_change)

    def _on_change(self, event: str, res: Resource, obj: Obj) -> None:
        if res is NODES and event == "MODIFIED":
            node = self.nodes.get(obj["metadata"]["name"])
            if node:
                node.unschedulable = bool(obj["spec"].get("unschedulable"))
        if res is PODS and event == "DELETED":
            key = f"{obj['metadata']['namespace']}/{obj['metadata']['name']}"
            pod = self.pods.pop(key, None)
            if pod:
                self._release(pod)
                self._by_dep.get(pod.deployment, {}).pop(key, None)
                self._by_job.get(pod.job, {}).pop(key, None)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="twin-clock", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.tick_s):
            with self.lock:
                self.tick()

    def tick(self, dt: float | None = None) -> None:
        """Bring the fleet to the clock's time; `dt` is the wall seconds the counters advance by (default:
        since the last tick)."""
        now = self.clock.now()
        wall = time.monotonic()
        if dt is None:
            dt = max(0.0, wall - self._last_wall)
        self._last_wall = wall
        self._apply_node_faults(now)
        self.replay(now)
        self._reconcile_hpas()
        self._index()
        self._reconcile_queues(now)
        self._reconcile_jobs()
        self._reconcile_deployments(now)
        self._index()
        self._mark_ready(now)
        self._update_deployment_status()
        self._update_quota_status()
        self._serve(now, dt)
        self._energy(dt)

    def resume_after_history(self, at: datetime, wall: float, since: datetime) -> None:
        """Go live from the history's last step: the clock reads `at` as of Unix time `wall` (its past began at
        `since`), and the first tick advances the counters by the wall time since then (no gap, no reset)."""
        with self.lock:
            self.clock.resume(at, wall, since)
            self._last_wall = time.monotonic() - max(0.0, time.time() - wall)

    def since_tick(self) -> float:
        """Wall seconds since the last tick (callers hold `lock`)."""
        return max(0.0, time.monotonic() - self._last_wall)

    def replay(self, now: datetime) -> None:
        """Hook for a recorded workload (the Alibaba trace); the catalog fleet has none."""

    def fault_targets(self) -> dict[str, set[str]]:
        return {
            "region": set(self.catalog.region_names()),
            "pool": {p.name for p in self.catalog.pools},
            "node": set(self.nodes),
            "service": {s.name for s in self.catalog.services},
            "job": {j.name for j in self.catalog.jobs},
            "cluster": {self.cluster_name} if self.cluster_name else set(),
        }

    def add_fault(self, spec: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            regions = {s.name: set(s.regions) for s in self.catalog.services}
            fault = self.faults.add(spec, self.clock.now(), self.fault_targets(), regions)
            self.tick()
            return fault.as_json()
