"""`gpuops runbook plan | run | journal | rollback`: the engine on a terminal.

Exit codes: 0 done; 1 the run failed (and was rolled back), or the journal does not verify; 2 refused
before anything changed (bad parameters, read-only, access denied, a lease held, a problem in the plan).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from console.catalog.model import Catalog
    from console.runbooks.engine import Progress
    from console.runbooks.journal import Journal
    from console.runbooks.model import Runbook
    from console.runbooks.params import Value
    from console.runbooks.plan import Sources

from console.cli.options import (
    catalog_option,
    connection_options,
    context_or_exit,
    fleet_catalog_or_exit,
    operator_option,
    records_or_exit,
    run_journal_option,
    runbooks_option,
    runbooks_or_exit,
    runbooks_reporting,
)


def _params(pairs: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for p in pairs:
        if "=" not in p:
            click.echo(f"error: parameter {p!r}: write it as NAME=VALUE", err=True)
            sys.exit(2)
        k, v = p.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def _journal(path: Path | None) -> Journal:
    from console.runbooks.journal import Journal, default_path

    return Journal(path or default_path())


def _setup(
    catalog_path: Path, runbooks_dir: Path, name: str, pairs: tuple[str, ...], conn: dict[str, Any]
) -> tuple[Catalog, Runbook, dict[str, Value], Sources]:
    """The runbook, its checked parameters, and the sources, or a clear error and exit 2."""
    from console.runbooks.params import ParameterError, resolve
    from console.wiring import runbook_sources

    cat = fleet_catalog_or_exit(catalog_path)
    rbs = runbooks_or_exit(runbooks_dir, name)
    if name not in rbs:
        click.echo(f"error: no runbook {name!r}; known: {', '.join(sorted(rbs))}", err=True)
        sys.exit(2)
    rb = rbs[name]
    try:
        values = resolve(rb, cat, _params(pairs))
    except ParameterError as e:
        from console.runbooks.load import parameter_line

        path = runbooks_dir / f"{name}.yaml"
        for param, problem in e.named:
            line = parameter_line(path, param)
            click.echo(f"{path}:{line}: parameters.{param}: {problem}", err=True)
        click.echo("refused: nothing was planned or changed", err=True)
        sys.exit(2)
    context = conn["context"]
    if conn["kubeconfig"] or context is None:
        context = context_or_exit(conn["kubeconfig"], context)
    src = runbook_sources(cat, conn["prom_url"], conn["kubeconfig"], context, conn["am_url"])
    return cat, rb, values, src


def _confirm_production(context: str, given: str | None, what: str) -> None:
    """A production context changes only after its name is typed (or given with --confirm-context)."""
    typed = given
    if typed is None:
        if not sys.stdin.isatty():
            click.echo(f"\nrefused: {context!r} is production: pass --confirm-context", err=True)
            sys.exit(2)
        typed = click.prompt(f"\n{context} is a production context. Type its name to {what}", err=True)
    if typed != context:
        click.echo(f"refused: {typed!r} is not {context!r}; nothing was changed", err=True)
        sys.exit(2)


def _echo_progress(p: Progress) -> None:
    mark = {"done": "ok", "failed": "FAIL", "restored": "undo", "conflict": "LEFT", "retrying": "retry"}.get(
        p.state, p.state
    )
    label = {"step": f"step {p.index}", "verify": "verify", "rollback": "rollback", "run": "run"}[p.stage]
    if p.state == "running" and p.stage != "step":
        return
    click.echo(f"  [{mark:>7}] {label}: {p.name}" + (f" — {p.detail}" if p.detail else ""), err=True)


@click.group()
def runbook() -> None:
    """Runbooks (runbooks/*.yaml): typed parameters, preconditions, steps with rollbacks, verification."""


@runbook.command("list")
@runbooks_option
def runbook_list(runbooks_dir: Path) -> None:
    """Every runbook: name, title, parameters, steps. A file that does not load is named with its
    file:line: field errors on stderr, the rest listed, and the exit code is 1."""
    rbs, broken = runbooks_reporting(runbooks_dir)
    width = max((len(n) for n in rbs), default=0)
    for name, rb in sorted(rbs.items()):
        params = " ".join(p.name + ("?" if p.optional or p.default is not None else "") for p in rb.parameters)
        steps = f"{len(rb.steps)} step" + ("s" if len(rb.steps) != 1 else "")
        click.echo(f"{name:<{width}}  {rb.title}  [{params}]  {steps}")
    if broken:
        sys.exit(1)


@runbook.command("show")
@runbooks_option
@click.argument("name")
def runbook_show(runbooks_dir: Path, name: str) -> None:
    """One runbook in full: parameters with types, ranges and defaults; checks; steps and their rollbacks."""
    rbs = runbooks_or_exit(runbooks_dir, name)
    if name not in rbs:
        click.echo(f"error: no runbook {name!r}; known: {', '.join(sorted(rbs))}", err=True)
        sys.exit(2)
    from console.runbooks.render import describe

    click.echo(describe(rbs[name]))


_over_quota_option = click.option(
    "--allow-over-quota",
    is_flag=True,
    help="Scale up past the namespace's GPU quota or the nodes' free GPUs (the run journals it).",
)


@runbook.command("plan")
@catalog_option
@runbooks_option
@connection_options("Prometheus base URL (checks read it).")
@_over_quota_option
@click.argument("name")
@click.argument("params", nargs=-1, metavar="[NAME=VALUE]...")
def plan_cmd(
    catalog_path: Path, runbooks_dir: Path, allow_over_quota: bool, name: str, params: tuple[str, ...], **conn: Any
) -> None:
    """Show what a run would change, and change nothing.

    \b
    For every step: the object, the field, the value now and after, and the API server's answer to a
    server-side dry run; every check's PromQL and current value; the leases the run would take; and
    for scale-ups, the namespace's GPU quota room and the free GPUs on the nodes they may run on.
    Exits 2 if the plan has a problem (a failing precondition, a refused dry run, too few GPUs).
    \b
    Example: gpuops runbook plan pre-scale service=llm-chat region=us-east replicas=6 --prometheus URL
    """
    from console.runbooks.plan import describe_plan, make_plan

    _, rb, values, src = _setup(catalog_path, runbooks_dir, name, params, conn)
    try:
        plan = make_plan(rb, values, src, allow_over_quota=allow_over_quota)
    finally:
        src.close()
    click.echo(describe_plan(plan))
    sys.exit(2 if plan.problems else 0)


@runbook.command("run")
@catalog_option
@runbooks_option
@connection_options("Prometheus base URL (checks read it).")
@run_journal_option
@click.option("--execute", is_flag=True, help="Make the changes. Without it, the plan is printed and nothing changes.")
@click.option("--readonly", is_flag=True, help="Refuse to change anything (a readonly context always does).")
@click.option("--confirm-context", help="For a production context: its name, instead of typing it when asked.")
@click.option("--approve", "auto_approve", is_flag=True, help="Answer the runbook's approval steps with yes.")
@_over_quota_option
@operator_option
@click.option(
    "--poll", type=click.FloatRange(0.1, 60), default=2.0, show_default=True, help="Seconds between check reads."
)
@click.argument("name")
@click.argument("params", nargs=-1, metavar="[NAME=VALUE]...")
def run_cmd(
    catalog_path: Path,
    runbooks_dir: Path,
    journal_path: Path | None,
    execute: bool,
    readonly: bool,
    confirm_context: str | None,
    auto_approve: bool,
    allow_over_quota: bool,
    operator: str | None,
    poll: float,
    name: str,
    params: tuple[str, ...],
    **conn: Any,
) -> None:
    """Run a runbook: the plan, then with --execute the changes, the verification, and on a failure the
    rollback of everything done, in reverse.

    \b
    Before changing anything it asks Kubernetes whether you may (SelfSubjectAccessReview) and takes a
    Lease per service, node or namespace it changes; a second run on the same target is refused and told
    who holds it. Every change is journalled before and after (see `gpuops runbook journal`).
    """
    from console.runbooks.engine import Refused, Runner
    from console.runbooks.plan import describe_plan, make_plan

    cat, rb, values, src = _setup(catalog_path, runbooks_dir, name, params, conn)
    try:
        plan = make_plan(rb, values, src, allow_over_quota=allow_over_quota)
        click.echo(describe_plan(plan))
        if not execute:
            click.echo("\nnothing changed: add --execute to run it", err=True)
            sys.exit(2 if plan.problems else 0)
        cluster = next((c for c in cat.clusters if c.context == src.context), None)
        if readonly or (cluster and cluster.readonly):
            why = "--readonly" if readonly else f"the catalog marks context {src.context!r} read-only"
            click.echo(f"\nrefused: {why}; nothing was changed", err=True)
            sys.exit(2)
        if plan.problems:
            click.echo("\nrefused: the plan has problems (above); nothing was changed", err=True)
            sys.exit(2)
        if cluster and cluster.production:
            _confirm_production(src.context, confirm_context, "run")

        def approve(prompt: str) -> bool:
            if auto_approve:
                return True
            return sys.stdin.isatty() and click.confirm(prompt, err=True)

        runner = Runner(
            src, _journal(journal_path), operator=operator, progress=_echo_progress, approve=approve, poll_s=poll
        )
        from console.runbooks.engine import new_run_id

        run_id = new_run_id(rb.name)
        click.echo(f"\nrun {run_id}", err=True)
        try:
            out = runner.execute(plan, run_id)
        except Refused as e:
            click.echo(f"refused: {e}", err=True)
            sys.exit(2)
    finally:
        src.close()
    click.echo(f"run {out.run_id}: {out.status}" + (f" ({out.detail})" if out.detail else ""))
    if rb.restore_with and out.status == "succeeded":
        click.echo(f"the way back later: gpuops runbook run {rb.restore_with} ... (or rollback {out.run_id})")
    sys.exit(0 if out.status == "succeeded" else 1)


@runbook.command("journal")
@run_journal_option
@click.option("--verify", is_flag=True, help="Only check the hash chain: exit 1 naming the first bad line.")
@click.argument("run_id", required=False)
def journal_cmd(journal_path: Path | None, verify: bool, run_id: str | None) -> None:
    """The runs in the journal (newest last), or one run's every record. The hash chain is always
    checked first; a journal edited by hand fails, naming the line."""
    from console.runbooks.journal import find_run, runs

    j = _journal(journal_path)
    records = records_or_exit(j)
    if verify:
        click.echo(f"{j.path}: {len(records)} records, the chain verifies")
        return
    if run_id:
        run = find_run(records, run_id)
        if run is None:
            click.echo(f"error: no run {run_id!r} in {j.path}", err=True)
            sys.exit(2)
        click.echo(f"{run.id}  {run.runbook}  {run.status}  by {run.operator} on {run.context}")
        if run.detail:
            click.echo(f"  {run.detail}")
        for r in run.records:
            extra = {k: v for k, v in r.items() if k not in ("time", "run", "event", "prev", "hash")}
            click.echo(f"  {r['time']}  {r['event']:<15} {_brief(extra)}")
        return
    all_runs = runs(records)
    if not all_runs:
        click.echo(f"no runs in {j.path}")
        return
    for run in all_runs:
        params = " ".join(f"{k}={'|'.join(v) if isinstance(v, list) else v}" for k, v in sorted(run.params.items()))
        click.echo(f"{run.id}  {run.status:<12} {run.operator:<10} {run.context:<10} {params}")


@runbook.command("rollback")
@catalog_option
@connection_options("Prometheus base URL (checks read it).")
@run_journal_option
@click.option("--force", is_flag=True, help="Also put back fields someone changed after the run.")
@click.option("--readonly", is_flag=True, help="Refuse (a readonly context always does).")
@click.option("--confirm-context", help="For a production context: its name, instead of typing it when asked.")
@operator_option
@click.argument("run_id")
def rollback_cmd(
    catalog_path: Path,
    journal_path: Path | None,
    force: bool,
    readonly: bool,
    confirm_context: str | None,
    operator: str | None,
    run_id: str,
    **conn: Any,
) -> None:
    """Undo a run from its journal, newest change first: a finished run, a failed one, or one that was
    killed mid-way. A field changed by someone else since the run is left alone and named (--force
    puts it back anyway)."""
    from console.runbooks.engine import Refused, Runner
    from console.runbooks.journal import find_run
    from console.wiring import runbook_sources

    j = _journal(journal_path)
    run = find_run(records_or_exit(j), run_id)
    if run is None:
        click.echo(f"error: no run {run_id!r} in {j.path}", err=True)
        sys.exit(2)
    if run.status == "running":
        click.echo(f"refused: run {run_id} is still running (its process is alive)", err=True)
        sys.exit(2)
    cat = fleet_catalog_or_exit(catalog_path)
    context = conn["context"] or run.context
    cluster = next((c for c in cat.clusters if c.context == context), None)
    if readonly or (cluster and cluster.readonly):
        click.echo("refused: read-only; nothing was changed", err=True)
        sys.exit(2)
    if cluster and cluster.production:
        _confirm_production(context, confirm_context, "roll back")
    src = runbook_sources(cat, conn["prom_url"], conn["kubeconfig"], context, conn["am_url"])
    try:
        out = Runner(src, j, operator=operator, progress=_echo_progress).rollback(run, force)
    except Refused as e:
        click.echo(f"refused: {e}", err=True)
        sys.exit(2)
    finally:
        src.close()
    click.echo(f"run {run_id}: {out.status} ({out.detail})")
    sys.exit(0 if out.status == "rolled-back" else 1)


def _brief(d: dict[str, Any]) -> str:
    if "change" in d:
        c = d.pop("change")
        t = c["target"]
        where = f"{t['kind']} {t['namespace'] + '/' if t['namespace'] else ''}{t['name']}"
        d = {"change": f"{where} {'.'.join(c['path'])}: {c['before']} -> {c['after']}", **d}
    d.pop("plan", None)
    return "  ".join(f"{k}={v}" for k, v in d.items())
