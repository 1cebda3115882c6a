"""Every cluster's own Prometheus asked as one: what a global view of the records alone does not hold.

Each pod's, node's and GPU's series live in one cluster only, so the answers put together are the fleet's. A
cluster that does not answer fails the whole read, naming it: a month's costs without one cluster's pods would
be wrong without saying so.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import Protocol, TypeVar

from console.sources.prometheus import Range, Sample


class _Prom(Protocol):
    def query(self, promql: str, at: float | None = None) -> list[Sample]: ...

    def query_range(self, promql: str, start: float, end: float, step_s: float) -> list[Range]: ...

    def intervals(self) -> tuple[float, float]: ...


T = TypeVar("T")


class ClusterUnavailable(RuntimeError):
    """A cluster's own Prometheus did not answer a read of every cluster."""


class EachCluster:
    """`query`, `query_range` and `intervals` over each cluster's own Prometheus (by cluster name)."""

    def __init__(self, own: Mapping[str, _Prom]):
        if not own:
            raise ValueError("no cluster's own Prometheus to read")
        self.own = dict(own)

    def query(self, promql: str, at: float | None = None) -> list[Sample]:
        out: list[Sample] = []
        for name, prom in self.own.items():
            out += self._asked(name, partial(prom.query, promql, at))
        return out

    def query_range(self, promql: str, start: float, end: float, step_s: float) -> list[Range]:
        out: list[Range] = []
        for name, prom in self.own.items():
            out += self._asked(name, partial(prom.query_range, promql, start, end, step_s))
        return out

    def intervals(self) -> tuple[float, float]:
        """The first cluster's (the demo and kube-prometheus run every cluster's alike)."""
        name, prom = next(iter(self.own.items()))
        return self._asked(name, prom.intervals)

    @staticmethod
    def _asked(name: str, read: Callable[[], T]) -> T:
        try:
            return read()
        except Exception as e:
            raise ClusterUnavailable(f"cluster {name}'s Prometheus: {type(e).__name__}: {e}") from e
