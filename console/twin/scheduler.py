"""Where a pod fits: whole GPUs, a share of one (milli-GPUs, best fit so shared GPUs pack), or MIG slices,
with the node's CPU and memory. Pure functions on the twin's nodes and pods."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Literal

from console.catalog.model import GPU_MILLI_RESOURCE, GPU_RESOURCE
from console.twin.model import Node, Pod

# ("gpu", GPU index, milli-GPUs) or ("mig", GPU index, slot)
Slot = tuple[Literal["gpu", "mig"], int, int]


def _whole(node: Node, count: int) -> list[Slot] | None:
    free = [g.index for g in node.gpus if not g.mig_slots and g.free_milli == 1000]
    return [("gpu", i, 1000) for i in free[:count]] if len(free) >= count else None


def _shared(node: Node, milli: int) -> list[Slot] | None:
    # Best fit: the busiest GPU that still has room, so shared GPUs pack.
    cands = sorted((g for g in node.gpus if not g.mig_slots and g.free_milli >= milli), key=lambda g: g.free_milli)
    return [("gpu", cands[0].index, milli)] if cands else None


def _mig(node: Node, count: int) -> list[Slot] | None:
    slots = [(g.index, s) for g in node.gpus for s, holder in enumerate(g.slots) if holder is None]
    return [("mig", i, s) for i, s in slots[:count]] if len(slots) >= count else None


def _room(node: Node, pod: Pod) -> bool:
    r = pod.requests
    if not node.ready or node.lost or node.unschedulable:
        return False
    return node.cpu_used + r.get("cpu", 0) <= node.cpu_milli and node.mem_used + r.get("memory", 0) <= node.mem_mib


def fits(node: Node, pod: Pod) -> list[Slot] | None:
    """The GPU slots this pod would take on `node`, or None if it does not fit."""
    r = pod.requests
    if not _room(node, pod):
        return None
    if not node.mig_resource and any(k.startswith("nvidia.com/mig-") for k in r):
        return None
    wants: list[tuple[Callable[[Node, int], list[Slot] | None], int]] = [
        (_whole, r.get(GPU_RESOURCE, 0)),
        (_shared, r.get(GPU_MILLI_RESOURCE, 0)),
        (_mig, r.get(node.mig_resource, 0) if node.mig_resource else 0),
    ]
    take: list[Slot] = []
    for find, amount in wants:
        if amount:
            got = find(node, amount)
            if got is None:
                return None
            take += got
    return take


def bind(pod: Pod, node: Node, take: list[Slot]) -> None:
    pod.node = node.name
    node.cpu_used += pod.requests.get("cpu", 0)
    node.mem_used += pod.requests.get("memory", 0)
    for kind, i, amount in take:
        g = node.gpus[i]
        if kind == "gpu":
            g.free_milli -= amount
            g.holders.append(pod.key)
            pod.gpu_alloc.append((i, amount))
        else:
            g.slots[amount] = pod.key
            pod.mig_alloc.append((i, amount))


def place(pod: Pod, candidates: Iterable[Node], node_filter: Callable[[Node], bool] | None = None) -> bool:
    """Bind the pod to the first candidate it fits on; False if none."""
    for node in candidates:
        if node_filter and not node_filter(node):
            continue
        take = fits(node, pod)
        if take is not None:
            bind(pod, node, take)
            return True
    return False


def release(pod: Pod, node: Node | None) -> None:
    if node:
        node.cpu_used -= pod.requests.get("cpu", 0)
        node.mem_used -= pod.requests.get("memory", 0)
        for i, milli in pod.gpu_alloc:
            node.gpus[i].free_milli += milli
            node.gpus[i].holders.remove(pod.key)
        for i, slot in pod.mig_alloc:
            node.gpus[i].slots[slot] = None
    pod.node, pod.gpu_alloc, pod.mig_alloc = None, [], []
