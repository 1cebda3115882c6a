"""Run a plan: ask Kubernetes whether this identity may make every change, take a Lease per target, run
the steps with their retries and timeouts, verify, and on a failure roll back what was done, in reverse.

Every change is journalled before it is made (with the value read just then) and after; rollback — in the
run, or later with `rollback RUN_ID`, also of a run that died — reads the journal, not memory.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from console.runbooks.annotations import Mark
from console.runbooks.changes import (
    ALERTMANAGER,
    EVICTION,
    SILENCE,
    SILENCE_END,
    Change,
    Target,
    read,
    show,
    silence_author,
    write,
)
from console.runbooks.journal import Journal, JournalError, RunSummary
from console.runbooks.leases import LeaseHeld, Leases
from console.runbooks.model import OnFailure
from console.runbooks.plan import CheckPlan, Plan, Sources, StepPlan, evaluate, show_value
from console.runbooks.signals import interrupts, shielded, signal_name
from console.sources.kube import KubeError


class Refused(Exception):
    """The run did not start, and nothing changed: access denied, a lease held, a problem in the plan."""


class StepFailed(Exception):
    pass


# Where a run is, and how one line of it went: the CLI and the console render these, nothing else.
Stage = Literal["step", "verify", "rollback", "run"]
State = Literal["running", "retrying", "done", "failed", "skipped", "restored", "conflict"]
Status = Literal["succeeded", "failed", "rolled-back", "interrupted"]


@dataclass(frozen=True)
class Progress:
    """One line of a run's live progress, for the CLI and the console."""

    run_id: str
    stage: Stage
    index: int
    name: str
    state: State
    detail: str = ""


@dataclass
class Outcome:
    run_id: str
    status: Status
    detail: str = ""
    failed_step: str = ""
    restore_problems: list[str] = field(default_factory=list)


def _am_where(c: Change) -> str:
    """Which Alertmanager a silence change needs, for a message: the catalog's for its cluster, or the flag."""
    return (
        f"cluster {c.target.cluster}'s, the catalog's clusters[].alertmanager" if c.target.cluster else "--alertmanager"
    )


def new_run_id(runbook: str) -> str:
    return f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{runbook}-{secrets.token_hex(2)}"


class Runner:
    def __init__(
        self,
        src: Sources,
        journal: Journal,
        *,
        operator: str | None = None,
        progress: Callable[[Progress], None] = lambda p: None,
        approve: Callable[[str], bool] = lambda prompt: False,
        poll_s: float = 1.0,
        lease_s: int = 60,
    ):
        self.src, self.journal = src, journal
        self.operator = operator or getpass.getuser()
        self.progress, self.approve = progress, approve
        self.poll_s, self.lease_s = poll_s, lease_s
        self._fresh_after = 0.0  # monotonic time from which Prometheus has seen the last change
        self._settle_s: float | None = None

    def settle_s(self) -> float:
        """How long after a change Prometheus shows it: two scrapes and a rule evaluation."""
        if self._settle_s is None:
            try:
                scrape, evaluation = self.src.prom.intervals()
                self._settle_s = 2 * scrape + evaluation
            except Exception:
                self._settle_s = 150.0  # Prometheus' defaults: 1m scrapes, 1m evaluations, and some
        return self._settle_s

    def _after_change(self) -> None:
        self._fresh_after = time.monotonic() + self.settle_s()

    def _until_fresh(self) -> None:
        """A check read right after a change would read the fleet from before it: wait until it cannot."""
        wait = self._fresh_after - time.monotonic()
        if wait > 0:
            time.sleep(wait)

    # --- before anything changes -------------------------------------------------------------------------
    def _access(self, changes: list[Change]) -> None:
        denied = []
        seen = set()
        for c in changes:
            if c.target.kind in ALERTMANAGER or c.target in seen:
                continue
            seen.add(c.target)
            verb, kind = ("delete", "pod") if c.target.kind == EVICTION else ("patch", c.target.kind)
            ok, reason = self.src.kube_for(c.target.cluster).may(verb, kind, c.target.namespace or None, c.target.name)
            if not ok:
                denied.append(f"{verb} {c.target}" + (f" ({reason})" if reason else ""))
        locks = {c.lock for c in changes if c.lock}
        for lk in sorted(locks, key=lambda x: x.subject):
            for verb in ("create", "update"):
                ok, reason = self.src.kube_for(lk.cluster).may(verb, "lease", lk.namespace, lk.lease)
                if not ok:
                    denied.append(f"{verb} lease {lk.namespace}/{lk.lease}" + (f" ({reason})" if reason else ""))
        if denied:
            raise Refused("Kubernetes denies this identity: " + "; ".join(denied) + ". Nothing was changed.")

    def _leases(self, run_id: str, plan_locks: list[Any]) -> Leases:
        holder = f"{self.operator}@{socket.gethostname()} run {run_id}"
        leases = Leases(self.src.kube, holder, run_id, self.lease_s, kubes=self.src.kubes)
        try:
            leases.acquire(plan_locks)
        except LeaseHeld as e:
            raise Refused(f"{e}. Nothing was changed.") from None
        return leases

    # --- a run ---------------------------------------------------------------------------------------------
    def execute(self, plan: Plan, run_id: str | None = None) -> Outcome:
        """Run the plan. SIGINT, SIGTERM and SIGHUP all roll back what was done (see `signals`)."""
        with interrupts():
            try:
                self._access(plan.changes)  # first: a denial is the clearest reason; a dry run would fail on it too
                if plan.problems:
                    raise Refused("the plan has problems: " + "; ".join(plan.problems))
                try:
                    self.journal.records()  # a run's rollback reads the journal: it must verify first
                except (JournalError, OSError, UnicodeDecodeError) as e:
                    raise Refused(f"the journal does not verify: {e}. Nothing was changed.") from None
                run_id = run_id or new_run_id(plan.runbook.name)
                leases = self._leases(run_id, plan.locks)
            except KeyboardInterrupt as e:
                raise Refused(f"stopped by {signal_name(e)} before the run began. Nothing was changed.") from None
            try:
                try:  # inside the Lease's release: a stop while Grafana answers must not leave it held
                    mark = self._annotate(plan, run_id)
                except KeyboardInterrupt as e:
                    raise Refused(f"stopped by {signal_name(e)} before the run began. Nothing was changed.") from None
                out = self._run(plan, run_id)
            finally:
                with shielded():  # a signal here would leave the Lease held until it expires
                    leases.release()
            # The run is over and journalled: a stop now only leaves its annotation without an end.
            with contextlib.suppress(KeyboardInterrupt):
                self._annotated(run_id, mark, out)
            return out

    def _annotate(self, plan: Plan, run_id: str) -> Mark | None:
        if self.src.grafana is None:
            return None
        params = ", ".join(f"{k}={','.join(v) if isinstance(v, tuple) else v}" for k, v in plan.values.items())
        text = f"{plan.runbook.name} ({params}) by {self.operator} on {plan.context}, run {run_id}"
        mark = self.src.grafana.begin("runbook", plan.runbook.name, text, [f"context:{plan.context}"])
        self._annotation_warnings(run_id)
        return mark

    def _annotated(self, run_id: str, mark: Mark | None, out: Outcome) -> None:
        if self.src.grafana is not None:
            self.src.grafana.end(mark, out.status, out.detail)
            self._annotation_warnings(run_id)

    def _annotation_warnings(self, run_id: str) -> None:
        assert self.src.grafana is not None
        for w in self.src.grafana.take_warnings():
            self.journal.append(run_id, "annotation_failed", error=w)

    def _note(self, run_id: str, stage: Stage, index: int, name: str, state: State, detail: str = "") -> None:
        self.progress(Progress(run_id, stage, index, name, state, detail))

    def _run(self, plan: Plan, run_id: str) -> Outcome:
        rb = plan.runbook
        try:
            self.journal.append(
                run_id,
                "run_start",
                runbook=rb.name,
                operator=self.operator,
                host=socket.gethostname(),
                pid=os.getpid(),
                context=plan.context,
                params={k: list(v) if isinstance(v, tuple) else v for k, v in plan.values.items()},
                plan=[c.as_json() for c in plan.changes],
                **({"over_quota": plan.over_quota} if plan.over_quota else {}),
            )
            for sp in plan.steps:
                self._note(run_id, "step", sp.index, sp.step.name, "running")
                self.journal.append(run_id, "step_start", step=sp.index, name=sp.step.name)
                try:
                    detail = self._step(run_id, sp)
                except StepFailed as e:
                    self.journal.append(run_id, "step_failed", step=sp.index, name=sp.step.name, error=str(e))
                    self._note(run_id, "step", sp.index, sp.step.name, "failed", str(e))
                    if sp.step.on_failure is OnFailure.CONTINUE:
                        continue
                    return self._fail(run_id, f"step {sp.index} ({sp.step.name}) failed: {e}", sp.step.name)
                self.journal.append(run_id, "step_done", step=sp.index, name=sp.step.name, detail=detail)
                self._note(run_id, "step", sp.index, sp.step.name, "done", detail)
            failed = self._verify(run_id, plan.verification)
            if failed:
                return self._fail(run_id, f"verification failed: {failed}", "verification")
        except KeyboardInterrupt as e:
            sig = signal_name(e)
            self.journal.append(run_id, "interrupted", signal=sig)
            return self._fail(run_id, f"interrupted by {sig}", "interrupt")
        except Exception as e:  # a bug or an outage the steps did not expect: still undo what was done
            return self._fail(run_id, f"stopped by an unexpected error: {type(e).__name__}: {e}", "error")
        self.journal.append(run_id, "run_end", status="succeeded")
        self._note(run_id, "run", 0, rb.name, "done", "succeeded")
        return Outcome(run_id, "succeeded")

    def _fail(self, run_id: str, why: str, step: str) -> Outcome:
        try:
            problems = self.restore(run_id)
        except KeyboardInterrupt as e:
            # A second signal: stop undoing, say so, and leave the rest to `rollback`, which reads the journal.
            detail = self._rollback_stopped(run_id, e, f"{why}; rollback stopped by", "finish it with")
            return Outcome(run_id, "interrupted", detail, step)
        status: Status = "failed" if problems else "rolled-back"
        detail = why + ("; rollback incomplete: " + "; ".join(problems) if problems else "; rolled back")
        self.journal.append(run_id, "run_end", status=status, detail=detail)
        self._note(run_id, "run", 0, "run", "failed", detail)
        return Outcome(run_id, status, detail, step, problems)

    def _rollback_stopped(self, run_id: str, e: KeyboardInterrupt, what: str, then: str) -> str:
        """Journal a rollback a signal stopped: the run ends 'interrupted', and the detail says how to go on."""
        with shielded():
            sig = signal_name(e)
            detail = f"{what} {sig}: {then} `gpuops runbook rollback {run_id}`"
            self.journal.append(run_id, "rollback_interrupted", signal=sig)
            self.journal.append(run_id, "run_end", status="interrupted", detail=detail)
            self._note(run_id, "run", 0, "run", "failed", detail)
        return detail

    def _step(self, run_id: str, sp: StepPlan) -> str:
        do = sp.step.do
        deadline = time.monotonic() + sp.timeout_s
        if sp.check is not None:
            self._until_fresh()
            if do.action == "wait_for":
                return self._wait(run_id, sp.index, sp.check, deadline)
            value = self._retrying(run_id, sp, deadline, lambda: evaluate(self.src, sp.check))  # type: ignore[arg-type]
            self.journal.append(
                run_id, "check", step=sp.index, name=sp.check.name, value=value, ok=sp.check.holds(value)
            )
            if not sp.check.holds(value):
                raise StepFailed(f"{sp.check.name}: reads {show_value(value)}, wants {sp.check.expect}")
            return f"{sp.check.name}: {show_value(value)}"
        if sp.prompt:
            ok = self.approve(sp.prompt)
            self.journal.append(run_id, "approval", step=sp.index, prompt=sp.prompt, approved=ok, by=self.operator)
            if not ok:
                raise StepFailed("the operator did not approve")
            return f"approved by {self.operator}"
        for n, c in enumerate(sp.changes):
            self._change(run_id, sp, n, c, deadline)
        if any(c.target.kind not in ALERTMANAGER for c in sp.changes):
            self._after_change()
        return "; ".join(f"{c.target} {c.field} -> {show(c.after)}" for c in sp.changes) or (
            sp.note or "nothing to change"
        )

    def _retrying(self, run_id: str, sp: StepPlan, deadline: float, fn: Callable[[], Any]) -> Any:
        attempts = sp.step.retry.count + 1
        delay = sp.retry_delay_s
        for attempt in range(1, attempts + 1):
            try:
                return fn()
            except KubeError as e:
                last = attempt == attempts or not e.retryable or time.monotonic() + delay > deadline
                if last:
                    raise StepFailed(str(e)) from None
                self.journal.append(run_id, "retry", step=sp.index, attempt=attempt, error=str(e))
                self._note(run_id, "step", sp.index, sp.step.name, "retrying", f"{e} (attempt {attempt}/{attempts})")
                time.sleep(delay)
            except Exception as e:  # Prometheus or Alertmanager trouble: retried like the API's
                if attempt == attempts or time.monotonic() + delay > deadline:
                    raise StepFailed(str(e)) from None
                self.journal.append(run_id, "retry", step=sp.index, attempt=attempt, error=str(e))
                time.sleep(delay)
        raise StepFailed("no attempts")  # unreachable: the loop returns or raises

    def _change(self, run_id: str, sp: StepPlan, n: int, c: Change, deadline: float) -> None:
        key = f"{sp.index}.{n}"
        if c.target.kind == SILENCE:
            s, am = sp.silence, self.src.am_of(c.target.cluster)
            assert s is not None and am is not None  # the plan makes a silence only where there is an Alertmanager
            self.journal.append(run_id, "change_start", key=key, change=c.as_json())
            sid = self._retrying(
                run_id,
                sp,
                deadline,
                lambda: am.create_silence(
                    s.matchers, timedelta(seconds=s.duration_s), silence_author(self.operator, run_id), s.comment
                ),
            )
            self.journal.append(run_id, "change_done", key=key, silence_id=sid)
            return
        if c.target.kind == SILENCE_END:
            self.journal.append(run_id, "change_start", key=key, change=c.as_json())
            ended = self._retrying(run_id, sp, deadline, lambda: self._end_silence(c.target.name, c.target.cluster))
            self.journal.append(run_id, "change_done", key=key, silence=ended)
            return

        if c.target.kind == EVICTION:
            self.journal.append(run_id, "change_start", key=key, change=c.as_json())
            self._retrying(run_id, sp, deadline, lambda: self._evict(c.target))
            self.journal.append(run_id, "change_done", key=key)
            return

        def attempt() -> None:
            before, version = read(self.src.kube_for(c.target.cluster), c.target, c.path)
            fresh = Change(c.target, c.path, before, c.after, c.lock, c.why)
            self.journal.append(run_id, "change_start", key=key, change=fresh.as_json())
            if before != c.after:
                write(self.src.kube_for(c.target.cluster), c.target, c.path, c.after, version=version)
            self.journal.append(run_id, "change_done", key=key)

        self._retrying(run_id, sp, deadline, attempt)

    def _evict(self, target: Target) -> None:
        try:
            self.src.kube_for(target.cluster).delete("pod", target.namespace, target.name)
        except KubeError as e:
            if e.code != 404:  # already gone: what the eviction wanted
                raise

    def _wait(self, run_id: str, index: int, check: CheckPlan, deadline: float) -> str:
        polls, value, failed = 0, None, 0
        error = ""
        while True:
            polls += 1
            try:
                value, error = evaluate(self.src, check), ""
            except Exception as e:  # Prometheus briefly away: keep waiting until the deadline
                value, error, failed = None, f"{type(e).__name__}: {e}", failed + 1
            if check.holds(value):
                self.journal.append(run_id, "check", step=index, name=check.name, value=value, ok=True, polls=polls)
                return f"{check.name}: {show_value(value)} after {polls} reads"
            if time.monotonic() + self.poll_s > deadline:
                self.journal.append(
                    run_id, "check", step=index, name=check.name, value=value, ok=False, polls=polls, error=error
                )
                if error:  # "still no data" would blame the fleet for what is Prometheus' outage
                    raise StepFailed(
                        f"{check.name}: Prometheus unreachable at the timeout ({failed} of {polls} reads failed; "
                        f"last: {error})"
                    )
                raise StepFailed(f"{check.name}: still {show_value(value)} at the timeout, wants {check.expect}")
            time.sleep(self.poll_s)

    def _verify(self, run_id: str, checks: list[CheckPlan]) -> str:
        self._until_fresh()
        start = time.monotonic()
        pending = {c.name: c for c in checks}
        last: dict[str, float | None] = {}
        for i, c in enumerate(checks, 1):
            self._note(run_id, "verify", i, c.name, "running")
        while pending:
            for name, c in list(pending.items()):
                try:
                    last[name] = evaluate(self.src, c)
                except Exception:
                    last[name] = None
                if c.holds(last[name]):
                    del pending[name]
                    self.journal.append(run_id, "verify", name=name, value=last[name], ok=True)
                    self._note(run_id, "verify", checks.index(c) + 1, name, "done", show_value(last[name]))
                elif time.monotonic() - start > (c.within_s or 0):
                    self.journal.append(run_id, "verify", name=name, value=last[name], ok=False)
                    self._note(run_id, "verify", checks.index(c) + 1, name, "failed", show_value(last[name]))
                    return f"{name}: reads {show_value(last[name])} after {c.within_s:g}s, wants {c.expect}"
            if pending:
                time.sleep(self.poll_s)
        return ""

    # --- rollback ------------------------------------------------------------------------------------------
    def restore(self, run_id: str, force: bool = False) -> list[str]:
        """Undo what the journal says the run changed, newest first; returns what could not be restored."""
        problems = []
        records = [r for r in self.journal.records() if r["run"] == run_id]
        started: dict[str, dict[str, Any]] = {}
        done: dict[str, dict[str, Any]] = {}
        restored: set[str] = set()
        for r in records:
            if r["event"] == "change_start":
                started[r["key"]] = r
            elif r["event"] == "change_done":
                done[r["key"]] = r
            elif r["event"] in ("restore_done", "restore_already"):
                restored.add(r["key"])
        self.journal.append(run_id, "rollback_start", changes=len(started) - len(restored & set(started)))
        for key in reversed(list(started)):
            if key in restored:
                continue
            c = Change.from_json(started[key]["change"])
            name = f"{c.target} {c.field}"
            try:
                state, detail = self._restore_one(run_id, key, c, done.get(key), force)
            except Exception as e:  # the API's or Alertmanager's refusal: journalled, the rest still restored
                state, detail = "conflict", f"{name}: {e}"
                self.journal.append(run_id, "restore_failed", key=key, error=str(e))
            if state == "conflict":
                problems.append(detail)
            self._note(run_id, "rollback", 0, name, state, detail or f"-> {show(c.before)}")
        return problems

    def _end_silence(self, silence_id: str, cluster: str) -> dict[str, Any] | None:
        """Expire one silence in the Alertmanager of `cluster` ("": the one given); what the rollback needs to
        make it again, or None when it had already ended."""
        am = self.src.am_of(cluster)
        assert am is not None  # the plan makes no such change without Alertmanager
        s = am.silence(silence_id)
        if s is None or s.state == "expired":
            return None
        matchers = s.exact_matchers()
        am.expire_silence(silence_id)
        return {
            "matchers": matchers,
            "comment": s.comment,
            "created_by": s.created_by,
            "ends_at": s.ends_at.isoformat(),
        }

    def _remake_silence(self, run_id: str, key: str, c: Change, ended: dict[str, Any] | None) -> tuple[State, str]:
        """The rollback of an ended silence: the same matchers and comment again, until its old end."""
        if not ended:
            self.journal.append(run_id, "restore_already", key=key, detail="it had ended before the run")
            return "skipped", "it had ended before the run: nothing to undo"
        left = datetime.fromisoformat(ended["ends_at"]) - datetime.now(UTC)
        if left <= timedelta(0):
            self.journal.append(run_id, "restore_already", key=key, detail="its old end has passed")
            return "skipped", f"silence {c.target.name} would have ended at {ended['ends_at']}: not made again"
        am = self.src.am_of(c.target.cluster)
        if am is None:
            return "conflict", f"silence {c.target.name}: no Alertmanager to make it again ({_am_where(c)})"
        author = silence_author(self.operator, run_id, "made again by its rollback")
        sid = am.create_silence(ended["matchers"], left, author, ended["comment"])
        self.journal.append(run_id, "restore_done", key=key, silence_id=sid)
        return "restored", f"silence made again as {sid} until {ended['ends_at']}"

    def _restore_one(
        self, run_id: str, key: str, c: Change, done: dict[str, Any] | None, force: bool
    ) -> tuple[State, str]:
        """Put one change back: 'restored' (detail "" for the usual "-> before"), 'skipped' for a change that
        never happened, or 'conflict' with what stopped it."""
        if c.target.kind == EVICTION:
            self.journal.append(
                run_id, "restore_already", key=key, detail="an evicted pod is replaced by its controller"
            )
            return "restored", ""
        if c.target.kind == SILENCE_END:
            if done is None:
                self.journal.append(run_id, "restore_already", key=key, detail="the end was never recorded")
                return "skipped", "the run did not record ending it: nothing to undo"
            return self._remake_silence(run_id, key, c, done.get("silence"))
        if c.target.kind == SILENCE:
            sid, am = (done or {}).get("silence_id"), self.src.am_of(c.target.cluster)
            if sid and am is not None:
                am.expire_silence(sid)
                self.journal.append(run_id, "restore_done", key=key, silence_id=sid)
                return "restored", ""
            if not sid:
                self.journal.append(run_id, "restore_already", key=key, detail="the silence was never created")
                return "skipped", "never made: nothing to undo"
            return "conflict", f"silence {sid}: no Alertmanager to expire it ({_am_where(c)})"
        for attempt in range(4):
            now, version = read(self.src.kube_for(c.target.cluster), c.target, c.path)
            if now == c.before:
                self.journal.append(run_id, "restore_already", key=key, value=c.before)
                return "restored", ""
            # A change that never reported done may or may not have landed: the after value, or the before.
            if now != c.after and not force:
                self.journal.append(run_id, "restore_skipped", key=key, now=now, after=c.after)
                return "conflict", (
                    f"{c.target} {c.field}: now {show(now)}, the run set {show(c.after)}: changed by someone "
                    f"else since; left alone (rollback --force puts back {show(c.before)})"
                )
            try:
                write(self.src.kube_for(c.target.cluster), c.target, c.path, c.before, version=version)
            except KubeError as e:
                if e.retryable and attempt < 3:
                    time.sleep(0.5 * (attempt + 1))
                    continue
                raise
            self.journal.append(run_id, "restore_done", key=key, value=c.before)
            return "restored", ""
        return "conflict", f"{c.target} {c.field}: kept conflicting"

    def rollback(self, run: RunSummary, force: bool = False) -> Outcome:
        """`gpuops runbook rollback RUN_ID`: of a finished, failed or interrupted run."""
        changes = [Change.from_json(r["change"]) for r in run.records if r["event"] == "change_start"]
        self._access(changes)
        locks = sorted({c.lock for c in changes if c.lock}, key=lambda x: x.subject)
        with interrupts():
            try:
                leases = self._leases(run.id, locks)  # the run's own leases, even if it died holding them
            except KeyboardInterrupt as e:
                raise Refused(f"stopped by {signal_name(e)} before the rollback began. Nothing was changed.") from None
            try:
                problems = self.restore(run.id, force)
            except KeyboardInterrupt as e:
                detail = self._rollback_stopped(run.id, e, f"rollback by {self.operator} stopped by", "run again")
                return Outcome(run.id, "interrupted", detail)
            finally:
                with shielded():
                    leases.release()
        status: Status = "failed" if problems else "rolled-back"
        detail = "rolled back by " + self.operator + ("; incomplete: " + "; ".join(problems) if problems else "")
        self.journal.append(run.id, "run_end", status=status, detail=detail)
        return Outcome(run.id, status, detail, restore_problems=problems)


__all__ = ["Outcome", "Progress", "Refused", "Runner", "Target", "new_run_id"]
