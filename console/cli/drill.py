"""`gpuops drill list | run | report`: incident drills on a terminal.

Exit codes: 0 the drill passed; 1 it failed (its rollbacks ran); 2 refused before anything was injected
(a bad scenario file, a fault not safe on the context, no such drill).
"""

from __future__ import annotations

import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from console.cli.options import (
    alertmanager_option,
    catalog_option,
    context_or_exit,
    fleet_catalog_or_exit,
    history_option,
    kubeconfig_option,
    operator_option,
    records_or_exit,
    runbooks_option,
    runbooks_or_exit,
)

if TYPE_CHECKING:
    from console.catalog.model import Catalog
    from console.drills.model import Scenario
    from console.runbooks.journal import Journal
    from console.runbooks.model import Runbook


def _journal(path: Path | None) -> Journal:
    from console.drills.load import default_journal
    from console.runbooks.journal import Journal

    return Journal(path or default_journal())


journal_option = click.option(
    "--journal",
    "journal_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The drill journal (default: $GPUOPS_DRILL_JOURNAL, else drills.jsonl beside the runbook journal).",
)


def _scenarios_or_exit(
    catalog_path: Path, runbooks_dir: Path, folder: Path | None
) -> tuple[Catalog, dict[str, Runbook], dict[str, Scenario]]:
    from console.drills.load import ScenarioError, default_folder, load_scenarios

    cat = fleet_catalog_or_exit(catalog_path)
    rbs = runbooks_or_exit(runbooks_dir)
    folder = folder or default_folder(runbooks_dir)
    try:
        return cat, rbs, load_scenarios(folder, cat, rbs)
    except ScenarioError as e:
        for issue in e.issues:
            click.echo(str(issue), err=True)
        click.echo(f"{folder}: {len(e.issues)} error(s); nothing was run", err=True)
        sys.exit(2)


scenarios_option = click.option(
    "--scenarios",
    "scenarios_dir",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="The scenario files (default: RUNBOOKS/drills).",
)


def write_reports(records: list[dict[str, Any]], drill: str, folder: Path) -> tuple[Path, Path]:
    """`<drill>.md` and `<drill>.html` in `folder`, each written whole or not at all."""
    from console.atomic import PUBLISHED, write_atomic
    from console.drills.report import build_report, render_html, render_markdown

    rep = build_report(records, drill)
    assert rep is not None
    md, page = folder / f"{drill}.md", folder / f"{drill}.html"
    write_atomic(md, render_markdown(rep), mode=PUBLISHED)
    write_atomic(page, render_html(rep), mode=PUBLISHED)
    return md, page


@click.group()
def drill() -> None:
    """Incident drills (runbooks/drills/*.yaml): inject faults, time detection and mitigation, report."""


@drill.command("list")
@catalog_option
@runbooks_option
@scenarios_option
@journal_option
def list_cmd(catalog_path: Path, runbooks_dir: Path, scenarios_dir: Path | None, journal_path: Path | None) -> None:
    """Every scenario: its faults, the alert that detects them, its targets, and its last result."""
    from console.drills.report import last_by_scenario, mmss

    _, _, scs = _scenarios_or_exit(catalog_path, runbooks_dir, scenarios_dir)
    last = last_by_scenario(_journal(journal_path).records(verify=False))
    for name, sc in sorted(scs.items()):
        faults = ", ".join(f.kind for f in sc.faults)
        rep = last.get(name)
        result = (
            f"last: {rep.status} (detect {mmss(rep.ttd_s)}, mitigate {mmss(rep.ttm_s)}) {rep.drill}"
            if rep
            else "never run"
        )
        click.echo(f"{name:<20} {faults:<16} detect {sc.detect!s:<42} {result}")


@drill.command("run")
@catalog_option
@runbooks_option
@scenarios_option
@journal_option
@click.option("--context", default="twin", show_default=True, help="`twin`, or a kubeconfig context (staging).")
@click.option(
    "--speed",
    type=click.FloatRange(min=1, max=200),
    help="The twin's clock speed: 20 for a twin the drill starts (its rules' `for` and the probe windows "
    "scale with it); a running twin keeps its own, which its rules were built for, unless given.",
)
@click.option(
    "--prometheus", "prom_url", help="Use this Prometheus (and the servers below) instead of starting a stack."
)
@alertmanager_option
@kubeconfig_option
@click.option("--twin", "twin_url", help="The twin's URL (default: the context's API server, if it is a twin).")
@click.option(
    "--runbook-journal",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The runbook journal the drill's runs go to (default: $GPUOPS_JOURNAL, else the usual one).",
)
@click.option(
    "--report-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the Markdown and HTML reports go (default: drills/ beside the journal).",
)
@click.option("--yes", "auto_yes", is_flag=True, help="Start the runbooks the scenario leaves to the operator.")
@operator_option
@click.option("--poll", type=click.FloatRange(0.2, 30), default=1.0, show_default=True, help="Seconds between polls.")
@click.option(
    "--move-clock",
    is_flag=True,
    help="Let the drill move the clock of a twin it did not start forward to the scenario's time "
    "(refused without it: the jump stays in that twin's history).",
)
@history_option("0")
@click.argument("scenario")
def run_cmd(
    catalog_path: Path,
    runbooks_dir: Path,
    scenarios_dir: Path | None,
    journal_path: Path | None,
    context: str,
    speed: float | None,
    prom_url: str | None,
    am_url: str | None,
    kubeconfig: str | None,
    twin_url: str | None,
    runbook_journal: Path | None,
    report_dir: Path | None,
    auto_yes: bool,
    operator: str | None,
    poll: float,
    move_clock: bool,
    history: float,
    scenario: str,
) -> None:
    """Run a drill: the steady state, the faults, the runbooks that answer them, the rollbacks, a report.

    \b
    With --context twin and no --prometheus, it starts its own twin (at the scenario's clock and
    --speed), Prometheus with the built rules (each alert's `for` divided by the speed) and
    Alertmanager, and stops them at the end. Otherwise it drills the servers given.
    Times in the report are simulated: at --speed 20 a 2m alert `for` passes in 6 s.
    \b
    Example: gpuops drill run region-outage --speed 20
    """
    from console.runbooks.journal import Journal
    from console.runbooks.journal import default_path as rb_default

    cat, rbs, scs = _scenarios_or_exit(catalog_path, runbooks_dir, scenarios_dir)
    if scenario not in scs:
        click.echo(f"error: no scenario {scenario!r}; known: {', '.join(sorted(scs))}", err=True)
        sys.exit(2)
    sc = scs[scenario]
    journal = _journal(journal_path)
    rb_journal = Journal(runbook_journal or rb_default())
    with ExitStack() as stack:
        if prom_url is None:
            if context != "twin":
                click.echo("error: --prometheus is needed to drill a cluster (--context other than twin)", err=True)
                sys.exit(2)
            from console.cli.demo import clusters_with_rules, stack_with_rules
            from console.procs.process import ServerError

            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="gpuops-drill-")))
            start = sc.clock.strftime("%Y-%m-%dT%H:%M:%S") if sc.clock else None
            twin_args = ("--start", start) if start else ()
            say = lambda line: click.echo(line, err=True)  # noqa: E731
            try:
                if sc.clusters == "per-region":
                    if history:
                        click.echo("error: --history is for one cluster; this scenario runs a cluster per region",
                                   err=True)  # fmt: skip
                        sys.exit(2)
                    clustered = stack.enter_context(
                        clusters_with_rules(cat, catalog_path, workdir, speed=speed or 20.0, scrape_interval_s=1.0,
                                            twin_args=twin_args, say=say)
                    )  # fmt: skip
                    # It acts (and reaches the twin) through a cluster its faults leave standing.
                    lost = {f.target.get("cluster") for f in sc.faults if f.kind == "cluster_down"}
                    kube_context = next(n for n in clustered.twin if n not in lost)
                    prom_url, am_url = clustered.global_url, clustered.am_url
                    twin_url, kubeconfig = clustered.twin[kube_context], str(clustered.kubeconfig)
                    cat = fleet_catalog_or_exit(clustered.catalog_path)
                else:
                    running = stack.enter_context(
                        stack_with_rules(cat, catalog_path, workdir, speed=speed or 20.0, scrape_interval_s=1.0,
                                         twin_args=twin_args, say=say, history_s=history)
                    )  # fmt: skip
                    prom_url, am_url, twin_url = running.prom_url, running.am_url, running.twin_url
                    kubeconfig, kube_context = str(running.kubeconfig), "twin"
            except ServerError as e:
                click.echo(f"gpuops drill: {e}", err=True)
                sys.exit(1)
            speed = speed or 20.0
            move_clock = True  # its own twin
        else:
            kube_context = context
        outcome = _drill(
            sc, rbs, cat, prom_url, am_url, kubeconfig, kube_context, twin_url, speed, journal, rb_journal,
            operator=operator, poll=poll, auto_yes=auto_yes, move_clock=move_clock,
        )  # fmt: skip
    folder = report_dir or journal.path.parent / "drills"
    md, page = write_reports(journal.records(), outcome.drill, folder)
    from console.drills.report import mmss

    click.echo(
        f"\n{outcome.status.upper()}: {sc.name} — detect {mmss(outcome.ttd_s)} (target {sc.targets.detect}), "
        f"mitigate {mmss(outcome.ttm_s)} (target {sc.targets.mitigate}), simulated"
    )
    for r in outcome.reasons:
        click.echo(f"  - {r}")
    click.echo(f"report: {md}\n        {page}\njournal: {journal.path} (drill {outcome.drill})")
    sys.exit(0 if outcome.status == "passed" else 1)


@drill.command("report")
@journal_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["markdown", "html"]),
    help="A drill's report: markdown (the default) or html. The list: a Markdown or HTML table (default: text).",
)
@click.option("-o", "--out", type=click.Path(dir_okay=False, path_type=Path), help="Write it here (default: stdout).")
@click.argument("drill_id", required=False)
def report_cmd(journal_path: Path | None, fmt: str | None, out: Path | None, drill_id: str | None) -> None:
    """A drill's report from the journal: timeline, time to detect and to mitigate, pass or fail against
    the targets, what the operator did. Without DRILL_ID, lists the drills in the journal."""
    from console.drills.report import build_report, drills, render_html, render_index, render_markdown

    journal = _journal(journal_path)
    records = records_or_exit(journal)
    if drill_id is None:
        reports = [r for d in drills(records) if (r := build_report(records, d))]
        text = render_index(reports, fmt or "text")
    else:
        rep = build_report(records, drill_id)
        if rep is None:
            click.echo(f"error: no drill {drill_id!r} in {journal.path}", err=True)
            sys.exit(2)
        text = render_html(rep) if fmt == "html" else render_markdown(rep)
    if out:
        from console.atomic import PUBLISHED, write_atomic

        write_atomic(out, text, mode=PUBLISHED)
        click.echo(f"wrote {out}", err=True)
    else:
        click.echo(text, nl=False)


def _drill(
    sc: Any,
    rbs: Any,
    cat: Any,
    prom_url: str,
    am_url: str | None,
    kubeconfig: str | None,
    context: str,
    twin_url: str | None,
    speed: float | None,
    journal: Any,
    rb_journal: Any,
    *,
    operator: str | None,
    poll: float,
    auto_yes: bool,
    move_clock: bool,
) -> Any:
    from console.drills.engine import DrillRefused, DrillRunner
    from console.sources.twin import twin_for_context
    from console.wiring import runbook_sources

    context_or_exit(kubeconfig, context)
    cluster = next((c for c in cat.clusters if c.context == context), None)
    if cluster and cluster.readonly:
        click.echo(f"refused: context {context!r} is read-only in the catalog; nothing was injected", err=True)
        sys.exit(2)
    src = runbook_sources(cat, prom_url, kubeconfig, context, am_url)
    twin = twin_for_context(context, src.kube.api_client.configuration.host, twin_url)

    def show(e: Any) -> None:
        if e.changed:  # a probe reading like the one before is in the journal, not on the terminal
            click.echo(f"  {e.sim:%H:%M:%S}  {e.event:<14} {e.text}", err=True)

    def ask(prompt: str) -> bool:
        if auto_yes:
            return True
        if not sys.stdin.isatty():
            click.echo(f"  {prompt} — no terminal to ask; not started (--yes starts it)", err=True)
            return False
        return click.confirm(prompt, default=False, err=True)

    runner = DrillRunner(
        sc, rbs, src, journal, rb_journal, twin=twin, speed=speed if twin else None, operator=operator,
        poll_s=poll, on_event=show, ask=ask, move_clock=move_clock,
    )  # fmt: skip
    try:
        runner.preflight(context, context in sc.safe_on)
    except DrillRefused as e:
        click.echo(f"refused: {e}; nothing was injected", err=True)
        sys.exit(2)
    try:
        return runner.run()
    finally:
        src.close()
        if twin:
            twin.close()
