"""Where a runbook's checks are read when each cluster runs its own Prometheus: a check of one region in that
region's cluster, one over the fleet combined across clusters (or from the global view), the failover headroom
in both places. Each Prometheus here is a table of answers by PromQL that records what it was asked."""

from __future__ import annotations

import pytest

from console.catalog.clusters import per_region
from console.catalog.model import GlobalView
from console.fleet.queries import runbook_query
from console.runbooks.reads import PromReads, outer_aggregation, terms
from console.sources.prometheus import Sample


class _Answers:
    """A Prometheus that answers from a table (PromQL -> value; absent: no series) and fails when `down`."""

    def __init__(self, answers: dict[str, float], down: bool = False):
        self.answers, self.down, self.asked = answers, down, []

    def query(self, promql: str, at: float | None = None) -> list[Sample]:
        self.asked.append(promql)
        if self.down:
            raise ConnectionError("refused")
        return [Sample({}, self.answers[promql])] if promql in self.answers else []


def test_the_outer_aggregation_is_the_one_enclosing_the_whole_query() -> None:
    assert outer_aggregation("sum(rate(x[1m]))") == "sum"
    assert outer_aggregation("count(x > 1) or vector(0)") == "count"
    assert outer_aggregation("min(1 - a / on (s) b)") == "min"
    assert outer_aggregation("max(a) / scalar(max(b))") == ""  # a ratio of two: not combinable
    assert outer_aggregation("1 - sum(a) / sum(b)") == ""
    assert outer_aggregation("avg(a)") == "avg"  # combined as sums over counts: a mean of means is not the mean
    assert outer_aggregation("count by (pod) (x)") == ""
    assert outer_aggregation("sum(a") == ""


@pytest.fixture
def split(catalog):
    """The demo catalog as a cluster per region, each with its own Prometheus."""
    clusters = [c.model_copy(update={"prometheus": f"http://{c.name}:9090"}) for c in per_region(catalog)]
    return catalog.model_copy(update={"clusters": clusters})


def _regions(cat) -> list[str]:
    return [r.name for r in cat.regions]


def test_a_check_of_one_region_is_read_in_its_cluster_and_else_in_the_fleets(split) -> None:
    a, b, c = _regions(split)
    q = runbook_query("region_nodes_ready", region=b)
    own = {a: _Answers({q: 1.0}), b: _Answers({q: 7.0}), c: _Answers({q: 2.0})}
    fleet = _Answers({q: 5.0})
    reads = PromReads(split, fleet, own)
    assert reads.value("region_nodes_ready", {"region": b}, q) == 7.0
    assert own[b].asked == [q] and not own[a].asked and not fleet.asked
    assert reads.where("region_nodes_ready", {"region": b}, q) == f"in cluster {b}'s Prometheus (else the one given)"
    # Its cluster holds no such series (its rules run elsewhere), or is away: the fleet's answers.
    own[b].answers = {}
    assert reads.value("region_nodes_ready", {"region": b}, q) == 5.0
    own[b].down = True
    assert reads.value("region_nodes_ready", {"region": b}, q) == 5.0
    # Without clusters of their own, the one Prometheus answers as before.
    assert PromReads(split, fleet, {}).value("region_nodes_ready", {"region": b}, q) == 5.0
    assert PromReads(split, fleet, {}).where("region_nodes_ready", {"region": b}, q) == ""


def test_a_cluster_whose_prometheus_held_nothing_is_passed_over_for_a_while(split) -> None:
    # The demo's layout: each cluster's Prometheus scrapes, the rules run in the global view. A check polled
    # by a wait is then one request a poll, not two; the cluster is asked again after a minute.
    _, b, _ = _regions(split)
    q = runbook_query("region_nodes_ready", region=b)
    own, fleet, now = {b: _Answers({})}, _Answers({q: 5.0}), [0.0]
    reads = PromReads(split, fleet, own, clock=lambda: now[0])
    for t in (0.0, 1.0, 59.0):
        now[0] = t
        assert reads.value("region_nodes_ready", {"region": b}, q) == 5.0
    assert len(own[b].asked) == 1 and len(fleet.asked) == 3
    # A minute on, the cluster's own is asked first again, and once it holds the series it answers.
    own[b].answers = {q: 7.0}
    now[0] = 61.0
    assert reads.value("region_nodes_ready", {"region": b}, q) == 7.0
    assert len(own[b].asked) == 2 and len(fleet.asked) == 3
    # Passed over, but the fleet's is away: the cluster's own answers.
    own[b].answers, now[0] = {}, 62.0
    reads.value("region_nodes_ready", {"region": b}, q)
    fleet.down, own[b].answers, now[0] = True, {q: 8.0}, 63.0
    assert reads.value("region_nodes_ready", {"region": b}, q) == 8.0


def test_a_series_absent_everywhere_asks_each_prometheus_once_a_read(split) -> None:
    _, b, _ = _regions(split)
    q = runbook_query("region_nodes_ready", region=b)
    own, fleet, now = {b: _Answers({})}, _Answers({q: 5.0}), [0.0]
    reads = PromReads(split, fleet, own, clock=lambda: now[0])
    assert reads.value("region_nodes_ready", {"region": b}, q) == 5.0  # the cluster is passed over from here
    fleet.answers, fleet.asked, own[b].asked = {}, [], []
    now[0] = 1.0
    assert reads.value("region_nodes_ready", {"region": b}, q) is None
    assert fleet.asked == [q] and own[b].asked == [q]
    # The cluster's own away as well: still one request to the fleet's.
    own[b].down, fleet.asked, now[0] = True, [], 2.0
    assert reads.value("region_nodes_ready", {"region": b}, q) is None
    assert fleet.asked == [q]


def test_a_check_over_the_fleet_combines_each_clusters_answer_as_its_aggregation_does(split) -> None:
    a, b, c = _regions(split)
    err = runbook_query("service_error_ratio", service="llm-chat", region=".*")
    rps = runbook_query("service_rps", service="llm-chat", region=".*")
    room = runbook_query("service_min_headroom", service="llm-chat", region=".*")
    table = {a: (0.01, 10.0, 0.4), b: (0.05, 20.0, 0.1), c: (0.02, 30.0, 0.3)}
    own = {r: _Answers({err: e, rps: s, room: h}) for r, (e, s, h) in table.items()}
    reads = PromReads(split, _Answers({}), own)
    assert outer_aggregation(err) == "max" and outer_aggregation(rps) == "sum"
    assert reads.value("service_error_ratio", {"region": ".*"}, err) == 0.05
    assert reads.value("service_rps", {"region": ".*"}, rps) == 60.0
    assert reads.value("service_min_headroom", {"region": ".*"}, room) == 0.1
    assert reads.where("service_rps", {"region": ".*"}, rps) == "in every cluster's Prometheus, combined by sum"
    # A cluster away is left out: it serves nothing while it is.
    own[b].down = True
    assert reads.value("service_error_ratio", {"region": ".*"}, err) == 0.02
    assert reads.value("service_rps", {"region": ".*"}, rps) == 40.0
    # With a global view, it alone answers what spans clusters.
    glob = split.model_copy(update={"global_view": GlobalView(prometheus="http://global:9090")})
    fleet = _Answers({rps: 99.0})
    assert PromReads(glob, fleet, own).value("service_rps", {"region": ".*"}, rps) == 99.0
    assert fleet.asked == [rps] and own[a].asked.count(rps) == 2  # the two reads above, none since


def test_a_query_is_split_into_terms_only_outside_brackets_and_strings() -> None:
    q = 'sum(rate(x{code=~"5..", service="llm-chat"}[3m])) / sum(rate(x{service="llm-chat"}[3m]))'
    assert terms(q) == (['sum(rate(x{code=~"5..", service="llm-chat"}[3m]))', 'sum(rate(x{service="llm-chat"}[3m]))'],
                        ["/"])  # fmt: skip
    assert terms("1 - sum(a) / scalar(max(b))") == (["1", "sum(a)", "scalar(max(b))"], ["-", "/"])
    assert terms("min(1 - a / on (s) b)") == (["min(1 - a / on (s) b)"], [])
    assert terms("sum(a) > 5") is None  # a comparison: not combinable
    assert terms("sum(a) / rate(b[1m])") is None  # a term with no aggregation over it
    assert terms("count by (pod) (x)") is None
    assert terms("sum(a) or vector(0)") == (["sum(a) or vector(0)"], [])
    assert terms("sum(a) - sum(b) or vector(0)") is None  # the fallback is the difference's, not sum(b)'s


def test_a_check_of_aggregations_joined_by_arithmetic_combines_term_by_term(split) -> None:
    # Without a global view, a fleet-wide ratio, difference or mean is worked out from each cluster's terms:
    # the ratio of the sums, not a ratio of one cluster's (or the first cluster's alone).
    a, b, c = _regions(split)
    args = {"service": "llm-chat", "region": ".*", "window": "3m"}
    ratio = runbook_query("service_error_ratio_over", **args)
    busy = runbook_query("service_gpu_busy", service="llm-chat", region=".*")
    over = runbook_query("service_p95_over_slo", service="llm-chat", region=".*")
    unready = runbook_query("service_replicas_unready", service="llm-chat", region=".*")
    (errs, reqs), (p95, slo), (want, have) = (terms(q)[0] for q in (ratio, over, unready))  # type: ignore[index]
    assert terms(busy) == ([busy], []) and busy.startswith("avg(")
    b_sum, b_count = "sum" + busy[3:], "count" + busy[3:]  # what a mean is made of, asked of each cluster
    slo = slo.removeprefix("scalar(").removesuffix(")")
    # Per cluster: errors/s, requests/s, GPU busy sum and count, p95, SLO, replicas wanted and ready.
    table = {a: (1.0, 100.0, 1.8, 2, 0.4, 0.5, 4, 4), b: (9.0, 100.0, 0.6, 3, 0.9, 0.5, 6, 3),
             c: (0.0, 800.0, 0.0, 0, 0.2, 0.5, 2, 2)}  # fmt: skip
    own = {
        r: _Answers(dict(zip((errs, reqs, b_sum, b_count, p95, slo, want, have), row, strict=True)))
        for r, row in table.items()
    }
    fleet = _Answers({ratio: 0.5, busy: 0.5, over: 0.5, unready: 0.5})  # the first cluster's, as a reader would get
    reads = PromReads(split, fleet, own)
    col = lambda i: [row[i] for row in table.values()]  # noqa: E731
    assert reads.value("service_error_ratio_over", args, ratio) == sum(col(0)) / sum(col(1))
    assert reads.value("service_gpu_busy", {"region": ".*"}, busy) == sum(col(2)) / sum(col(3))
    assert reads.value("service_p95_over_slo", {"region": ".*"}, over) == max(col(4)) / max(col(5))
    assert reads.value("service_replicas_unready", {"region": ".*"}, unready) == sum(col(6)) - sum(col(7))
    assert not fleet.asked
    assert (
        reads.where("service_error_ratio_over", args, ratio) == "in every cluster's Prometheus, combined term by term"
    )
    assert reads.where("service_gpu_busy", {"region": ".*"}, busy) == "in every cluster's Prometheus, combined by avg"
    # A term no cluster answers leaves the check without a value, as PromQL's empty side of a division would.
    for prom in own.values():
        del prom.answers[reqs]
    assert reads.value("service_error_ratio_over", args, ratio) is None


def test_the_failover_headroom_takes_the_fleets_traffic_and_the_targets_own_capacity(split) -> None:
    a, b, c = _regions(split)
    args = {"service": "llm-chat", "region": a}
    whole = runbook_query("region_headroom_for_all", **args)
    total = runbook_query("service_total_rps", service="llm-chat")
    cap = runbook_query("region_capacity_rps", **args)
    # One Prometheus reads it as one expression: the two parts, exactly.
    assert whole == f"1 - {total} / {cap}"
    own = {a: _Answers({total: 30.0, cap: 100.0}), b: _Answers({total: 20.0}), c: _Answers({}, down=True)}
    reads = PromReads(split, _Answers({}), own)
    assert reads.value("region_headroom_for_all", args, whole) == pytest.approx(1 - 50.0 / 100.0)
    assert cap in own[a].asked and cap not in own[b].asked
    assert reads.where("region_headroom_for_all", args, whole) == (
        f"its traffic over every cluster's Prometheus, its capacity in cluster {a}'s Prometheus"
    )
    # No capacity anywhere: no value, not a pass.
    own[a].answers = {total: 30.0}
    assert reads.value("region_headroom_for_all", args, whole) is None
    own[a].answers = {total: 30.0, cap: 0.0}
    assert reads.value("region_headroom_for_all", args, whole) == float("-inf")
