"""A fleet of a chosen size for benchmarks: the demo catalog with its GPU pools scaled to N GPUs.

Every GPU pool gets 8 GPUs per node and its node counts scaled in proportion, so the shape (pools, regions,
models, MIG, services) stays the demo's and only the size changes.
"""

from __future__ import annotations

from pathlib import Path

from console.catalog import load_catalog
from console.catalog.model import Catalog

ROOT = Path(__file__).resolve().parent.parent


def scaled_catalog(gpus: int, gpus_per_node: int = 8) -> Catalog:
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
    return base.model_copy(update={"pools": pools})
