"""Traffic on the twin: each service's demand per region (diurnal, events, spikes), routed by its config map,
served by the ready replicas, and what that does to GPU utilisation and energy."""

from __future__ import annotations

import contextlib
import math
from collections import Counter
from datetime import datetime

from console.catalog.model import Service, default_weights, deployment_name, routing_configmap
from console.twin import loadmodel as lm
from console.twin import storage
from console.twin.faults import FaultKind
from console.twin.model import CONFIGMAPS, Gpu, Node, Pod, gpu_share, jitter
from console.twin.pods import Pods


class Traffic(Pods):
    def routing(self, svc: Service) -> tuple[str, dict[str, float]]:
        cm = self.store.find(CONFIGMAPS, svc.namespace, routing_configmap(svc))
        data = (cm or {}).get("data") or {}
        weights = default_weights(svc)
        for r in svc.regions:
            # A malformed weight keeps the default rather than stopping the twin.
            with contextlib.suppress(ValueError):
                weights[r] = max(0.0, float(data.get(f"weight.{r}", weights[r])))
        mode = data.get("mode", "normal")
        return (mode if mode in ("normal", "rules", "cpu") else "normal"), weights

    def demand(self, svc: Service, now: datetime) -> dict[str, float]:
        offsets = {r.name: r.utc_offset_hours for r in self.catalog.regions}
        event = 1.0
        for ev in (*self.catalog.events, *self.past_events):
            if svc.name in ev.services:
                event = max(event, lm.event_factor(now, ev.start, ev.end, ev.multiplier))
        effects = self.faults.effects(now)
        out = {}
        for r in svc.regions:
            spike = effects.spike(svc.name, r)
            wobble = 1 + 0.04 * math.sin(now.timestamp() / 97 + len(svc.name) + len(r))
            out[r] = svc.base_rps.get(r, 0.0) * lm.diurnal(now, offsets.get(r, 0)) * event * spike * wobble
        return out

    def is_lost(self, now: datetime) -> bool:
        """Whether `cluster_down` holds this twin's cluster now (never for a twin that is the whole fleet)."""
        down = self.faults.active(now, FaultKind.CLUSTER_DOWN)
        return bool(self.cluster_name) and any(f.target["cluster"] == self.cluster_name for f in down)

    def _route(self, svc: Service, now: datetime, weights: dict[str, float], lost: bool) -> dict[str, float]:
        """Each region's demand after routing: by the weights here, or across every cluster by the global load
        balancer, which takes a lost cluster out."""
        demand, default = self.demand(svc, now), default_weights(svc)
        if self.router is None:
            return lm.route(demand, weights, default)
        scale = {r: weights[r] / default[r] if default.get(r) and not lost else 0.0 for r in demand}
        return self.router.route(svc.name, demand, scale)

    def _serve(self, now: datetime, dt: float) -> None:
        effects = self.faults.effects(now)
        lost = self.is_lost(now)
        down = effects.down_regions | (frozenset(self.catalog.region_names()) if lost else frozenset())
        plans = {svc.name: self.routing(svc) for svc in self.catalog.services}
        routed_by = {svc.name: self._route(svc, now, plans[svc.name][1], lost) for svc in self.catalog.services}
        io_limits, sustained = storage.io_limits(self.catalog, routed_by, effects)
        for svc in self.catalog.services:
            mode, weights = plans[svc.name]
            routed = routed_by[svc.name]
            for region in svc.regions:
                io_limit = io_limits.get((svc.name, region), math.inf)  # a storage-bound service's store
                sr = self.services[(svc.name, region)]
                sr.advance(dt)  # what was served since the last tick, at the rates then in effect
                sr.mode, sr.weight = mode, weights[region]
                gpu_pods = [
                    p for p in self._deployment_pods(svc.namespace, deployment_name(svc, region)) if p.ready_marked
                ]
                per_replica = max(svc.gpus_per_replica, 1.0) / svc.gpu_seconds_per_request
                factor = svc.fallback.gpu_load_factor if mode == "rules" else 1.0
                base = svc.base_latency_ms / 1000
                if mode == "cpu" and svc.fallback.deployment:
                    cpu_pods = [
                        p
                        for p in self._deployment_pods(svc.namespace, f"{svc.fallback.deployment}-{region}")
                        if p.ready_marked
                    ]
                    capacity = min(len(cpu_pods) * per_replica / lm.CPU_SLOWDOWN, io_limit)
                    served = lm.serve(routed[region], capacity, base * 2)
                    gpu_util = 0.0
                else:
                    capacity = min(len(gpu_pods) * per_replica / factor, io_limit)
                    served = lm.serve(routed[region], capacity, base * (0.5 if mode == "rules" else 1.0))
                    gpu_util = served.utilisation
                if region in down:
                    served = lm.Served(routed[region], 0.0, routed[region], 0.0, 0.0, 0.0)
                    gpu_util = 0.0
                sr.last, sr.gpu_util = served, gpu_util
        self._store_io(dt, sustained)

    def _store_io(self, dt: float, sustained: dict[tuple[str, str], float]) -> None:
        """Every node's counters brought to now at the rates since the last tick, then the new rates."""
        for node in self.nodes.values():
            node.io.advance(dt)
        asked = ((sr.service.name, sr.region, sr.last.demand_rps, sr.last.served_rps) for sr in self.services.values())
        self.store_loads = storage.store_loads(self.catalog, asked, sustained)
        ready = Counter((n.pool, n.region) for n in self.nodes.values() if n.ready and not n.lost)
        kinds = {p.name: p.storage.kind for p in self.catalog.pools if p.storage}
        for node in self.nodes.values():
            where = (node.pool, node.region)
            node.io.rates = storage.node_rates(self.store_loads.get(where), ready[where], kinds.get(node.pool) == "nfs")

    def pod_util(self, pod: Pod) -> float:
        """GPU busy percent of the work on this pod."""
        if pod.owner[0] == "service":
            if not pod.ready_marked:
                return 0.0
            sr = self.services.get((pod.owner[1], pod.owner[2]))
            busy = sr.gpu_util * 100 if sr else 0.0
            return max(0.0, min(100.0, busy + jitter(pod.key, 3.0) if busy > 0 else 0.0))
        if pod.owner[0] == "job" and pod.owner[1] in self.faults.effects(self.clock.now()).stalled_jobs:
            return 0.0
        return max(0.0, min(100.0, pod.util + jitter(pod.key, 2.0)))

    def gpu_readings(self, node: Node, gpu: Gpu) -> tuple[float, float]:
        """(busy percent, memory used MiB) of one whole GPU."""
        util, mem = 0.0, gpu.memory_mib * 0.005
        for key in gpu.holders:
            pod = self.pods[key]
            share, busy = gpu_share(pod, gpu.index), self.pod_util(pod)
            util += busy * share
            mem += gpu.memory_mib * (0.55 + 0.3 * busy / 100) * share
        return min(100.0, util), min(gpu.memory_mib * 0.98, mem)

    def _energy(self, dt: float) -> None:
        if dt <= 0:
            return
        for node in self.nodes.values():
            if not node.ready:
                continue
            for g in node.gpus:
                util = self.gpu_readings(node, g)[0] if not g.mig_slots else self.mig_busy(g)
                g.energy_mj += (g.idle + (g.tdp - g.idle) * util / 100) * dt * 1000

    def mig_busy(self, gpu: Gpu) -> float:
        held = [self.pod_util(self.pods[k]) for k in gpu.slots if k and k in self.pods]
        return sum(held) / max(1, gpu.mig_slots)
