"""Unit tests of the console's parts that need no server: commands, header, formats, queries, the table."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from textual.app import App, ComposeResult
from textual.widgets.data_table import ColumnKey

from console.catalog.model import Event
from console.fleet import queries as q
from console.fleet.build import ClusterReaders, SnapshotBuilder, _split
from console.fleet.snapshot import AlertRow, FleetSnapshot, QuotaRow
from console.sources.prometheus import Sample
from console.timefmt import countdown
from console.tui.alerts import alert_cells, summary
from console.tui.commands import Command, CommandError, parse
from console.tui.dialogs import parse_duration
from console.tui.format import bar, sparkline
from console.tui.header import header_markup, next_event
from console.tui.table import Column, KeyedTable
from tests.fleetdoc import ROOT, doc

NOW = datetime(2026, 12, 31, 10, 0, tzinfo=UTC)
GALA = Event(
    name="gala",
    title="Gala",
    start=datetime(2026, 12, 31, 11, 0, tzinfo=UTC),
    end=datetime(2027, 1, 1, 3, 0, tzinfo=UTC),
    multiplier=3,
    services=["llm-chat"],
)


def test_commands_parse_aliases_and_refuse_nonsense():
    assert parse(":quotas") == Command("quotas")
    assert parse("svc") == Command("services")
    assert parse(":ctx  twin-apac ") == Command("ctx", "twin-apac")
    assert parse(":q") == Command("quit")
    for bad, why in (
        (":", "empty"),
        (":frobnicate", "unknown command"),
        (":ctx", "one context"),
        (":pools x", "no argument"),
    ):
        with pytest.raises(CommandError, match=why):
            parse(bad)


def test_header_counts_firing_alerts_and_counts_down_to_the_event():
    snap = FleetSnapshot(taken_at=NOW - timedelta(seconds=4), pools=(), nodes=(), quotas=(), services=())
    text = header_markup(
        context="twin", regions=["us-east"], snap=snap, events=[GALA], now=NOW, readonly=True, compact=False
    )
    assert "ctx [b]twin[/b] (us-east)" in text and "data 4s old" in text and "no alerts firing" in text
    assert "gala in 01:00:00" in text and "READ-ONLY" in text
    assert next_event([GALA], NOW + timedelta(hours=2)) == (GALA, True)
    assert next_event([GALA], NOW + timedelta(days=2)) is None
    assert countdown(timedelta(days=36, hours=4, seconds=9)) == "36d 04:00:09"
    # On a twin whose clock stands 30 minutes before the gala while the machine's stands an hour before it:
    # the countdown is the fleet's, the data's age (of a snapshot stamped in wall time) the machine's.
    fleet = GALA.start - timedelta(minutes=30)
    text = header_markup(context="twin", regions=[], snap=snap, events=[GALA], now=NOW, fleet_now=fleet,
                         readonly=False, compact=False)  # fmt: skip
    assert "gala in 00:30:00" in text and "data 4s old" in text
    # Which series the refresh read, when it read Prometheus: one way, or both (clusters read differently).
    read = replace(snap, reads={"cluster a": "recorded", "cluster b": "raw"})
    text = header_markup(context="all", regions=[], snap=read, events=[], now=NOW, readonly=False, compact=False)
    assert "data 4s old (raw+recorded)" in text


def test_the_watchdog_is_a_heartbeat_not_an_alert_firing():
    def row(name: str, severity: str, state: str = "active") -> AlertRow:
        return AlertRow(name, name, severity, "sre", "", "", NOW, state, (), (("alertname", name),))

    watchdog, xid = row("Watchdog", "none"), row("GpuXidErrors", "critical")
    snap = FleetSnapshot(taken_at=NOW, pools=(), nodes=(), quotas=(), services=(), alerts=(watchdog,))
    text = header_markup(context="twin", regions=[], snap=snap, events=[], now=NOW, readonly=False, compact=False)
    assert "no alerts firing" in text
    assert summary([watchdog]) == "Alerts — none firing"
    assert alert_cells(watchdog, SimpleNamespace(now=NOW))["state"].plain == "heartbeat"  # type: ignore[arg-type]
    snap = FleetSnapshot(taken_at=NOW, pools=(), nodes=(), quotas=(), services=(), alerts=(xid, watchdog))
    assert snap.firing_by_severity() == {"critical": 1}
    assert summary([xid, watchdog]) == "Alerts — 1 critical | sre 1"


@pytest.mark.parametrize("status", ["running", "succeeded", "failed", "rolled-back", "interrupted", "refused", "new"])
def test_a_journal_line_is_valid_markup_whatever_the_run_says(status):
    from rich.text import Text

    from console.runbooks.journal import RunSummary
    from console.tui.runbooks import journal_line

    detail = "step 2 [set_config]: 409 " + "x" * 70 + "[/red] \\"  # brackets and a backslash near the cut
    line = journal_line(RunSummary("r1", "rb", "op[1]", "twin", "", {}, status, detail=detail))
    assert Text.from_markup(line).plain.startswith(f"r1  {status}  op[1]  step 2 [set_config]")


def test_formats():
    assert bar(0.82, 10).plain == " 82% ████████░░" and bar(0.82).style == "yellow"
    assert bar(0.96).style == "bold red" and bar(0.5).style == ""
    assert sparkline([0, 50, 100], 5).plain == "  ▁▅█"
    assert parse_duration("90m") == timedelta(minutes=90) and parse_duration(" 2h ") == timedelta(hours=2)
    for bad in ("2 weeks", "0m", "8d", ""):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_quota_row_colours_by_its_worst_resource():
    row = QuotaRow("ns", "t", gpu_used=7, gpu_hard=8, cpu_used=1, cpu_hard=100, mem_used=0, mem_hard=None)
    assert row.worst_ratio() == pytest.approx(0.875)
    assert QuotaRow("ns", "t", 0, 0, 0, None, 0, None).worst_ratio() == 0.0


def test_queries_tag_their_parts_and_refuse_unsafe_node_names():
    union = q.tagged({"a": "up", "b": "sum(up)"})
    assert union == 'label_replace(up, "gpuops_q", "a", "", "") or label_replace(sum(up), "gpuops_q", "b", "", "")'
    detail = q.gpu_detail("node-1.example")
    assert 'Hostname="node-1.example"' in detail and 'hostname="node-1.example"' in detail
    assert detail.count("gpuops_q") == len(q.GPU_DETAIL)
    with pytest.raises(ValueError):
        q.gpu_detail('x"} or vector(1) or up{a="')
    # The refresh's request count is fixed by this set, whatever the fleet.
    assert len(q.SNAPSHOT) <= 5


class _Prom:
    """Answers the snapshot's queries from a table of samples, as Prometheus would for a two-node pool."""

    requests = 0

    def __init__(self, samples: dict[str, list[Sample]]):
        self.samples = samples

    def query(self, promql: str) -> list[Sample]:
        self.requests += 1
        raw = {v: k for k, v in q.SNAPSHOT.items()}
        name = raw.get(promql) or next(f"recorded {k}" for k, v in q.SNAPSHOT_RECORDED.items() if v == promql)
        return self.samples.get(name, [])


class _Down(_Prom):
    """The same, until `down`: then every query fails as a Prometheus that does not answer."""

    down = False
    error = "refused"

    def query(self, promql: str) -> list[Sample]:
        if self.down:
            raise ConnectionError(self.error)
        return super().query(promql)


def _s(tag: str, value: float, **labels: str) -> Sample:
    return Sample({q.TAG: tag, **labels}, value)


def test_builder_composes_pools_from_their_aggregates(catalog):
    at = {"pool": "mig-a100", "region": "us-east"}
    pools = [
        _s("nodes", 2, **at, model="A100-80GB"),
        _s("ready", 1, **at),
        _s("allocatable", 32, **at, resource="nvidia_com_mig_3g_40gb"),
        _s("requested", 3, **at, resource="nvidia_com_mig_3g_40gb"),
        _s("gpus", 8, **at),
        _s("busy_sum", 80, **at),
        _s("idle_mig", 0.5, **at),
        _s("fb_used", 100, **at),
        _s("fb_free", 300, **at),
        _s("power", 500, **at),
        _s("nodes", 4, pool="cpu-transcode", region="us-east"),  # no GPU model label: a CPU pool
    ]
    prom = _Prom({"pools_inventory": pools})
    b = SnapshotBuilder(catalog, prom)
    snap = b.build()
    mig, cpu = snap.pools[1], snap.pools[0]
    assert (mig.pool, mig.region, mig.model) == ("mig-a100", "us-east", "A100-80GB")
    assert (mig.nodes, mig.nodes_ready) == (2, 1)
    assert mig.gpus_total == 16 and mig.gpus_allocated == 1.5 and mig.gpus_idle == 0.5  # 2 instances a GPU
    assert mig.util == 10.0 and mig.fb_total_mib == 400 and mig.power_w == 500
    assert (cpu.pool, cpu.model, cpu.nodes, cpu.gpus_total) == ("cpu-transcode", "cpu", 4, 0)
    # Counted by the stand-in as they arrive, and the snapshot says so: one for the pools' recorded series (none
    # here: no rules), then the five raw ones; from then on five, read raw.
    assert prom.requests == snap.requests == 6 and snap.nodes == ()
    assert snap.reads == {"prometheus": "raw"}
    again = b.build()
    assert again.requests == 5 and again.pools == snap.pools
    b.close()
    assert _split([_s("x", 1), _s("y", 2)]).keys() == {"x", "y"}


def test_where_the_rules_run_a_refresh_reads_their_recorded_series_and_says_so(catalog):
    from console.fleet.build import RECHECK_RAW_S

    at = {"pool": "infer-l4", "region": "us-east"}
    inventory = [_s("nodes", 2, **at, model="L4"), _s("allocatable", 8, **at, resource="nvidia_com_gpu")]
    pools = [*inventory, _s("gpus", 8, **at), _s("busy_sum", 400, **at)]
    services = [_s("p95", 0.25, service="llm-chat", region="us-east")]
    prom = _Prom({"recorded pools": pools, "recorded services": services})
    clock = [NOW]
    b = SnapshotBuilder(catalog, prom, clock=lambda: clock[0])
    snap = b.build()
    [row] = snap.pools
    assert (row.nodes, row.gpus_total, row.util) == (2, 8, 50.0)
    assert snap.requests == 3 and snap.reads == {"prometheus": "recorded"}  # pools, quotas, services
    assert [s.p95_ms for s in snap.services if s.service == "llm-chat" and s.region == "us-east"] == [250.0]
    # The rules stop (their series go): the same refresh reads raw, and keeps to raw for a while.
    prom.samples = {"pools_inventory": inventory, "pools_busy": pools[2:]}
    snap = b.build()
    assert snap.reads == {"prometheus": "raw"} and snap.pools == (row,) and snap.requests == 8
    assert b.build().requests == 5
    # Rules loaded again: taken up at the next look, the first recheck wait after the last.
    prom.samples["recorded pools"] = pools
    clock[0] = NOW + timedelta(seconds=RECHECK_RAW_S[0])
    snap = b.build()
    assert snap.reads == {"prometheus": "recorded"} and snap.requests == 3 and snap.pools == (row,)
    assert b.build().requests == 3  # known to be there: the three side by side
    # Records of pools this catalog does not have (rules built for other node labels: no `pool` here) are
    # not the fleet: read raw.
    prom.samples["recorded pools"] = [_s("nodes", 2, region="us-east", model="L4")]
    clock[0] += timedelta(seconds=RECHECK_RAW_S[0])
    snap = b.build()
    assert snap.reads == {"prometheus": "raw"} and snap.pools == (row,) and snap.requests == 8
    # Looked again after each wait in turn, the last repeating: one request (the pools' records) more each time.
    seen = []
    for wait in [*RECHECK_RAW_S, RECHECK_RAW_S[-1]]:
        clock[0] += timedelta(seconds=wait - 1)
        assert b.build().requests == 5, wait  # not yet
        clock[0] += timedelta(seconds=1)
        seen.append(b.build().requests)
    assert seen == [6] * (len(RECHECK_RAW_S) + 1)
    assert RECHECK_RAW_S[0] <= 15 and RECHECK_RAW_S[-1] >= 60  # a fresh stack's records within seconds
    b.close()


def test_each_cluster_is_read_on_its_own_and_a_lost_one_keeps_its_last_rows_stale(catalog):
    plain = doc()

    def pool(region: str, gpus: float) -> list[Sample]:
        """A node of every pool fleet.yaml places in the region; infer-l4's GPUs."""
        nodes = [_s("nodes", 1, pool=p["name"], region=region) for p in plain["pools"] if p["nodes"].get(region)]
        return [*nodes, _s("allocatable", gpus, pool="infer-l4", region=region, resource="nvidia_com_gpu")]

    east, west = _Prom({"pools_inventory": pool("us-east", 8)}), _Down({"pools_inventory": pool("eu-west", 4)})
    readers = (
        ClusterReaders("east", frozenset({"us-east"}), east),
        ClusterReaders("west", frozenset({"eu-west"}), west),
    )
    clock = iter(NOW + timedelta(seconds=i) for i in range(10))
    b = SnapshotBuilder(catalog, _Prom({}), clusters=readers, clock=lambda: next(clock))
    first = b.build()
    l4 = {(p.cluster, p.region, p.gpus_total) for p in first.pools if p.pool == "infer-l4"}
    assert l4 == {("east", "us-east", 8), ("west", "eu-west", 4)}
    assert {(p.cluster, p.region) for p in first.pools} == {
        ("east" if r == "us-east" else "west", r) for p in plain["pools"] for r in p["nodes"] if r != "ap-southeast"
    }
    assert first.requests == 12 and not first.failing()  # six a cluster: no recorded series, then raw
    # Services and queues: each cluster's regions only, each row marked with its cluster.
    assert {(s.cluster, s.region) for s in first.services} == {
        ("east" if r == "us-east" else "west", r) for s in catalog.services for r in s.regions if r != "ap-southeast"
    }
    west.down = True
    east.samples = {"pools_inventory": pool("us-east", 9)}
    second = b.build()
    l4 = {(p.cluster, p.gpus_total) for p in second.pools if p.pool == "infer-l4"}
    assert l4 == {("east", 9), ("west", 4)}  # west's last rows
    [lost] = second.failing()
    assert lost.name == "cluster west" and "refused" in (lost.error or "")
    assert lost.last_success == NOW and lost.failing_since == NOW + timedelta(seconds=1)
    # A cluster whose Prometheus answers but holds none of its nodes (its scrapes fail) is lost the same way,
    # and so is one missing some of its pools (its series going stale a part at a time): its last rows stay.
    west.down, west.samples = False, {}
    [lost] = b.build().failing()
    assert lost.name == "cluster west" and "holds none of its nodes" in (lost.error or "")
    west.samples = {"pools_inventory": pool("eu-west", 5)[1:]}
    snap = b.build()
    [lost] = snap.failing()
    assert "missing the nodes of 1 of its pools" in (lost.error or "")
    assert {(p.cluster, p.gpus_total) for p in snap.pools if p.pool == "infer-l4"} == {("east", 9), ("west", 4)}
    b.close()


def test_through_the_global_view_a_failed_read_is_no_clusters_news(catalog):
    """Where the clusters are read through the global view, a read of it that fails leaves every cluster stale
    (its last part kept, its source failing), a lost one too. Before, the failed read handed back the last good
    answer and every cluster read as fresh from it: one lost since that answer was taken read as live again."""
    plain = doc()

    def nodes(region: str, cluster: str) -> list[Sample]:
        return [
            _s("nodes", 1, pool=p["name"], region=region, cluster=cluster)
            for p in plain["pools"]
            if p["nodes"].get(region)
        ]

    glob = _Down({"pools_inventory": nodes("us-east", "east") + nodes("eu-west", "west")})
    readers = (ClusterReaders("east", frozenset({"us-east"})), ClusterReaders("west", frozenset({"eu-west"})))
    clock = iter(NOW + timedelta(seconds=i) for i in range(10))
    b = SnapshotBuilder(catalog, glob, clusters=readers, clock=lambda: next(clock))
    assert not b.build().failing()
    glob.down, glob.error = True, "timed out"  # the read fails while west is being lost
    snap = b.build()
    failing = {s.name: s.error or "" for s in snap.failing()}
    assert set(failing) == {"prometheus", "cluster east", "cluster west"}
    assert "the global view did not answer" in failing["cluster east"] and "timed out" in failing["cluster east"]
    assert {p.cluster for p in snap.pools} == {"east", "west"}  # each cluster's last rows, stale
    glob.down, glob.samples = False, {"pools_inventory": nodes("us-east", "east")}  # west's series went stale
    snap = b.build()
    assert [s.name for s in snap.failing()] == ["cluster west"]
    assert snap.sources["cluster west"].failing_since == NOW + timedelta(seconds=1)
    assert snap.sources["cluster east"].last_success == NOW + timedelta(seconds=2)
    glob.down = True
    assert {s.name for s in b.build().failing()} == {"prometheus", "cluster east", "cluster west"}
    glob.down = False
    assert [s.name for s in b.build().failing()] == ["cluster west"]
    b.close()


def test_each_clusters_own_alertmanager_is_read_and_a_lost_ones_alerts_stay_stale(catalog):
    from console.sources.alertmanager import Alert

    def alert(fp: str, name: str, **labels: str) -> Alert:
        return Alert(name, "critical", {"alertname": name, "team": "sre", **labels}, {}, NOW, "active", fp)

    class _Alerts:
        requests = 0
        down = False

        def __init__(self, *alerts: Alert):
            self.list = list(alerts)

        def alerts(self) -> list[Alert]:
            if self.down:
                raise ConnectionError("refused")
            return self.list

    # The one given holds an alert about east (its label) and one shared with west's own Alertmanager (the same
    # labels, the same fingerprint); west's holds that one and one without a cluster label.
    given = _Alerts(alert("fp1", "GpuXid", cluster="east"), alert("fp2", "ClusterDown", cluster="west"))
    west = _Alerts(alert("fp2", "ClusterDown", cluster="west"), alert("fp3", "QuotaNearlyFull"))
    nodes = [_s("nodes", 1, pool=p["name"], region="us-east") for p in doc()["pools"] if p["nodes"].get("us-east")]
    readers = (
        ClusterReaders("east", frozenset({"us-east"}), _Prom({"pools_inventory": nodes})),
        ClusterReaders("west", frozenset({"eu-west"}), _Prom({}), alertmanager=west),
    )
    clock = iter(NOW + timedelta(seconds=i) for i in range(10))
    b = SnapshotBuilder(catalog, _Prom({}), None, given, clusters=readers, clock=lambda: next(clock))
    snap = b.build()
    held = {a.fingerprint: (a.cluster, a.alertmanager) for a in snap.alerts}
    assert held == {"fp1": ("east", ""), "fp2": ("west", ""), "fp3": ("west", "west")}
    assert {"alertmanager", "alertmanager west"} <= set(snap.sources)
    west.down, west.list = True, []
    snap = b.build()
    assert {a.fingerprint for a in snap.alerts} == {"fp1", "fp2", "fp3"}  # west's last alerts, stale
    assert "alertmanager west" in {s.name for s in snap.failing()}
    assert "alertmanager" not in {s.name for s in snap.failing()}
    b.close()


def test_an_alert_the_relay_delivered_says_to_which_chat_and_how_long_ago(catalog):
    from console.sources.alertmanager import Alert
    from console.sources.relay import Notified

    def alert(fp: str, name: str) -> Alert:
        return Alert(name, "critical", {"alertname": name, "team": "sre"}, {}, NOW, "active", fp)

    class _Alerts:
        requests = 0

        def alerts(self) -> list[Alert]:
            return [alert("fp1", "GpuHardwareSlowdown"), alert("fp2", "GpuLinkErrors")]

    class _Relay:
        requests = 0

        def notified(self) -> dict[str, Notified]:
            return {"fp1": Notified("fp1", "feishu:#sre-oncall", NOW - timedelta(seconds=12), "firing")}

    b = SnapshotBuilder(catalog, _Prom({}), None, _Alerts(), notified=_Relay())
    snap = b.build()
    b.close()
    cells = {a.name: alert_cells(a, SimpleNamespace(now=NOW))["notified"] for a in snap.alerts}  # type: ignore[arg-type]
    assert cells == {"GpuHardwareSlowdown": "feishu:#sre-oncall 12s ago", "GpuLinkErrors": "—"}


class _TableApp(App[None]):
    def compose(self) -> ComposeResult:
        yield KeyedTable([Column("name", "Name"), Column("n", "N", numeric=True), Column("x", "X", compact=False)])


async def test_a_cell_that_grows_on_a_refresh_widens_its_column():
    app = _TableApp()
    async with app.run_test() as pilot:
        t = app.query_one(KeyedTable)
        t.show([("a", {"name": "a", "n": "1", "x": "—"})])
        await pilot.pause()
        t.show([("a", {"name": "a", "n": "1", "x": "feishu:#sre-oncall 12s ago"})])
        await pilot.pause()
        assert t.columns[ColumnKey("x")].content_width >= len("feishu:#sre-oncall 12s ago")


async def test_a_table_rebuilt_and_painted_before_it_is_measured_shows_whole_cells_once_measured():
    # A sort rebuilds the table (its columns back at their headers' widths) at the same total width; a paint
    # that comes before the measurement must not leave the cells cut to the headers' widths.
    name = "us-east-h100-training"
    app = _TableApp()
    async with app.run_test(size=(80, 10)) as pilot:
        t = app.query_one(KeyedTable)
        t.show([("a", {"name": name, "n": "512", "x": "-"}), ("b", {"name": "b", "n": "8", "x": "-"})])
        await pilot.pause()
        assert name in t.render_line(1).text
        t.sort_by("n")
        assert name not in t.render_line(2).text  # painted before DataTable measured the new rows
        await pilot.pause()
        assert t.coordinate_to_cell_key((1, 0)).row_key.value == "a"
        assert name in t.render_line(2).text


async def test_keyed_table_keeps_cursor_sort_and_filter_through_updates():
    app = _TableApp()
    async with app.run_test() as pilot:
        t = app.query_one(KeyedTable)
        data = {"a": 3, "b": 1, "c": 2, "d": 10}

        def show() -> None:
            t.show([(k, {"name": k, "n": str(v), "x": "-"}) for k, v in data.items()])

        show()
        t.sort_by("n")
        order = [str(t.coordinate_to_cell_key((i, 0)).row_key.value) for i in range(t.row_count)]
        assert order == ["b", "c", "a", "d"]  # numeric, not "10" < "2"
        t.move_cursor(row=t.get_row_index("a"))
        data["b"] = 20  # b moves to the end; the cursor stays on a
        show()
        await pilot.pause()
        assert t.selected_key == "a"
        assert str(t.coordinate_to_cell_key((t.row_count - 1, 0)).row_key.value) == "b"
        t.set_filter("c")
        assert t.row_count == 1
        show()  # a refresh keeps the filter
        assert t.row_count == 1
        t.set_filter("")
        t.set_compact(True)
        assert [c.key for c in t.visible_columns] == ["name", "n"] and t.row_count == 4


def test_a_kubeconfigs_contexts_are_read_from_the_file_and_a_bad_one_is_named(tmp_path, monkeypatch):
    from console.sources.kubeconfig import contexts

    good = tmp_path / "kc.yaml"
    good.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: b\n"
        "contexts:\n- name: a\n  context: {cluster: x}\n- name: b\n  context: {cluster: x}\n"
    )
    assert contexts(str(good)) == (["a", "b"], "b")
    # $KUBECONFIG's first file when none is given, as kubectl reads it.
    monkeypatch.setenv("KUBECONFIG", f"{good}:{tmp_path / 'other.yaml'}")
    assert contexts(None) == (["a", "b"], "b")
    # A current context the file does not list is no current context.
    good.write_text(good.read_text().replace("current-context: b", "current-context: gone"))
    assert contexts(str(good)) == (["a", "b"], None)
    for name, text, said in (
        ("empty.yaml", "apiVersion: v1\nkind: Config\ncontexts: []\n", "empty.yaml:3: contexts:"),
        ("bomb.yaml", "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
            f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
            for p, c in zip("abcdefgh", "bcdefghi", strict=True)), "bomb.yaml:"),
        ("binary.yaml", "\x00\x01\x02", "binary.yaml"),
    ):  # fmt: skip
        path = tmp_path / name
        path.write_text(text)
        with pytest.raises(ValueError, match=re.escape(said)):
            contexts(str(path))
    with pytest.raises(ValueError, match=r"missing\.yaml"):
        contexts(str(tmp_path / "missing.yaml"))


def test_a_kubeconfig_the_client_refuses_is_on_the_banner_not_a_crash(tmp_path, catalog):
    from console.sources.twin import REAL_TIME
    from console.wiring import connect

    kc = tmp_path / "kc.yaml"  # its one context names a cluster the file does not have
    kc.write_text("apiVersion: v1\nkind: Config\ncontexts:\n- name: twin\n  context: {cluster: nowhere, user: u}\n")
    c = connect(catalog, "http://127.0.0.1:9", str(kc), None, prefetch=True)
    try:
        c.snapshot()
        assert c.timeline() is REAL_TIME
        failing = {s.name: s.error or "" for s in c.snapshot().failing()}
        assert "kubernetes" in failing and "nowhere" in failing["kubernetes"], failing
        with pytest.raises(Exception, match="nowhere"):
            c.switch("twin")
    finally:
        c.close()


class _RunBackend:
    """What the runbook screen asks of the console's backend for one run: its context, and a run that reports
    each step."""

    context, catalog = "us-east", SimpleNamespace(read_clusters=lambda: [])

    def cluster(self) -> None:
        return None

    def run_plan(self, plan, operator, progress, approve):
        for i in (1, 2, 3):
            progress(SimpleNamespace(state="done", stage="step", index=i, name=f"step {i}", detail=""))
        return SimpleNamespace(run_id="r1", status="succeeded", detail="")


class _RunbookApp(App[None]):
    readonly, operator, backend = False, "tester", _RunBackend()


@pytest.mark.parametrize(
    ("production", "keys", "answer"),
    [
        (False, ["enter"], True),
        (False, ["escape"], False),
        (False, ["tab", "enter"], False),  # Tab moves to Cancel
        (True, ["enter"], None),  # nothing typed: the dialog stays
        (True, [*"twin-ap", "enter"], None),  # part of the name: it stays
        (True, [*"twin-apac", "enter"], True),
        (True, [*"twin-apac", "escape"], False),
    ],
)
async def test_the_run_confirmation_answers_enter_and_escape_as_it_opens(production, keys, answer) -> None:
    from console.tui.runbooks import ConfirmRun

    answers: list[bool | None] = []
    app = _RunbookApp()
    async with app.run_test(size=(100, 30)) as pilot:
        app.push_screen(ConfirmRun("plan", "twin-apac", production), answers.append)
        await pilot.pause()
        await pilot.press(*keys)
        await pilot.pause()
        assert answers == ([] if answer is None else [answer])
        assert isinstance(app.screen, ConfirmRun) == (answer is None)


async def test_the_drill_confirmation_starts_on_enter() -> None:
    from console.tui.drills import ConfirmDrill

    sc = SimpleNamespace(title="t", faults=[], runbooks=[], targets=SimpleNamespace(detect="1m", mitigate="5m"))
    for keys, answer in ((["enter"], True), (["escape"], False)):
        answers: list[bool | None] = []
        async with _RunbookApp().run_test(size=(100, 30)) as pilot:
            pilot.app.push_screen(ConfirmDrill(sc, "twin"), answers.append)
            await pilot.pause()
            await pilot.press(*keys)
            await pilot.pause()
            assert answers == [answer]


@pytest.mark.parametrize("size", [(80, 24), (180, 45)])
async def test_a_runs_progress_is_brought_into_view_below_a_long_plan(catalog, size) -> None:
    # On a small terminal the plan starts under the fold and the progress below it: each is scrolled to.
    from console.runbooks.load import load_runbooks
    from console.tui.messages import PlanReady
    from console.tui.runbooks import ConfirmRun, RunbookScreen

    rb = load_runbooks(ROOT / "runbooks")["pre-scale"]
    app = _RunbookApp()
    async with app.run_test(size=size) as pilot:  # a form that scrolls already, and one that fits until planned
        screen = RunbookScreen(rb, {"service": "llm-chat"})
        await app.push_screen(screen)
        await pilot.pause()  # the form on screen first, as the operator fills it in
        body = screen.query_one("#runbook-body")
        plan = "\n".join(f"plan line {i}" for i in range(60))
        screen.post_message(PlanReady(SimpleNamespace(problems=[]), plan))
        await pilot.pause()
        await pilot.pause()
        buttons = screen.query_one("#runbook-body > .buttons").virtual_region.y
        assert body.scroll_y == min(buttons, body.max_scroll_y) > 0  # Run at the top, the plan under it
        plan_top = screen.query_one("#runbook-plan-text").virtual_region.y
        await pilot.click("#runbook-run")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmRun)
        await pilot.click("#confirm-run-button")
        for _ in range(400):  # the run is the backend's three lines; a loaded machine may take its time
            await pilot.pause(0.05)
            if not screen.running:
                break
        await pilot.pause()
        progress = str(screen.query_one("#runbook-progress").render())
        assert "[done] step 3: step 3" in progress and "run r1: succeeded" in progress, progress
        assert body.scroll_y == body.max_scroll_y > plan_top  # the last line of the progress in view
