"""Where a runbook's check is read when each cluster runs its own Prometheus.

A check that names one region is read in the Prometheus of the cluster that holds the region: its own figures,
fresh, and there while the global view is away (what a failover's target must show of itself). Where that
answers nothing (its rules run elsewhere) or not at all, the fleet's Prometheus (the global view, or the one
given) answers instead. A check over several regions is read from the global view when there is one; without
one, each cluster's answer is combined as the query's own outer aggregation would (a `sum` of sums, a `max` of
maxima, an `avg` as the clusters' sums over their counts), and a query that joins such aggregations by arithmetic
(a ratio of two sums, a difference) term by term, then worked out as PromQL would. A cluster that does not answer
is left out (it serves nothing while it is away). A headroom whose traffic is the fleet's and whose capacity is
one region's (`HEADROOM_PARTS`) is read in both places.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from console.catalog.clusters import cluster_of
from console.fleet.queries import HEADROOM_PARTS, reads_only_forwarded, runbook_query, runbook_query_args

if TYPE_CHECKING:
    from console.catalog.model import Catalog
    from console.sources.prometheus import PrometheusSource, Sample

# How the answers of several clusters combine, by the query's outer aggregation.
_COMBINE: dict[str, Callable[[list[float]], float]] = {"sum": sum, "count": sum, "max": max, "min": min}
_OUTER = re.compile(r"^(sum|count|max|min|avg)\(")
_OR_ZERO = " or vector(0)"
_TAIL = {"", _OR_ZERO}
# The terms of an arithmetic of aggregations: numbers, and aggregations (`scalar()` of one is the same number).
_NUMBER = re.compile(r"^\d+(\.\d+)?$")
_SCALAR = re.compile(r"^scalar\((.*)\)$")
# How long a cluster's Prometheus that held nothing the fleet's held is passed over (its rules run in the global
# view): each check, and each poll of a wait, is then one request, not two. It is asked again after this.
ASK_OWN_AGAIN_S = 60.0


def terms(promql: str) -> tuple[list[str], list[str]] | None:
    """The query's terms and the arithmetic between them (`+ - * /` outside every bracket and string); None
    where a term is neither a number nor an aggregation whose clusters' answers combine."""
    parts: list[str] = []
    ops: list[str] = []
    depth, quote, start = 0, "", 0
    for i, ch in enumerate(promql):
        if quote:
            quote = "" if ch == quote and promql[i - 1] != "\\" else quote
        elif ch in "\"'`":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif depth == 0 and ch in "+-*/":
            parts.append(promql[start:i].strip())
            ops.append(ch)
            start = i + 1
    parts.append(promql[start:].strip())
    if not all(_NUMBER.match(t) or outer_aggregation(_unscalar(t)) for t in parts):
        return None
    # `or` binds looser than arithmetic: in `sum(a) - sum(b) or vector(0)` the fallback is the whole
    # difference's, not sum(b)'s. Only a query of one term may carry it.
    if len(parts) > 1 and any(t.endswith(_OR_ZERO) for t in parts):
        return None
    return parts, ops


def _unscalar(term: str) -> str:
    m = _SCALAR.match(term)
    return m.group(1) if m else term


def outer_aggregation(promql: str) -> str:
    """The aggregation that encloses the whole query (`sum(...)`, optionally `or vector(0)`), or ""."""
    m = _OUTER.match(promql)
    if not m:
        return ""
    depth = 0
    for i in range(m.end() - 1, len(promql)):
        depth += {"(": 1, ")": -1}.get(promql[i], 0)
        if depth == 0:
            return m.group(1) if promql[i + 1 :] in _TAIL else ""
    return ""


@dataclass(frozen=True)
class PromReads:
    """The fleet's Prometheus (the global view, or the one given) and each cluster's own, by cluster name."""

    catalog: Catalog
    fleet: PrometheusSource
    own: Mapping[str, PrometheusSource]
    clock: Callable[[], float] = time.monotonic
    # Cluster -> when its own Prometheus is asked again, after it held nothing of what the fleet's answered.
    _fleet_only: dict[str, float] = field(default_factory=dict, compare=False, repr=False)

    def value(self, query: str, args: Mapping[str, str], promql: str) -> float | None:
        """A check's value: `promql` is `query` with `args`, as a single Prometheus reads it."""
        if not self.own:
            return _first(self.fleet.query(promql))
        cluster = self._cluster(args)
        if query in HEADROOM_PARTS and cluster:
            traffic, capacity = (runbook_query(q, **_args_of(q, args)) for q in HEADROOM_PARTS[query])
            total, room = self._across(traffic), self._in(cluster, capacity)
            return None if total is None or room is None else 1 - _div(total, room)
        return self._in(cluster, promql) if cluster else self._across(promql)

    def where(self, query: str, args: Mapping[str, str], promql: str) -> str:
        """Where `value` reads the check first, in words ("" where the fleet's Prometheus alone answers)."""
        if not self.own:
            return ""
        cluster = self._cluster(args)
        glob = self.catalog.global_view is not None
        fleet = "the global view" if glob else "every cluster's Prometheus"
        if query in HEADROOM_PARTS and cluster:
            return f"its traffic over {fleet}, its capacity in cluster {cluster}'s Prometheus"
        if cluster:
            return f"in cluster {cluster}'s Prometheus (else {'the global view' if glob else 'the one given'})"
        split = None if self._fleet_holds(promql) else terms(promql)
        if split is None:
            return ""
        if len(split[0]) > 1:
            return "in every cluster's Prometheus, combined term by term"
        return f"in every cluster's Prometheus, combined by {outer_aggregation(promql)}"

    def samples(self, promql: str) -> list[Sample]:
        """A query over the fleet: the global view's answer, or every cluster's answers together."""
        if self.own and not self._fleet_holds(promql):
            out: list[Sample] = []
            for prom in self.own.values():
                try:
                    out += prom.query(promql)
                except Exception:  # a cluster away: what it holds is not there to act on
                    continue
            return out
        return self.fleet.query(promql)

    def _cluster(self, args: Mapping[str, str]) -> str:
        """The cluster with its own Prometheus that holds the one region the check names ("" otherwise)."""
        region = args.get("region", "")
        if not region or region == ".*" or "|" in region:
            return ""
        name = cluster_of(self.catalog.clusters, region)
        return name if name in self.own else ""

    def _in(self, cluster: str, promql: str) -> float | None:
        fleet_empty = False  # the fleet's answered this read with nothing: asking it again would say the same
        if self.clock() < self._fleet_only.get(cluster, -math.inf):
            try:
                got = _first(self.fleet.query(promql))
            except Exception:  # the fleet's away: the cluster's own may still answer
                got = None
            else:
                fleet_empty = got is None
            if got is not None:
                return got
        try:
            got = _first(self.own[cluster].query(promql))
        except Exception:  # its Prometheus away: the fleet's may still hold the region's series
            return None if fleet_empty else _first(self.fleet.query(promql))
        if got is not None:
            self._fleet_only.pop(cluster, None)
            return got
        if fleet_empty:
            return None
        got = _first(self.fleet.query(promql))
        if got is not None:  # the fleet holds what the cluster does not: its rules run there
            self._fleet_only[cluster] = self.clock() + ASK_OWN_AGAIN_S
        return got

    def _fleet_holds(self, promql: str) -> bool:
        """Whether the global view holds every series `promql` reads (a global view of the records alone holds no
        node or GPU series: those are read in each cluster's own)."""
        view = self.catalog.global_view
        return view is not None and (view.holds == "all" or reads_only_forwarded(promql))

    def _across(self, promql: str) -> float | None:
        split = None if self._fleet_holds(promql) else terms(promql)
        if split is None:  # the global view holds it whole (or no cluster's answers would make it)
            return _first(self.fleet.query(promql))
        parts, ops = split
        return _worked_out([self._term(t) for t in parts], ops)

    def _term(self, term: str) -> float | None:
        """One term over the fleet: a number, or an aggregation combined from each cluster's answer."""
        if _NUMBER.match(term):
            return float(term)
        agg = _unscalar(term)
        how = outer_aggregation(agg)
        if how == "avg":  # a mean of means is not the mean: the sums over the counts
            total, count = self._combined("sum" + agg[3:], sum), self._combined("count" + agg[3:], sum)
            return None if total is None or count is None else _div(total, count)
        return self._combined(agg, _COMBINE[how])

    def _combined(self, promql: str, combine: Callable[[list[float]], float]) -> float | None:
        values = []
        for prom in self.own.values():
            try:
                v = _first(prom.query(promql))
            except Exception:  # a cluster away serves nothing while it is
                continue
            if v is not None:
                values.append(v)
        return combine(values) if values else None


def _first(samples: list[Sample]) -> float | None:
    return samples[0].value if samples else None


def _args_of(query: str, args: Mapping[str, str]) -> dict[str, str]:
    return {k: args[k] for k in runbook_query_args(query)}


def _worked_out(values: list[float | None], ops: list[str]) -> float | None:
    """`values` joined by `ops` as PromQL would: `*` and `/` before `+` and `-`, each left to right; a term with no
    value leaves none (an empty side of a vector operation answers nothing)."""
    if any(v is None for v in values):
        return None
    nums = [v for v in values if v is not None]
    out, pending = [nums[0]], []
    for op, v in zip(ops, nums[1:], strict=True):
        if op in "*/":
            out[-1] = out[-1] * v if op == "*" else _div(out[-1], v)
        else:
            pending.append(op)
            out.append(v)
    total = out[0]
    for op, v in zip(pending, out[1:], strict=True):
        total = total + v if op == "+" else total - v
    return total


def _div(a: float, b: float) -> float:
    """a / b as PromQL divides: by zero, +-Inf, or NaN for 0 / 0."""
    if b:
        return a / b
    return math.nan if a == 0 else math.copysign(math.inf, a)
