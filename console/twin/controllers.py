"""The twin's controllers, run each tick: node faults, HPA bounds, Jobs, Deployments (scale up and down,
pending pods retried), readiness after warm-up, and the status fields Kubernetes keeps."""

from __future__ import annotations

from datetime import datetime
from functools import partial

from console.twin.labels import REGION as REGION_LABEL
from console.twin.model import (
    DEPLOYMENTS,
    HPAS,
    JOBS,
    NODES,
    PODS,
    QUOTAS,
    condition,
    fmt,
    parse_requests,
    qty_mem,
)
from console.twin.pods import Pods
from console.twin.store import Obj, setting


class Controllers(Pods):
    def _apply_node_faults(self, now: datetime) -> None:
        effects = self.faults.effects(now)
        down_regions, lost = effects.down_regions, effects.lost_nodes
        for node in self.nodes.values():
            ready = node.region not in down_regions and node.name not in lost
            was_lost = node.lost
            node.lost = node.name in lost
            if node.lost and not was_lost:
                # A lost node's pods are gone; their controllers re-create them elsewhere.
                for key in [p.key for p in self.pods.values() if p.node == node.name]:
                    self.delete_pod(key)
            if ready != node.ready:
                node.ready = ready

                def change(o: Obj, ready: bool = ready) -> None:
                    o["status"]["conditions"] = [condition("Ready", ready, "" if ready else "NodeStatusUnknown")]

                self.store.update(NODES, None, node.name, change)

    def _reconcile_hpas(self) -> None:
        # The twin's HPA keeps a deployment inside [minReplicas, maxReplicas]; it does not scale on metrics,
        # so what a runbook sets is what the fleet runs.
        for hpa in list(self.store.iter(HPAS)):
            ns, spec = hpa["metadata"]["namespace"], hpa["spec"]
            dep = self.store.find(DEPLOYMENTS, ns, spec["scaleTargetRef"]["name"])
            if dep is None:
                continue
            cur = dep["spec"].get("replicas", 0)
            want = min(max(cur, spec.get("minReplicas", 1)), spec.get("maxReplicas", cur))
            if want != cur:
                self.store.update(DEPLOYMENTS, ns, dep["metadata"]["name"], setting("spec", "replicas", value=want))
            st = hpa.get("status") or {}
            if st.get("currentReplicas") != cur or st.get("desiredReplicas") != want:
                self.store.update(
                    HPAS,
                    ns,
                    hpa["metadata"]["name"],
                    setting("status", value={"currentReplicas": cur, "desiredReplicas": want}),
                )

    def _reconcile_jobs(self) -> None:
        # An indexed Job runs `parallelism` pods named <job>-<index>; a suspended one runs none (its pods are
        # deleted and come back under the same names when it resumes).
        for job in list(self.store.iter(JOBS)):
            meta, spec = job["metadata"], job["spec"]
            ns, name = meta["namespace"], meta["name"]
            key = f"{ns}/{name}"
            pods = {p.name: p for p in self._by_job.get(key, {}).values()}
            done = bool((job.get("status") or {}).get("completionTime"))
            want = 0 if spec.get("suspend") or done else int(spec.get("parallelism", 1))
            tmpl = spec["template"]
            sel = tmpl["spec"].get("nodeSelector", {})
            pool, region = self.pool_of(sel), sel.get(REGION_LABEL)
            for pod_name, p in list(pods.items()):
                if int(pod_name.rsplit("-", 1)[1]) >= want:
                    del pods[pod_name]
                    self.delete_pod(p.key)
            for p in pods.values():
                if p.node is None and self._place(p, pool, region):
                    self.store.update(PODS, ns, p.name, partial(self._bind, p=p))
            requests = parse_requests(tmpl["spec"]["containers"][0]["resources"].get("requests", {}))
            util = float((meta.get("annotations") or {}).get("gpuops.io/utilisation", "0"))
            # The labels the Job controller puts on its pods, which `kubectl get pods -l job-name=` selects.
            job_labels = {"batch.kubernetes.io/job-name": name, "job-name": name}
            for i in range(want):
                if f"{name}-{i}" in pods or not self._quota_allows(ns, requests):
                    continue
                pod = self.create_pod(
                    ns,
                    f"{name}-{i}",
                    requests,
                    {**tmpl["metadata"]["labels"], **job_labels},
                    ("job", name),
                    pool,
                    region,
                    util,
                )
                pod.job = key
                self._by_job.setdefault(key, {})[pod.key] = pod
            active = len(self._by_job.get(key, {}))
            if (job.get("status") or {}).get("active") != active:
                self.store.update(JOBS, ns, name, setting("status", "active", value=active))

    def _reconcile_deployments(self, now: datetime) -> None:
        for dep in list(self.store.iter(DEPLOYMENTS)):
            meta, spec = dep["metadata"], dep["spec"]
            ns, name = meta["namespace"], meta["name"]
            labels = meta.get("labels", {})
            pods = self._deployment_pods(ns, name)
            want = spec.get("replicas", 0)
            tmpl = spec["template"]
            sel = tmpl["spec"].get("nodeSelector", {})
            pool, region = self.pool_of(sel), sel.get(REGION_LABEL)
            # Pending pods get another chance at a node each tick.
            for p in pods:
                if p.node is None and self._place(p, pool, region):
                    self.store.update(PODS, ns, p.name, partial(self._bind, p=p))
            if len(pods) > want:
                # Scale down removes pending pods first, then unready ones, then the youngest, as the
                # ReplicaSet controller does: removing the oldest (ready) ones made every rollback an outage.
                youngest_first = sorted(pods, key=lambda p: p.created, reverse=True)
                victims = sorted(youngest_first, key=lambda p: (p.node is not None, p.ready_marked))[: len(pods) - want]
                for p in reversed(victims):
                    self.delete_pod(p.key)
            elif len(pods) < want:
                requests = parse_requests(tmpl["spec"]["containers"][0]["resources"].get("requests", {}))
                owner = (
                    "cpu" if labels.get("gpuops.io/fallback") == "cpu" else "service",
                    labels.get("gpuops.io/service", ""),
                    labels.get("gpuops.io/region", ""),
                )
                for _ in range(want - len(pods)):
                    if not self._quota_allows(ns, requests):
                        break
                    pod_name = self._new_pod_name(ns, name)
                    pod = self.create_pod(
                        ns,
                        pod_name,
                        requests,
                        dict(tmpl["metadata"]["labels"]),
                        owner,
                        pool,
                        region,
                        deployment=f"{ns}/{name}",
                    )
                    self._by_dep.setdefault(pod.deployment, {})[pod.key] = pod

    def _quota_allows(self, ns: str, requests: dict[str, int]) -> bool:
        q = self.store.find(QUOTAS, ns, "gpu-quota")
        if q is None:
            return True
        used = self._ns_usage(ns)
        for key, hard in q["spec"]["hard"].items():
            res = key.removeprefix("requests.")
            if res in requests and res not in ("cpu", "memory") and used.get(res, 0) + requests[res] > float(hard):
                return False
        return True

    def _ns_usage(self, ns: str) -> dict[str, float]:
        used: dict[str, float] = {}
        for p in self.pods.values():
            if p.namespace == ns:
                for k, v in p.requests.items():
                    used[k] = used.get(k, 0) + v
        return used

    def _mark_ready(self, now: datetime) -> None:
        for p in self.pods.values():
            node = self.nodes.get(p.node or "")
            ready = bool(node and node.ready and now - p.created >= self.warmup)
            if ready != p.ready_marked:
                p.ready_marked = ready
                self.store.update(PODS, p.namespace, p.name, setting("status", value=self._pod_status(p, ready)))

    def _update_deployment_status(self) -> None:
        for dep in list(self.store.iter(DEPLOYMENTS)):
            meta = dep["metadata"]
            pods = self._deployment_pods(meta["namespace"], meta["name"])
            ready = sum(1 for p in pods if p.ready_marked)
            want = dep["spec"].get("replicas", 0)
            status = {
                "observedGeneration": meta.get("generation", 1),
                "replicas": len(pods),
                "updatedReplicas": len(pods),
                "readyReplicas": ready,
                "availableReplicas": ready,
                "unavailableReplicas": max(0, want - ready),
                "conditions": [{"type": "Available", "status": "True" if ready >= want else "False"}],
            }
            if dep.get("status") != status:
                self.store.update(DEPLOYMENTS, meta["namespace"], meta["name"], setting("status", value=status))

    def _update_quota_status(self) -> None:
        usage: dict[str, dict[str, float]] = {}
        for p in self.pods.values():
            u = usage.setdefault(p.namespace, {})
            for k, v in p.requests.items():
                u[k] = u.get(k, 0) + v
        for q in list(self.store.iter(QUOTAS)):
            ns = q["metadata"]["namespace"]
            u = usage.get(ns, {})
            hard = q["spec"]["hard"]
            used = {}
            for key in hard:
                res = key.removeprefix("requests.")
                amount = u.get(res, 0.0)
                used[key] = (
                    fmt(amount / 1000) if res == "cpu" else qty_mem(int(amount)) if res == "memory" else fmt(amount)
                )
            status = {"hard": dict(hard), "used": used}
            if q.get("status") != status:
                self.store.update(QUOTAS, ns, q["metadata"]["name"], setting("status", value=status))
