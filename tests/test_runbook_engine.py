"""SIGTERM and SIGHUP stop a run the way Ctrl-C does; a second signal during the rollback leaves the run
'interrupted' for `gpuops runbook rollback`, journalled."""

from __future__ import annotations

import os
import signal

import pytest

from console.runbooks.engine import Runner
from console.runbooks.journal import Journal, find_run
from console.runbooks.signals import Interrupted, interrupts, shielded, signal_name


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_inside_interrupts_a_stop_signal_raises_and_the_old_handler_comes_back(sig):
    before = signal.getsignal(sig)
    with pytest.raises(KeyboardInterrupt) as caught, interrupts():
        os.kill(os.getpid(), sig)
        signal.sigtimedwait([], 0)  # let the handler run here, not at some later bytecode
    assert isinstance(caught.value, Interrupted) and signal_name(caught.value) == sig.name
    assert signal.getsignal(sig) is before


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


def test_a_wait_with_prometheus_dead_fails_saying_unreachable_not_no_data(tmp_path):
    import time
    from types import SimpleNamespace

    from console.runbooks.engine import StepFailed
    from console.runbooks.plan import CheckPlan

    j = Journal(tmp_path / "journal.jsonl")
    runner = Runner(SimpleNamespace(prom=_DeadPrometheus()), j, operator="t", poll_s=0.01)  # type: ignore[arg-type]
    check = CheckPlan("no replica unready", "up", None, 0.0)
    with pytest.raises(StepFailed, match=r"Prometheus unreachable at the timeout \(\d+ of \d+ reads failed; last: "
                                         r"ConnectionError: connection refused\)"):  # fmt: skip
        runner._wait("r1", 2, check, time.monotonic() + 0.1)
    (rec,) = [r for r in j.records() if r["event"] == "check"]
    assert rec["ok"] is False and "connection refused" in rec["error"]


def test_the_rollback_of_a_silence_never_created_says_so_and_not_restored(tmp_path):
    from types import SimpleNamespace

    j = Journal(tmp_path / "journal.jsonl")
    j.append("r1", "run_start", runbook="degrade-llm-to-rules", operator="t", host=os.uname().nodename, pid=1)
    change = {"target": {"kind": "silence", "namespace": "", "name": "alertname=ServiceDegraded,service=llm-chat"},
              "path": ["silence"], "before": None, "after": "2h", "lock": None, "why": ""}  # fmt: skip
    j.append("r1", "change_start", key="1.0", change=change)  # Alertmanager refused: no change_done
    notes = []
    runner = Runner(SimpleNamespace(am=None), j, operator="t", progress=notes.append)  # type: ignore[arg-type]
    assert runner.restore("r1") == []
    assert [(n.state, n.detail) for n in notes] == [("skipped", "never made: nothing to undo")]
