"""A fleet of a chosen size for benchmarks: the demo catalog with its GPU pools scaled to N GPUs.

Every GPU pool gets 8 GPUs per node and its node counts scaled in proportion, so the shape (pools, regions,
models, MIG, services) stays the demo's and only the size changes.
"""

from __future__ import annotations

from pathlib import Path

from console.catalog import load_catalog
from console.catalog.model import Catalog

ROOT = Path(__file__).resolve().parent.parent


def scaled_catalog(gpus: int, gpus_per_node: int = 8, namespaces: int = 0) -> Catalog:
    """The demo catalog at `gpus` GPUs; with `namespaces`, extra teams (one namespace and a GPU quota each)
    until the fleet has that many namespaces."""
    base = load_catalog(ROOT / "fleet.yaml")
    want_nodes = gpus // gpus_per_node
    gpu_pools = [p for p in base.pools if p.gpus_per_node]
    have = sum(sum(p.nodes.values()) for p in gpu_pools)
    pools, placed = [], 0
    slots = [(p, r) for p in gpu_pools for r in p.nodes]
    counts = {(p.name, r): max(1, round(p.nodes[r] * want_nodes / have)) for p, r in slots}
    # Put the rounding difference on the first pool so the total is exact.
    first = (slots[0][0].name, slots[0][1])
    counts[first] += want_nodes - sum(counts.values())
    for p in base.pools:
        if not p.gpus_per_node:
            pools.append(p)
            continue
        nodes = {r: counts[(p.name, r)] for r in p.nodes}
        placed += sum(nodes.values())
        pools.append(p.model_copy(update={"nodes": nodes, "gpus_per_node": gpus_per_node}))
    assert placed == want_nodes
    teams = list(base.teams)
    have_ns = sum(len(t.namespaces) for t in teams)
    template = teams[-1]
    for i in range(max(0, namespaces - have_ns)):
        ns = f"team-bench-{i:03d}"
        teams.append(
            template.model_copy(
                update={
                    "name": f"bench-{i:03d}",
                    "namespaces": [ns],
                    "quota_gpus": {ns: 8},
                    "cost_centre": f"CC-9{i:03d}",
                }
            )
        )
    return base.model_copy(update={"pools": pools, "teams": teams})


def write_catalog(cat: Catalog, path: Path) -> Path:
    """The catalog as YAML, for a twin run as its own process (`gpuops twin --catalog`)."""
    import yaml

    path.write_text(yaml.safe_dump(cat.model_dump(mode="json"), sort_keys=False))
    return path


def regional_catalog(gpus: int, regions: int) -> Catalog:
    """`scaled_catalog(gpus)` laid over `regions` regions (`region-00`, …): each pool's nodes, each service's
    replicas and demand spread evenly over all of them, so that a cluster per region holds an equal share."""
    from console.catalog.model import Cluster, Region

    base = scaled_catalog(gpus)
    names = [f"region-{i:02d}" for i in range(regions)]

    def spread(total: float, integral: bool = True) -> dict[str, float]:
        if not integral:
            return dict.fromkeys(names, total / regions)
        share, extra = divmod(int(total), regions)
        return {r: share + (1 if i < extra else 0) for i, r in enumerate(names)}

    pools = [
        p.model_copy(update={"nodes": spread(sum(p.nodes.values())), "gpu_model_by_region": {}}) for p in base.pools
    ]
    services = [
        s.model_copy(
            update={
                "regions": names,
                "replicas": {r: max(1, n) for r, n in spread(sum(s.replicas.values())).items()},
                "base_rps": spread(sum(s.base_rps.values()), integral=False),
            }
        )
        for s in base.services
    ]
    return base.model_copy(
        update={
            "clusters": [Cluster(name="fleet", context="fleet", regions=names)],
            "regions": [Region(name=r) for r in names],
            "pools": pools,
            "services": services,
            "jobs": [j.model_copy(update={"region": names[0]}) for j in base.jobs],
            "queues": None,
        }
    )
