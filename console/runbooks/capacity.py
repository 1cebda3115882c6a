"""Whether a plan's scale-ups fit: the namespace's GPU quota room and the free GPUs on the nodes the
deployment may run on, read from the Kubernetes API the scheduler and the quota admission use.

A scale-up past either does not fail at once: the extra pods wait Pending (or are refused by the quota)
while the run waits for them to be ready, and the quota it fills starves the team's other services.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from console.quantity import parse_quantity
from console.runbooks.changes import Change

if TYPE_CHECKING:
    from console.sources.kube import KubeObjects

# The extended resources a GPU is requested as: whole GPUs, MIG slices, shared-GPU fractions.
GPU_RESOURCE = re.compile(r"^nvidia\.com/|gpu", re.IGNORECASE)


@dataclass(frozen=True)
class Shortfall:
    """One limit the scale-ups would pass: what it is, what they need, and the room there is."""

    limit: str
    resource: str
    need: float
    room: float
    detail: str

    def __str__(self) -> str:
        return f"{self.limit}: the scale-ups need {self.need:g} more {self.resource}, {self.detail}"


def _requests(obj: dict[str, Any]) -> dict[str, float]:
    """GPU requests of a pod spec, summed over its containers."""
    out: dict[str, float] = defaultdict(float)
    for c in obj.get("containers", []):
        for k, v in ((c.get("resources") or {}).get("requests") or {}).items():
            if GPU_RESOURCE.search(k):
                out[k] += parse_quantity(v)
    return out


def _scale_ups(changes: list[Change]) -> list[tuple[Change, int]]:
    out = []
    for c in changes:
        if c.target.kind == "deployment" and c.path == ("spec", "replicas") and isinstance(c.after, int):
            before = c.before if isinstance(c.before, int) else 0
            if c.after > before:
                out.append((c, c.after - before))
    return out


def shortfalls(kube: KubeObjects, changes: list[Change]) -> list[Shortfall]:
    """Every quota and node set the plan's scale-ups would overfill, with the figures."""
    by_ns: dict[tuple[str, str], float] = defaultdict(float)
    by_nodes: dict[tuple[tuple[tuple[str, str], ...], str], float] = defaultdict(float)
    for c, more in _scale_ups(changes):
        spec = kube.get("deployment", c.target.namespace, c.target.name)["spec"]["template"]["spec"]
        selector = tuple(sorted((spec.get("nodeSelector") or {}).items()))
        for res, per_pod in _requests(spec).items():
            by_ns[(c.target.namespace, res)] += more * per_pod
            by_nodes[(selector, res)] += more * per_pod
    if not by_ns:
        return []
    return _quota_shortfalls(kube, by_ns) + _node_shortfalls(kube, by_nodes)


def _quota_shortfalls(kube: KubeObjects, need: dict[tuple[str, str], float]) -> list[Shortfall]:
    out = []
    for q in kube.list("resourcequota"):
        ns, name = q["metadata"]["namespace"], q["metadata"]["name"]
        hard, used = q.get("spec", {}).get("hard", {}), q.get("status", {}).get("used", {})
        for (want_ns, res), more in need.items():
            key = next((k for k in (f"requests.{res}", res) if k in hard), None)
            if want_ns != ns or key is None:
                continue
            cap, now = parse_quantity(hard[key]), parse_quantity(used.get(key, 0))
            room = max(0.0, cap - now)
            if more > room:
                detail = f"the quota has room for {room:g} ({now:g} of {cap:g} used)"
                out.append(Shortfall(f"namespace {ns} quota {name} ({key})", res, more, room, detail))
    return out


def _node_shortfalls(kube: KubeObjects, need: dict[tuple[tuple[tuple[str, str], ...], str], float]) -> list[Shortfall]:
    nodes = kube.list("node")
    held: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for p in kube.list("pod"):
        node = p.get("spec", {}).get("nodeName")
        if node and p.get("status", {}).get("phase") not in ("Succeeded", "Failed"):
            for k, v in _requests(p["spec"]).items():
                held[node][k] += v
    out = []
    for (selector, res), more in need.items():
        fits = [
            n
            for n in nodes
            if _schedulable(n) and all(n["metadata"].get("labels", {}).get(k) == v for k, v in selector)
        ]
        total = sum(parse_quantity(n["status"].get("allocatable", {}).get(res, 0)) for n in fits)
        free = max(0.0, total - sum(held[n["metadata"]["name"]][res] for n in fits))
        if more > free:
            where = ",".join(f"{k}={v}" for k, v in selector) or "any node"
            detail = f"{free:g} of {total:g} are free on the {len(fits)} ready, schedulable nodes"
            out.append(Shortfall(f"nodes {where}", res, more, free, detail))
    return out


def _matches(node: dict[str, Any], selector: tuple[tuple[str, str], ...]) -> bool:
    labels = node["metadata"].get("labels", {})
    return all(labels.get(k) == v for k, v in selector)


def _schedulable(node: dict[str, Any]) -> bool:
    if node.get("spec", {}).get("unschedulable"):
        return False
    conds = node.get("status", {}).get("conditions", [])
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds)
