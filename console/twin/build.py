"""The fleet the catalog describes, as Kubernetes objects: nodes with their GPUs, namespaces and quotas,
routing config maps, Deployments with their HPAs, batch Jobs."""

from __future__ import annotations

import math
from typing import Any

from console.catalog.model import (
    GPU_MILLI_RESOURCE,
    GPU_RESOURCE,
    Pool,
    Service,
    default_weights,
    deployment_name,
    mig_resource,
    routing_configmap,
)
from console.twin.model import (
    CONFIGMAPS,
    DEPLOYMENTS,
    HPAS,
    JOBS,
    NAMESPACES,
    NODES,
    QUOTAS,
    Gpu,
    Node,
    ServiceRegion,
    TwinState,
    condition,
    fmt,
    node_info,
    qty_mem,
    resource_list,
    uuid_for,
)
from console.twin.resources import Resource
from console.twin.store import Obj


class FleetBuilder(TwinState):
    def _build(self) -> None:
        c = self.catalog
        models = {m.name: m for m in c.gpu_models}
        for pool in c.pools:
            for region, count in pool.nodes.items():
                for i in range(count):
                    self.add_node(pool, region, f"{pool.name}-{region}-{i:03d}", models)
        for team in c.teams:
            for ns in team.namespaces:
                self._create(
                    NAMESPACES,
                    None,
                    {
                        "metadata": {
                            "name": ns,
                            "labels": {
                                "gpuops.io/team": team.name,
                                "gpuops.io/cost-centre": team.cost_centre,
                                "gpuops.io/critical": str(team.critical).lower(),
                            },
                        }
                    },
                )
                self._create(
                    QUOTAS,
                    ns,
                    {
                        "metadata": {"name": "gpu-quota"},
                        "spec": {"hard": self._quota_hard(ns, team.quota_gpus.get(ns))},
                    },
                )
        for svc in c.services:
            self._create(
                CONFIGMAPS,
                svc.namespace,
                {
                    "metadata": {"name": routing_configmap(svc), "labels": {"gpuops.io/service": svc.name}},
                    "data": {
                        "mode": "normal",
                        **{f"weight.{r}": fmt(w) for r, w in default_weights(svc).items()},
                    },
                },
            )
            for region in svc.regions:
                self.services[(svc.name, region)] = ServiceRegion(svc, region)
                self._create_deployment(
                    svc,
                    region,
                    deployment_name(svc, region),
                    svc.replicas.get(region, 1),
                    svc.pool,
                    self._pod_requests(svc, c.pool(svc.pool)),
                )
                if svc.fallback.mode == "cpu" and svc.fallback.deployment:
                    cpu_pool = next((p for p in c.pools if p.gpus_per_node == 0 and region in p.nodes), None)
                    if cpu_pool:
                        self._create_deployment(
                            svc,
                            region,
                            f"{svc.fallback.deployment}-{region}",
                            0,
                            cpu_pool.name,
                            {"cpu": 4000, "memory": 8192},
                            cpu=True,
                        )
        for job in c.jobs:
            pool = c.pool(job.pool)
            req = self._gpu_request(pool, job.gpus_per_pod)
            req.update({"cpu": 8000, "memory": 65536})
            res = resource_list(req)
            labels = {"gpuops.io/job": job.name, "gpuops.io/team": job.team, "gpuops.io/workload": "batch"}
            where = self.conv.selector(pool, job.region)
            # A batch Job, as training and evaluation run: `suspend` is how work is paused and resumed.
            self._create(
                JOBS,
                job.namespace,
                {
                    "metadata": {
                        "name": job.name,
                        "labels": labels,
                        "annotations": {"gpuops.io/utilisation": fmt(job.utilisation)},
                    },
                    "spec": {
                        "parallelism": job.pods,
                        "completions": job.pods,
                        "completionMode": "Indexed",
                        "suspend": False,
                        "template": {
                            "metadata": {"labels": labels},
                            "spec": {
                                "nodeSelector": where,
                                "containers": [{"name": "main", "resources": {"requests": res, "limits": res}}],
                            },
                        },
                    },
                    "status": {"active": 0},
                },
            )

    def _quota_hard(self, ns: str, gpus: float | None) -> dict[str, str]:
        hard = {"requests.cpu": "2000", "requests.memory": "8Ti"}
        if gpus is not None:
            hard[f"requests.{GPU_RESOURCE}"] = fmt(gpus)
        for svc in self.catalog.services:
            pool = self.catalog.pool(svc.pool)
            if svc.namespace == ns and pool.mig:
                # MIG slices are their own resource; the quota allows the slices of the GPUs it grants.
                hard[f"requests.{mig_resource(pool.mig)}"] = fmt((gpus or 0) * pool.mig.instances_per_gpu)
        return hard

    def add_node(
        self,
        pool: Pool,
        region: str,
        name: str,
        models: dict[str, Any],
        gpu_price: float | None = None,
        cpu_milli: int | None = None,
        mem_mib: int | None = None,
    ) -> Node:
        model = pool.model_in(region)
        spec = models.get(model) if model else None
        gpus = []
        for i in range(pool.gpus_per_node):
            g = Gpu(
                i,
                uuid_for(name, str(i)),
                model or "",
                spec.memory_mib if spec else 16384,
                spec.tdp_watts if spec else 250,
                spec.idle_watts if spec else 30,
            )
            if pool.mig:
                g.mig_slots, g.mig_profile = pool.mig.instances_per_gpu, pool.mig.profile
                g.slots = [None] * g.mig_slots
            gpus.append(g)
        price = gpu_price if gpu_price is not None else self.catalog.prices.gpu_hourly.get(model or "", 0.0)
        node = Node(
            name,
            pool.name,
            region,
            model,
            gpus,
            cpu_milli or pool.cpu_per_node * 1000,
            mem_mib or pool.memory_gib_per_node * 1024,
            price,
            mig_resource(pool.mig) if pool.mig else "",
        )
        self.nodes[name] = node
        self.by_pool.setdefault((pool.name, region), []).append(node)
        alloc = {
            "cpu": str(node.cpu_milli // 1000),
            "memory": qty_mem(node.mem_mib),
            "pods": "110",
            GPU_RESOURCE: str(0 if pool.mig else len(gpus)),
        }
        labels = self.conv.labels(pool, region, name, model, len(gpus))
        if pool.mig:
            alloc[mig_resource(pool.mig)] = str(len(gpus) * pool.mig.instances_per_gpu)
        self._create(
            NODES,
            None,
            {
                "metadata": {"name": name, "labels": labels},
                "spec": {},
                "status": {
                    "capacity": alloc,
                    "allocatable": dict(alloc),
                    "conditions": [condition("Ready", True)],
                    "nodeInfo": node_info(name),
                },
            },
        )
        return node

    def _gpu_request(self, pool: Pool, gpus: float) -> dict[str, int]:
        if not gpus:
            return {}
        if pool.mig:
            return {mig_resource(pool.mig): max(1, round(gpus * pool.mig.instances_per_gpu))}
        if gpus < 1:
            return {GPU_MILLI_RESOURCE: round(gpus * 1000)}
        return {GPU_RESOURCE: math.ceil(gpus)}

    def _pod_requests(self, svc: Service, pool: Pool) -> dict[str, int]:
        return {**self._gpu_request(pool, svc.gpus_per_replica), "cpu": 4000, "memory": 16384}

    def _create_deployment(
        self,
        svc: Service,
        region: str,
        name: str,
        replicas: int,
        pool: str,
        requests: dict[str, int],
        cpu: bool = False,
    ) -> None:
        labels = {"app": name, "gpuops.io/service": svc.name, "gpuops.io/region": region}
        if cpu:
            labels["gpuops.io/fallback"] = "cpu"
        res = resource_list(requests)
        self._create(
            DEPLOYMENTS,
            svc.namespace,
            {
                "metadata": {"name": name, "labels": labels},
                "spec": {
                    "replicas": replicas,
                    "selector": {"matchLabels": {"app": name}},
                    "template": {
                        "metadata": {"labels": labels},
                        "spec": {
                            "nodeSelector": self.where(pool, region),
                            "containers": [
                                {
                                    "name": "server",
                                    "image": f"registry.local/{svc.name}:stable",
                                    "resources": {"requests": res, "limits": res},
                                }
                            ],
                        },
                    },
                },
                "status": {},
            },
        )
        if not cpu:
            self._create(
                HPAS,
                svc.namespace,
                {
                    "metadata": {"name": name, "labels": labels},
                    "spec": {
                        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                        "minReplicas": max(1, replicas),
                        "maxReplicas": max(svc.hpa_max_replicas, replicas),
                        "metrics": [
                            {
                                "type": "External",
                                "external": {
                                    "metric": {"name": "DCGM_FI_DEV_GPU_UTIL"},
                                    "target": {
                                        "type": "AverageValue",
                                        "averageValue": str(int(svc.target_utilisation * 100)),
                                    },
                                },
                            }
                        ],
                    },
                    "status": {"currentReplicas": replicas, "desiredReplicas": replicas},
                },
            )

    def _create(self, res: Resource, ns: str | None, obj: Obj) -> Obj:
        return self.store.create(res, ns, obj)
