"""Pods in the twin: created as the API server would show them, placed by the scheduler, deleted, and
indexed by the Deployment or Job that owns them."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable

from console.twin import scheduler
from console.twin.model import PODS, Node, Pod, TwinState, condition, resource_list
from console.twin.store import Obj, now_rfc3339


class Pods(TwinState):
    def create_pod(
        self,
        ns: str,
        name: str,
        requests: dict[str, int],
        labels: dict[str, str],
        owner: tuple[str, ...],
        pool: str | None,
        region: str | None,
        util: float = 0.0,
        node_filter: Callable[[Node], bool] | None = None,
        deployment: str = "",
    ) -> Pod:
        pod = Pod(ns, name, None, requests, self.clock.now(), owner, util, deployment)
        self._place(pod, pool, region, node_filter)
        self.pods[pod.key] = pod
        res = resource_list(requests)
        spec: Obj = {"containers": [{"name": "main", "resources": {"requests": res, "limits": res}}]}
        if pod.node:
            spec["nodeName"] = pod.node
        if pool:
            spec["nodeSelector"] = self.where(pool, region)
        annotations = {"gpuops.io/gpus": ",".join(str(i) for i, _ in pod.gpu_alloc + pod.mig_alloc)} if pod.node else {}
        self.store.create(
            PODS,
            ns,
            {
                "metadata": {"name": name, "labels": labels, "annotations": annotations},
                "spec": spec,
                "status": self._pod_status(pod, ready=False),
            },
        )
        return pod

    def _pod_status(self, pod: Pod, ready: bool) -> Obj:
        if not pod.node:
            return {"phase": "Pending", "conditions": [condition("PodScheduled", False, "Unschedulable")]}
        return {
            "phase": "Running",
            "conditions": [condition("PodScheduled", True), condition("Ready", ready)],
            "startTime": now_rfc3339(),
        }

    def _place(
        self, pod: Pod, pool: str | None, region: str | None, node_filter: Callable[[Node], bool] | None = None
    ) -> bool:
        if pool is None:
            cands: Iterable[Node] = self.nodes.values()
        elif region:
            cands = self.by_pool.get((pool, region), [])
        else:
            cands = [n for (p, _), ns in self.by_pool.items() if p == pool for n in ns]
        return scheduler.place(pod, cands, node_filter)

    def _release(self, pod: Pod) -> None:
        scheduler.release(pod, self.nodes.get(pod.node or ""))

    def delete_pod(self, key: str) -> None:
        pod = self.pods.get(key)
        if pod is None:
            return
        ns, name = key.split("/", 1)
        if self.store.find(PODS, ns, name) is not None:
            self.store.delete(PODS, ns, name)  # the listener releases it
        else:
            self._release(self.pods.pop(key))

    def _new_pod_name(self, ns: str, name: str) -> str:
        """`<name>-<5 hex>` as a ReplicaSet names its pods; like generateName, another on a collision (five hex
        digits collide within a few hundred pods). Derived from a counter, not the time: the same seed and
        clock give the same names."""
        while True:
            self._pod_seq += 1
            suffix = hashlib.blake2s(f"{name}/{self._pod_seq}".encode(), digest_size=4).hexdigest()[:5]
            if f"{ns}/{name}-{suffix}" not in self.pods:
                return f"{name}-{suffix}"

    def _deployment_pods(self, ns: str, name: str) -> list[Pod]:
        return list(self._by_dep.get(f"{ns}/{name}", {}).values())

    def _index(self) -> None:
        self._by_dep, self._by_job = {}, {}
        for p in self.pods.values():
            if p.deployment:
                self._by_dep.setdefault(p.deployment, {})[p.key] = p
            if p.job:
                self._by_job.setdefault(p.job, {})[p.key] = p

    def _bind(self, o: Obj, p: Pod) -> None:
        o["spec"]["nodeName"] = p.node
        o["metadata"].setdefault("annotations", {})["gpuops.io/gpus"] = ",".join(
            str(i) for i, _ in p.gpu_alloc + p.mig_alloc
        )
        o["status"] = self._pod_status(p, ready=False)
