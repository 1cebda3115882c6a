"""Run a drill: check the steady state, inject the faults, watch the probes, the abort conditions and
Alertmanager, run the runbooks that answer the alert, and always end with the rollbacks and a last look at
the steady state.

Every observation goes to the drill journal (the runbook journal's hash-chained format, its own file) with
the simulated time it happened at; the report is computed from the journal alone.
"""

from __future__ import annotations

import contextlib
import getpass
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from console.drills.model import AlertMatch, Response, Scenario
from console.runbooks.annotations import Mark
from console.runbooks.engine import Refused, Runner, new_run_id
from console.runbooks.journal import Journal, find_run
from console.runbooks.model import Check, Runbook, seconds
from console.runbooks.params import ParameterError, resolve
from console.runbooks.plan import CheckPlan, Sources, evaluate, make_plan, show_value
from console.sources.kube import KubeError
from console.sources.twin import ClockReading, TwinControl, TwinError


class DrillRefused(Exception):
    """The drill did not start: a fault not safe on this context, no twin to inject it."""


@dataclass(frozen=True)
class DrillEvent:
    """One line of a drill's live timeline (the CLI prints it, the console shows it)."""

    drill: str
    sim: datetime
    event: str
    text: str
    # False for a probe reading whose verdict is the same as that probe's last one: the journal keeps every
    # reading, a timeline shows the changes.
    changed: bool = True


@dataclass
class DrillOutcome:
    drill: str
    status: str  # passed | failed
    reasons: list[str] = field(default_factory=list)
    ttd_s: float | None = None
    ttm_s: float | None = None


def new_drill_id(scenario: str) -> str:
    return f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{scenario}-{secrets.token_hex(2)}"


def scaled_window(window: str, speed: float, floor_s: float) -> str:
    """A probe's window in simulated time as Prometheus must read it: divided by the twin's speed, never
    under `floor_s` (a few scrapes)."""
    return f"{max(floor_s, seconds(window) / speed):.0f}s"


@dataclass
class _Watch:
    """What one drill's watch has seen so far."""

    first_fault: datetime
    detected: datetime | None = None
    seen: set[str] = field(default_factory=set)
    abort_since: dict[str, datetime] = field(default_factory=dict)
    operator_asked: bool = False
    streak: datetime | None = None  # since when the steady state has held without a break


class DrillRunner:
    def __init__(
        self,
        scenario: Scenario,
        runbooks: dict[str, Runbook],
        src: Sources,
        journal: Journal,
        runbook_journal: Journal,
        *,
        twin: TwinControl | None,
        speed: float | None = None,
        operator: str | None = None,
        poll_s: float = 1.0,
        settle_s: float = 120.0,
        on_event: Callable[[DrillEvent], None] = lambda e: None,
        ask: Callable[[str], bool] = lambda prompt: False,
        move_clock: bool | None = None,
    ):
        self.sc, self.runbooks, self.src = scenario, runbooks, src
        self.journal, self.rb_journal = journal, runbook_journal
        self.twin, self.speed = twin, speed
        self.operator = operator or getpass.getuser()
        self.poll_s, self.settle_s = poll_s, settle_s
        self.on_event, self.ask = on_event, ask
        # Whether the twin's clock may jump to the scenario's time: True for a twin the drill started,
        # False to refuse, None to ask the operator.
        self.move_clock = move_clock
        self.id = new_drill_id(scenario.name)
        self.clock: ClockReading | None = None
        self._window_floor_s = 4.0
        self.min_history_s = 75.0  # the runbooks' checks read 1m rates
        self._injected: list[str] = []
        self._runs: list[str] = []  # runbook run ids, in the order they started
        self._queue: list[tuple[Response, str]] = []
        self._worker: threading.Thread | None = None
        self._lock = threading.Lock()
        self._responses_ok: bool | None = None  # None: not all finished yet
        self.stop_requested = threading.Event()
        self._verdicts: dict[tuple[str, str], bool] = {}  # (phase, probe) -> its last verdict

    # --- time -------------------------------------------------------------------------------------------
    def _now(self) -> datetime:
        if self.twin is None:
            return datetime.now(UTC)
        assert self.clock is not None
        return self.clock.sim_at(time.time())

    def _record(self, event: str, sim: datetime | None = None, text: str = "", **data: Any) -> dict[str, Any]:
        sim = sim or self._now()
        rec = self.journal.append(self.id, event, sim=sim.isoformat(timespec="milliseconds"), text=text, **data)
        self.on_event(DrillEvent(self.id, sim, event, text, data.get("changed", True)))
        return rec

    # --- probes -----------------------------------------------------------------------------------------
    def _check_plan(self, c: Check) -> CheckPlan:
        """The check's PromQL, its window divided by the twin's speed, and its range."""
        args = dict(c.args)
        if "window" in args:
            args["window"] = scaled_window(args["window"], self.speed or 1.0, self._window_floor_s)
        lo, hi = (None if b is None else float(b) for b in (c.expect.min, c.expect.max))
        return CheckPlan.of(c.name, c.query, args, lo, hi)

    def _read(self, c: Check) -> tuple[float | None, bool]:
        """(value, whether it is in range); no data when Prometheus does not answer this poll."""
        cp = self._check_plan(c)
        try:
            v = evaluate(self.src, cp)
        except Exception:  # Prometheus unreachable for a poll: no data, not a crash
            v = None
        return v, cp.holds(v)

    def _probe_all(self, phase: str) -> bool:
        ok = True
        for c in self.sc.steady_state:
            v, holds = self._read(c)
            ok &= holds
            key = (phase, c.name)
            changed = self._verdicts.get(key) != holds
            self._verdicts[key] = holds
            self._record(
                "probe",
                text=f"{c.name}: {show_value(v)} ({'holds' if holds else 'VIOLATED'})",
                phase=phase,
                name=c.name,
                value=v,
                holds=holds,
                changed=changed,
            )
        return ok

    def _until_history(self) -> None:
        """Wait until Prometheus holds a full window for the rules' and runbooks' 1m rates: a fresh server
        reads them low, and a headroom check would pass that should not."""
        try:
            have = self.src.prom.history_s()
        except Exception:  # an older server without the TSDB status: do not wait on it
            return
        if have >= self.min_history_s:
            return
        self._record("warm_up", text=f"waiting for {self.min_history_s:.0f} s of Prometheus history (has {have:.0f} s)")
        time.sleep(self.min_history_s - have)

    def _until_steady(self, phase: str) -> bool:
        deadline = time.monotonic() + self.settle_s
        while True:
            if self._probe_all(phase):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(self.poll_s)

    # --- the drill ---------------------------------------------------------------------------------------
    def preflight(self, context: str, safe: bool) -> None:
        """Refuse before anything happens: twin faults need a twin; a real cluster takes only Kubernetes faults,
        and only when the scenario names it in `safe_on`."""
        if self.twin is None:
            twin_faults = [f.kind for f in self.sc.faults if not f.through_kubernetes]
            if twin_faults:
                raise DrillRefused(
                    f"{', '.join(twin_faults)} can only be injected into the twin; context {context!r} is not one"
                )
            if not safe:
                raise DrillRefused(
                    f"scenario {self.sc.name!r} does not declare its faults safe on {context!r} (safe_on)"
                )
        elif self.sc.clock is not None:
            self._may_move_clock(self.sc.clock)

    def _may_move_clock(self, to: datetime) -> None:
        """A twin's clock only goes forward: a jump to the scenario's time leaves a gap in its history that
        readiness and the cost report then read. Refuse it unless allowed or the operator agrees."""
        assert self.twin is not None
        now = self.twin.clock().sim
        if now >= to:
            return
        ahead = (to - now).total_seconds()
        what = (
            f"scenario {self.sc.name!r} runs at {to:%Y-%m-%d %H:%M} UTC, {ahead / 86400:.1f} days ahead of the twin's "
            f"clock ({now:%Y-%m-%d %H:%M}); the jump would stay in its history"
        )
        if self.move_clock is False or (self.move_clock is None and not self.ask(f"{what}. Move its clock?")):
            raise DrillRefused(f"{what}: pass --move-clock to move it, or leave out --prometheus for a twin of its own")

    def run(self) -> DrillOutcome:
        previous_speed = None
        if self.twin is not None:
            self.clock = self.twin.clock()
            previous_speed = self.clock.speed
            if self.speed is not None and self.speed != self.clock.speed:
                self.clock = self.twin.set_speed(self.speed)
            self.speed = self.clock.speed
            if self.sc.clock is not None and self.clock.sim < self.sc.clock:
                # The scenario's time of day (its load); a twin's clock only goes forward.
                self.clock = self.twin.advance((self.sc.clock - self.clock.sim).total_seconds())
        else:
            self.speed = 1.0
        self._record(
            "drill_start",
            text=f"{self.sc.name} on {self.src.context} at {self.speed:g}x by {self.operator}",
            scenario=self.sc.name,
            title=self.sc.title,
            context=self.src.context,
            speed=self.speed,
            operator=self.operator,
            targets={"detect_s": seconds(self.sc.targets.detect), "mitigate_s": seconds(self.sc.targets.mitigate)},
            wall=datetime.now(UTC).isoformat(timespec="milliseconds"),
        )
        mark: Mark | None = None
        reasons: list[str] = []
        first_fault: datetime | None = None
        detected: datetime | None = None
        mitigated: datetime | None = None
        try:
            mark = self._annotate()  # in here: a stop while Grafana answers still restores the twin's speed
            self._until_history()
            if self._until_steady("before"):
                first_fault = self._inject()
                detected, mitigated, why = self._watch(first_fault)
                reasons += why
            else:
                reasons.append("the steady state did not hold before the faults: nothing was injected")
        except (TwinError, KubeError) as e:
            reasons.append(f"stopped by an error: {e}")
        except KeyboardInterrupt:
            reasons.append("stopped by the operator")
        except Exception as e:  # a bug or an outage the drill did not expect: still roll back, still report
            reasons.append(f"stopped by an unexpected error: {type(e).__name__}: {e}")
        finally:
            reasons += self._rollbacks()
            if previous_speed is not None and self.twin is not None and previous_speed != self.speed:
                self.twin.set_speed(previous_speed)
        if first_fault is not None and not self._until_steady("after"):
            reasons.append("the steady state did not come back after the rollbacks")
        out = self._end(reasons, first_fault, detected, mitigated)
        if self.src.grafana is not None:
            # The drill is over and reported: a stop now only leaves its annotation without an end.
            with contextlib.suppress(KeyboardInterrupt):
                self.src.grafana.end(mark, out.status, "; ".join(out.reasons))
                self._annotation_warnings()
        return out

    def _annotate(self) -> Mark | None:
        """A Grafana annotation from the drill's start to its end (its runbooks' runs annotate their own)."""
        if self.src.grafana is None:
            return None
        text = f"drill {self.sc.name} ({self.sc.title}) on {self.src.context} at {self.speed:g}x by {self.operator}"
        mark = self.src.grafana.begin("drill", self.sc.name, text, [f"context:{self.src.context}"])
        self._annotation_warnings()
        return mark

    def _annotation_warnings(self) -> None:
        assert self.src.grafana is not None
        for w in self.src.grafana.take_warnings():
            self._record("annotation_failed", text=w, error=w)

    def _inject(self) -> datetime:
        first: datetime | None = None
        for f in self.sc.faults:
            if f.through_kubernetes:
                start = self._now()
                self._pod_kill(f.target)
                self._record("fault_start", start, f"{f.kind} {_target(f.target)}", kind=f.kind, target=f.target)
            else:
                assert self.twin is not None
                spec: dict[str, Any] = {
                    "kind": f.kind,
                    "target": f.target,
                    "duration_s": seconds(f.duration),
                    "delay_s": seconds(f.after),
                }
                if f.multiplier is not None:
                    spec["multiplier"] = f.multiplier
                if f.xid is not None:
                    spec["xid"] = f.xid
                got = self.twin.inject(spec)
                self._injected.append(got.id)
                start = got.start
                self._record(
                    "fault_start",
                    start,
                    f"{f.kind} {_target(f.target)} until {got.end:%H:%M:%S}",
                    kind=f.kind,
                    target=f.target,
                    fault_id=got.id,
                    end=got.end.isoformat(),
                )
            first = start if first is None else min(first, start)
        assert first is not None
        return first

    def _pod_kill(self, target: dict[str, str]) -> None:
        svc = self.src.catalog.service(target["service"])
        sel = f"gpuops.io/service={svc.name},gpuops.io/region={target['region']}"
        for pod in self.src.kube.list("pod", label_selector=sel):
            meta = pod["metadata"]
            self.src.kube.delete("pod", meta["namespace"], meta["name"])

    def _watch(self, first_fault: datetime) -> tuple[datetime | None, datetime | None, list[str]]:
        """Poll until mitigated, aborted, or out of time: (detected at, mitigated at, why it failed)."""
        w = _Watch(first_fault)
        while True:
            now = self._now()
            steady = self._probe_all("during")
            w.streak = (w.streak or now) if steady else None
            self._see_alerts(w)
            if w.detected is not None and not w.operator_asked:
                w.operator_asked = True
                self._ask_operator()
            ended = self._aborted(w, now) or self._ended(w, now, steady)
            if ended is not None:
                return ended
            time.sleep(self.poll_s)

    def _see_alerts(self, w: _Watch) -> None:
        """Record each relevant alert the first time it fires; start the runbooks it triggers."""
        for name, labels, starts in self._firing():
            key = f"{name}{sorted(labels.items())}"
            if key in w.seen or starts < w.first_fault - _slack(self.speed or 1.0):
                continue
            relevant = self.sc.detect.matches(name, labels) or any(
                r.when and r.when.matches(name, labels) for r in self.sc.runbooks
            )
            if not relevant:
                continue
            w.seen.add(key)
            detects = w.detected is None and self.sc.detect.matches(name, labels)
            shown = {k: v for k, v in labels.items() if k != "alertname"}
            self._record("alert_firing", starts, f"{name} {_target(shown)}", alert=name, labels=labels, detects=detects)
            if detects:
                w.detected = starts
            for r in self.sc.runbooks:
                if r.when and r.when.matches(name, labels) and not any(q is r for q, _ in self._queue):
                    self._start(r, f"alert {r.when}")

    def _ask_operator(self) -> None:
        for r in self.sc.runbooks:
            if r.when is None and self.ask(f"{self.sc.detect} fired: run {r.runbook}?"):
                self._record("operator", text=f"{self.operator} started {r.runbook}", runbook=r.runbook)
                self._start(r, f"operator {self.operator}")

    def _aborted(self, w: _Watch, now: datetime) -> tuple[datetime | None, None, list[str]] | None:
        for a in self.sc.abort:
            v, holds = self._read(a)
            if not holds:
                w.abort_since.pop(a.name, None)
                continue
            since = w.abort_since.setdefault(a.name, now)
            if (now - since).total_seconds() >= seconds(a.for_):
                self._record("abort", text=f"{a.name}: {show_value(v)}", name=a.name, value=v)
                return w.detected, None, [f"aborted: {a.name} ({show_value(v)} for {a.for_})"]
        return None

    def _ended(
        self, w: _Watch, now: datetime, steady: bool
    ) -> tuple[datetime | None, datetime | None, list[str]] | None:
        with self._lock:
            done = self._responses_ok
        if steady and done and w.detected is not None and w.streak is not None:
            # Mitigated when the steady state came back for good: the start of the streak that lasted
            # until every runbook had finished.
            self._record("steady_again", w.streak, "the steady state holds again (and held to the runbooks' end)")
            return w.detected, w.streak, []
        if done is False and not self.sc.abort:
            return w.detected, None, ["a runbook failed and no abort condition is set"]
        if (now - w.first_fault).total_seconds() > seconds(self.sc.timeout):
            self._record("timeout", now, f"not mitigated within {self.sc.timeout}")
            return w.detected, None, [f"not mitigated within {self.sc.timeout} of the first fault"]
        if self.stop_requested.is_set():
            self._record("abort", now, f"stopped by {self.operator}", name="operator")
            return w.detected, None, ["stopped by the operator"]
        return None

    def _firing(self) -> list[tuple[str, dict[str, str], datetime]]:
        alerts = []
        for _, am in self.src.alertmanagers():  # the one given and each cluster's own
            try:
                alerts += am.alerts()
            except Exception:  # an Alertmanager unreachable for a poll: nothing seen there this time
                continue
        out = []
        for a in alerts:
            starts = a.starts_at if a.starts_at.tzinfo else a.starts_at.replace(tzinfo=UTC)
            sim = self.clock.sim_at(starts.timestamp()) if self.clock else starts
            out.append((a.name, a.labels, sim))
        return out

    # --- runbooks ----------------------------------------------------------------------------------------
    def _start(self, r: Response, by: str) -> None:
        """Queue a runbook; they run one after another (they may lock the same service) in one thread."""
        with self._lock:
            self._queue.append((r, by))
            self._responses_ok = None
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._work, daemon=True, name=f"drill-{self.id}")
                self._worker.start()

    def _work(self) -> None:
        done = 0
        ok = True
        while True:
            with self._lock:
                if done >= len(self._queue):
                    self._responses_ok = ok
                    return
                r, by = self._queue[done]
            done += 1
            ok &= self._run_one(r.runbook, r.params, by)

    def _run_one(self, name: str, params: dict[str, Any], by: str) -> bool:
        rb = self.runbooks[name]
        try:
            values = resolve(rb, self.src.catalog, {k: str(v) for k, v in params.items()})
            plan = make_plan(rb, values, self.src)
        except (ParameterError, KubeError, ValueError) as e:
            self._record("runbook_end", text=f"{name}: refused: {e}", runbook=name, status="refused", detail=str(e))
            return False
        runner = Runner(self.src, self.rb_journal, operator=f"{self.operator} (drill {self.id})", poll_s=self.poll_s)
        run_id = new_run_id(name)
        self._runs.append(run_id)
        self._record("runbook_start", text=f"{name} ({by})", runbook=name, run_id=run_id, by=by, params=params)
        try:
            out = runner.execute(plan, run_id)
        except Refused as e:
            self._record("runbook_end", text=f"{name}: refused: {e}", runbook=name, run_id=run_id, status="refused")
            return False
        self._record(
            "runbook_end",
            text=f"{name}: {out.status}" + (f" — {out.detail}" if out.detail else ""),
            runbook=name,
            run_id=run_id,
            status=out.status,
            detail=out.detail,
        )
        return out.status == "succeeded"

    # --- always ------------------------------------------------------------------------------------------
    def _rollbacks(self) -> list[str]:
        problems: list[str] = []
        if self._worker is not None:
            self._worker.join()  # a runbook mid-run finishes (or rolls itself back) within its own timeouts
        for fid in self._injected:
            try:
                assert self.twin is not None
                f = self.twin.end(fid)
                self._record("fault_end", f.end, f"{f.kind} {_target(f.target)} ended", fault_id=fid)
            except TwinError as e:
                problems.append(f"fault {fid} could not be ended: {e}")
        runner = Runner(self.src, self.rb_journal, operator=f"{self.operator} (drill {self.id})", poll_s=self.poll_s)
        records = self.rb_journal.records() if self._runs else []
        for run_id in reversed(self._runs):
            run = find_run(records, run_id)
            if run is None or run.status in ("rolled-back", "refused"):
                continue
            try:
                out = runner.rollback(run)
            except Refused as e:
                problems.append(f"rollback of {run_id} refused: {e}")
                continue
            self._record("rollback", text=f"{run.runbook} {run_id}: {out.status}", run_id=run_id, status=out.status)
            if out.restore_problems:
                problems.append(f"rollback of {run_id}: " + "; ".join(out.restore_problems))
        for rb in self.sc.rollbacks:
            if not self._run_one(rb.runbook, rb.params, "rollback"):
                problems.append(f"rollback runbook {rb.runbook} did not succeed")
        self._record("rollbacks_done", text="rollbacks done" + (f": {len(problems)} problems" if problems else ""))
        return problems

    def _end(
        self, reasons: list[str], first: datetime | None, detected: datetime | None, mitigated: datetime | None
    ) -> DrillOutcome:
        ttd = (detected - first).total_seconds() if first and detected else None
        ttm = (mitigated - first).total_seconds() if first and mitigated else None
        if first is not None and detected is None and not any(r.startswith("aborted") for r in reasons):
            reasons.append(f"{self.sc.detect} never fired")
        if ttd is not None and ttd > seconds(self.sc.targets.detect):
            reasons.append(f"time to detect {_mmss(ttd)} is over the target {self.sc.targets.detect}")
        if ttm is not None and ttm > seconds(self.sc.targets.mitigate):
            reasons.append(f"time to mitigate {_mmss(ttm)} is over the target {self.sc.targets.mitigate}")
        status = "failed" if reasons or ttm is None else "passed"
        self._record(
            "drill_end",
            text=f"{status}" + (": " + "; ".join(reasons) if reasons else ""),
            status=status,
            reasons=reasons,
            ttd_s=ttd,
            ttm_s=ttm,
            wall=datetime.now(UTC).isoformat(timespec="milliseconds"),
        )
        return DrillOutcome(self.id, status, reasons, ttd, ttm)


def _slack(speed: float) -> timedelta:
    # An alert that started a moment before the fault (clock skew between the twin and Alertmanager) counts.
    return timedelta(seconds=2 * speed)


def _target(t: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(t.items()))


def _mmss(s: float) -> str:
    return f"{int(s // 60)}m{int(s % 60):02d}s"


__all__ = ["AlertMatch", "DrillEvent", "DrillOutcome", "DrillRefused", "DrillRunner", "scaled_window"]
