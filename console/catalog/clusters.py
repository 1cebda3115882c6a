"""A fleet split into clusters: which cluster holds a region, and the part of the catalog one cluster runs."""

from __future__ import annotations

from console.catalog.model import Catalog, Cluster, Queues


def per_region(catalog: Catalog) -> list[Cluster]:
    """One cluster per region, named (and its context) after it: how platforms that keep a region's failure
    inside that region lay their clusters out."""
    writable = [c for c in catalog.clusters if not c.readonly]
    production = bool(writable) and all(c.production for c in writable)
    return [Cluster(name=r, context=r, regions=[r], production=production) for r in catalog.region_names()]


def cluster_of(clusters: list[Cluster], region: str) -> str:
    """The name of the first cluster that holds `region` ("" when none does)."""
    return next((c.name for c in clusters if region in c.regions), "")


def cluster_catalog(catalog: Catalog, cluster: Cluster) -> Catalog:
    """What one cluster runs: its regions' nodes, services, Jobs and batch queues. The teams, their namespaces
    and quotas are in every cluster (each cluster enforces its own ResourceQuotas); events and prices are the
    fleet's."""
    keep = set(cluster.regions)
    pools = [
        p.model_copy(
            update={
                "nodes": {r: n for r, n in p.nodes.items() if r in keep},
                "gpu_model_by_region": {r: m for r, m in p.gpu_model_by_region.items() if r in keep},
            }
        )
        for p in catalog.pools
        if any(r in keep for r in p.nodes)
    ]
    services = []
    for s in catalog.services:
        regions = [r for r in s.regions if r in keep]
        if regions:
            services.append(
                s.model_copy(
                    update={
                        "regions": regions,
                        "replicas": {r: v for r, v in s.replicas.items() if r in keep},
                        "base_rps": {r: v for r, v in s.base_rps.items() if r in keep},
                    }
                )
            )
    return catalog.model_copy(
        update={
            "clusters": [cluster],
            "regions": [r for r in catalog.regions if r.name in keep],
            "pools": pools,
            "services": services,
            "jobs": [j for j in catalog.jobs if j.region in keep],
            "queues": _queues(catalog.queues, keep),
        }
    )


def _queues(queues: Queues | None, keep: set[str]) -> Queues | None:
    """The flavors in the cluster's regions, each cluster queue's quota on those, and the local queues that
    feed a cluster queue left with any."""
    if queues is None:
        return None
    flavors = [f for f in queues.flavors if f.region in keep]
    names = {f.name for f in flavors}
    cqs = []
    for cq in queues.cluster_queues:
        quota = {f: q for f, q in cq.quota.items() if f in names}
        if quota:
            cqs.append(cq.model_copy(update={"quota": quota}))
    kept = {cq.name for cq in cqs}
    if not cqs:
        return None
    return queues.model_copy(
        update={
            "flavors": flavors,
            "cluster_queues": cqs,
            "local_queues": [lq for lq in queues.local_queues if lq.cluster_queue in kept],
        }
    )
