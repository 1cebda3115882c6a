"""Several clusters on one twin (`gpuops twin --clusters per-region`): each cluster is a twin of its own (its
own store, Kubernetes API and /metrics) on one shared clock, and a global load balancer in front of them routes
each service's demand across every cluster's regions by the weights in each cluster's routing config map."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from console.catalog.model import Catalog, Cluster
from console.twin import loadmodel as lm
from console.twin.store import ApiError


@dataclass
class Router:
    """The global load balancer: what every cluster last reported for each service and region (its demand and
    its weight over its default weight), and each cluster's share of the total. A cluster that is down gets none:
    the balancer's health checks take it out, as a GSLB's do."""

    _demand: dict[tuple[str, str], float] = field(default_factory=dict)
    _scale: dict[tuple[str, str], float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def route(self, service: str, demand: dict[str, float], scale: dict[str, float]) -> dict[str, float]:
        """This cluster's regions' demand after routing: `scale` is each region's weight over its default
        (0 where the cluster is down); the total over every cluster is conserved while any region takes it."""
        with self._lock:
            for r in demand:
                self._demand[(service, r)] = demand[r]
                self._scale[(service, r)] = scale.get(r, 0.0)
            everywhere = {r: d for (s, r), d in self._demand.items() if s == service}
            weights = {r: self._scale[(service, r)] for r in everywhere}
        routed = lm.route(everywhere, weights, dict.fromkeys(everywhere, 1.0))
        return {r: routed[r] for r in demand}

    def __getstate__(self) -> dict[str, Any]:
        return {"_demand": self._demand, "_scale": self._scale}

    def __setstate__(self, state: dict[str, Any]) -> None:
        vars(self).update(state, _lock=threading.Lock())


class ClusterSet:
    """The twins of one fleet's clusters, by cluster name; faults are each cluster's own, found by their id."""

    def __init__(self, twins: dict[str, Any]):
        self.twins = twins

    def for_fault(self, spec: dict[str, Any], default: Any) -> Any:
        """The twin a fault belongs to: the one whose cluster it names, else the one it was posted to."""
        target = (spec.get("target") or {}).get("cluster")
        if target is None:
            return default
        if target not in self.twins:
            raise ApiError(
                422, "Invalid", f"target.cluster: unknown cluster {target!r} (known: {', '.join(self.twins)})"
            )
        return self.twins[target]

    def with_fault(self, fault_id: str) -> Any:
        twin = next((t for t in self.twins.values() if fault_id in t.faults.faults), None)
        if twin is None:
            raise ApiError(404, "NotFound", f"fault {fault_id!r} not found")
        return twin

    def all(self) -> Iterable[Any]:
        return self.twins.values()


def split_clusters(catalog: Catalog, clusters: list[Cluster]) -> list[tuple[Cluster, Catalog]]:
    """Each cluster with the part of the catalog it runs; refuses a region in two clusters or in none."""
    from console.catalog.clusters import cluster_catalog

    seen: dict[str, str] = {}
    for c in clusters:
        for r in c.regions:
            if r in seen:
                raise ValueError(f"region {r!r} is in clusters {seen[r]!r} and {c.name!r}: a region runs in one")
            seen[r] = c.name
    missing = [r for r in catalog.region_names() if r not in seen]
    if missing:
        raise ValueError(f"regions in no cluster: {', '.join(missing)}")
    return [(c, cluster_catalog(catalog, c)) for c in clusters]
