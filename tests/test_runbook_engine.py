"""SIGTERM and SIGHUP stop a run the way Ctrl-C does; a second signal during the rollback leaves the run
'interrupted' for `gpuops runbook rollback`, journalled."""

from __future__ import annotations

import os
import signal
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from console.runbooks.engine import Runner
from console.runbooks.journal import Journal, find_run
from console.runbooks.plan import Sources, StepPlan, _plan_expire
from console.runbooks.signals import Interrupted, interrupts, shielded, signal_name
from console.sources.alertmanager import Silence


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_inside_interrupts_a_stop_signal_raises_and_the_old_handler_comes_back(sig):
    before = signal.getsignal(sig)
    with pytest.raises(KeyboardInterrupt) as caught, interrupts():
        os.kill(os.getpid(), sig)
        signal.sigtimedwait([], 0)  # let the handler run here, not at some later bytecode
    assert isinstance(caught.value, Interrupted) and signal_name(caught.value) == sig.name
    assert signal.getsignal(sig) is before


def _am_only(am: Any) -> Sources:
    """Sources with an Alertmanager (or none) and nothing else: what the silence changes use."""
    return Sources(None, None, None, am)  # type: ignore[arg-type]


def test_one_stop_delivered_twice_raises_once_and_a_later_second_stop_raises_again(monkeypatch):
    """GNU timeout sends TERM to its command and again to its process group: one stop, one rollback."""
    import console.runbooks.signals as signals

    monkeypatch.setattr(signals, "REPEAT_S", 0.3)
    raised: list[str] = []
    with interrupts():
        for sig, pause in [(signal.SIGTERM, 0.0), (signal.SIGTERM, 0.0), (signal.SIGINT, 0.0), (signal.SIGHUP, 0.4)]:
            if pause:
                signal.sigtimedwait([], pause)
            try:
                os.kill(os.getpid(), sig)
                signal.sigtimedwait([], 0)
            except KeyboardInterrupt as e:
                raised.append(signal_name(e))
    assert raised == ["SIGTERM", "SIGHUP"]


def test_a_plain_keyboard_interrupt_is_sigint_and_shielded_lets_nothing_through():
    assert signal_name(KeyboardInterrupt()) == "SIGINT"
    with interrupts(), shielded():
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGINT)
    # Reaching here is the assertion that neither signal ended the block; the handlers are back.
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_second_signal_during_rollback_leaves_the_run_interrupted_and_journalled(tmp_path, monkeypatch):
    j = Journal(tmp_path / "journal.jsonl")
    j.append("r1", "run_start", runbook="pre-scale", operator="t", host=os.uname().nodename, pid=os.getpid())
    runner = Runner(None, j, operator="t")  # type: ignore[arg-type]  # the rollback below never reaches the sources

    def restore(run_id: str, force: bool = False) -> list[str]:
        raise Interrupted("SIGTERM")

    monkeypatch.setattr(runner, "restore", restore)
    out = runner._fail("r1", "interrupted by SIGHUP", "interrupt")
    assert out.status == "interrupted" and "gpuops runbook rollback r1" in out.detail
    events = [(r["event"], r.get("signal"), r.get("status")) for r in j.records() if r["run"] == "r1"]
    assert events[-2:] == [("rollback_interrupted", "SIGTERM", None), ("run_end", None, "interrupted")]
    assert find_run(j.records(), "r1").status == "interrupted"  # type: ignore[union-attr]


class _DeadPrometheus:
    def query(self, promql: str) -> list:
        raise ConnectionError("connection refused")


def test_a_wait_with_prometheus_dead_fails_saying_unreachable_not_no_data(tmp_path, catalog):
    import time

    from console.runbooks.engine import StepFailed
    from console.runbooks.plan import CheckPlan
    from console.runbooks.reads import PromReads

    j = Journal(tmp_path / "journal.jsonl")
    dead = _DeadPrometheus()
    src = SimpleNamespace(prom=dead, reads=PromReads(catalog, dead, {}))  # type: ignore[arg-type]
    runner = Runner(src, j, operator="t", poll_s=0.01)  # type: ignore[arg-type]
    check = CheckPlan("no replica unready", "up", None, 0.0)
    with pytest.raises(StepFailed, match=r"Prometheus unreachable at the timeout \(\d+ of \d+ reads failed; last: "
                                         r"ConnectionError: connection refused\)"):  # fmt: skip
        runner._wait("r1", 2, check, time.monotonic() + 0.1)
    (rec,) = [r for r in j.records() if r["event"] == "check"]
    assert rec["ok"] is False and "connection refused" in rec["error"]


def test_the_rollback_of_a_silence_never_created_says_so_and_not_restored(tmp_path):
    j = Journal(tmp_path / "journal.jsonl")
    j.append("r1", "run_start", runbook="degrade-llm-to-rules", operator="t", host=os.uname().nodename, pid=1)
    change = {"target": {"kind": "silence", "namespace": "", "name": "alertname=ServiceDegraded,service=llm-chat"},
              "path": ["silence"], "before": None, "after": "2h", "lock": None, "why": ""}  # fmt: skip
    j.append("r1", "change_start", key="1.0", change=change)  # Alertmanager refused: no change_done
    notes = []
    runner = Runner(_am_only(None), j, operator="t", progress=notes.append)
    assert runner.restore("r1") == []
    assert [(n.state, n.detail) for n in notes] == [("skipped", "never made: nothing to undo")]


class _Alertmanager:
    """Alertmanager's silences, in memory: what the plan and the rollback read and write there."""

    def __init__(self, silences: list[Silence]):
        self.by_id = {s.id: s for s in silences}
        self.made: list[tuple[dict[str, str], timedelta, str, str]] = []
        self.expired: list[str] = []

    def silences(self) -> list[Silence]:
        return list(self.by_id.values())

    def create_silence(self, matchers: dict[str, str], duration: timedelta, created_by: str, comment: str) -> str:
        self.made.append((matchers, duration, created_by, comment))
        return f"new{len(self.made)}"

    def expire_silence(self, sid: str) -> None:
        self.expired.append(sid)


def _silence(sid: str, by: str, ends: datetime, state: str = "active", regex: bool = False, **labels: str) -> Silence:
    matchers = [{"name": k, "value": v, "isRegex": regex, "isEqual": True} for k, v in labels.items()]
    return Silence(sid, matchers, by, "why", ends - timedelta(hours=2), ends, state)


def test_ending_silences_plans_only_a_runs_active_ones_on_exactly_those_matchers():
    ends = datetime(2026, 12, 2, 14, 0, tzinfo=UTC)
    want = {"service": "llm-chat", "alertname": "ServiceDegraded"}
    am = _Alertmanager([
        _silence("ours", "op (gpuops run r1)", ends, **want),
        _silence("person", "alice", ends, **want),
        _silence("over", "op (gpuops run r0)", ends, state="expired", **want),
        _silence("regex", "op (gpuops run r2)", ends, regex=True, **want),
        _silence("wider", "op (gpuops run r3)", ends, alertname="ServiceDegraded"),
        _silence("other", "op (gpuops run r4)", ends, service="llm-copywriting", alertname="ServiceDegraded"),
    ])  # fmt: skip
    sp = StepPlan(1, None)  # type: ignore[arg-type]
    _plan_expire(sp, want, _am_only(am))
    assert [(c.target.kind, c.target.name, c.before) for c in sp.changes] == [("silence-end", "ours", ends.isoformat())]
    assert sp.note.splitlines() == [
        "left alone: silence person by alice until 2026-12-02 14:00 UTC (a person's, not a run's)"
    ]


def test_without_alertmanager_ending_silences_is_a_note_and_no_change():
    sp = StepPlan(1, None)  # type: ignore[arg-type]
    _plan_expire(sp, {"service": "llm-chat"}, _am_only(None))
    assert sp.changes == [] and "no Alertmanager given (--alertmanager)" in sp.note


@pytest.mark.parametrize("hours_left", [1.5, -0.5])
def test_the_rollback_of_an_ended_silence_makes_it_again_until_its_old_end(tmp_path, hours_left):
    j = Journal(tmp_path / "journal.jsonl")
    j.append("r1", "run_start", runbook="restore-normal", operator="t", host=os.uname().nodename, pid=1)
    change = {"target": {"kind": "silence-end", "namespace": "", "name": "s1"}, "path": ["endsAt"],
              "before": "x", "after": "now", "lock": None, "why": ""}  # fmt: skip
    ends = datetime.now(UTC) + timedelta(hours=hours_left)
    matchers = {"service": "llm-chat", "alertname": "ServiceDegraded"}
    ended = {
        "matchers": matchers,
        "comment": "on purpose",
        "created_by": "op (gpuops run r0)",
        "ends_at": ends.isoformat(),
    }
    j.append("r1", "change_start", key="3.0", change=change)
    j.append("r1", "change_done", key="3.0", silence=ended)
    am = _Alertmanager([])
    notes = []
    runner = Runner(_am_only(am), j, operator="t", progress=notes.append)
    assert runner.restore("r1") == []
    if hours_left < 0:  # it would have run out by now: nothing to make again
        assert am.made == [] and notes[0].state == "skipped"
        return
    ((got, duration, by, comment),) = am.made
    assert got == matchers and comment == "on purpose" and "(gpuops run r1" in by
    assert abs((datetime.now(UTC) + duration - ends).total_seconds()) < 5
    assert notes[0].state == "restored" and "new1" in notes[0].detail
    assert [r.get("silence_id") for r in j.records() if r["event"] == "restore_done"] == ["new1"]


def test_with_each_clusters_alertmanager_a_runs_silence_is_made_where_its_alerts_arrive(catalog, tmp_path):
    from console.catalog.clusters import per_region

    cat = catalog.model_copy(update={"clusters": per_region(catalog)})
    given, east, west = _Alertmanager([]), _Alertmanager([]), _Alertmanager([])
    src = Sources(cat, None, None, given, ams={"us-east": east, "eu-west": west})  # type: ignore[arg-type]
    # A region matcher: that region's cluster and the one given (where the global view's alerts go); none: all.
    assert src.silence_in({"alertname": "ServiceDegraded", "region": "eu-west"}) == ["", "eu-west"]
    assert src.silence_in({"alertname": "ServiceDegraded"}) == ["", "eu-west", "us-east"]
    assert src.silence_in({"alertname": "ClusterDown", "cluster": "us-east"}) == ["", "us-east"]
    src.am = None
    assert src.silence_in({"region": "ap-southeast"}) == []  # no Alertmanager where its alerts arrive

    # The rollback of a run's silence in eu-west's Alertmanager expires it there, not in the others.
    j = Journal(tmp_path / "journal.jsonl")
    j.append("r1", "run_start", runbook="degrade-llm-to-rules", operator="t", host=os.uname().nodename, pid=1)
    change = {"target": {"kind": "silence", "namespace": "", "name": "alertname=ServiceDegraded", "cluster": "eu-west"},
              "path": ["silence"], "before": None, "after": "2h", "lock": None, "why": ""}  # fmt: skip
    j.append("r1", "change_start", key="1.0", change=change)
    j.append("r1", "change_done", key="1.0", silence_id="s9")
    src.am = given
    assert Runner(src, j, operator="t", progress=lambda _: None).restore("r1") == []
    assert (west.expired, east.expired, given.expired) == (["s9"], [], [])

    # Ending a run's silences looks in every Alertmanager and ends each where it is.
    ends = datetime(2026, 12, 2, 14, 0, tzinfo=UTC)
    want = {"service": "llm-chat", "alertname": "ServiceDegraded"}
    west.by_id = {"w1": _silence("w1", "op (gpuops run r1)", ends, **want)}
    given.by_id = {"g1": _silence("g1", "op (gpuops run r1)", ends, **want)}
    sp = StepPlan(1, None)  # type: ignore[arg-type]
    _plan_expire(sp, want, src)
    assert [(c.target.name, c.target.cluster) for c in sp.changes] == [("g1", ""), ("w1", "eu-west")]
    assert "in cluster eu-west's Alertmanager" in sp.changes[1].why
