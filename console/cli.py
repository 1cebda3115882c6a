"""The `gpuops` command group.

Headless: this module imports neither Textual nor the kubernetes client at import time (a test proves
it), so `gpuops --help` and the CI commands start fast; each command imports what it needs.
"""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

import click

from console.cli_options import (
    DEFAULT_CATALOG,
    START_FORMATS,
    catalog_option,
    catalog_or_exit,
    drill_journal_option,
    runbooks_option,
    schema_option,
)
from console.cost.commands import register as register_cost_commands
from console.drills.commands import register as register_drill_commands
from console.readiness.commands import register as register_readiness_command
from console.runbooks.commands import register as register_runbook_commands

# Options several commands share.
out_option = click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("build"),
    show_default=True,
    help="Where the build goes.",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="gpuops")
def main() -> None:
    """gpuops: run a GPU fleet through its biggest traffic events.

    \b
    Start here:
      gpuops demo                      twin + Prometheus + Alertmanager + console
      gpuops catalog check fleet.yaml  validate the catalog
      gpuops twin --kubeconfig kc.yaml run the fleet twin alone
      gpuops snapshot --prometheus URL print the fleet as the console sees it
      gpuops build && gpuops lint      rules and Alertmanager config, checked by promtool and amtool
    """


@main.group()
def catalog() -> None:
    """The catalog (fleet.yaml): regions, pools, teams, services, prices, events."""


@catalog.command("check")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path), default=DEFAULT_CATALOG)
def catalog_check(file: Path) -> None:
    """Validate FILE; print every error as file:line: field: message and exit 1 if any."""
    from console.catalog import CatalogError, load_catalog

    try:
        c = load_catalog(file)
    except CatalogError as e:
        for issue in e.issues:
            click.echo(str(issue), err=True)
        click.echo(f"{file}: {len(e.issues)} error(s)", err=True)
        sys.exit(1)
    gpus = sum(c.gpus_per_pool().values())
    click.echo(
        f"{file}: ok — {len(c.regions)} regions, {len(c.pools)} pools ({gpus} GPUs), {len(c.teams)} teams, "
        f"{len(c.services)} services, {len(c.events)} events"
    )


@main.command()
@click.option(
    "--catalog",
    "catalog_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_CATALOG,
    show_default=True,
    help="The fleet to simulate.",
)
@click.option(
    "--fleet",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="Load the Alibaba GPU cluster trace from this folder instead of the catalog's pools.",
)
@click.option(
    "--replay-at",
    type=float,
    default=0.0,
    show_default=True,
    help="With --fleet: start the replay this many seconds into the trace.",
)
@click.option(
    "--speed",
    type=float,
    default=1.0,
    show_default=True,
    help="Simulated seconds per wall second (0 pauses the clock).",
)
@click.option(
    "--start",
    "start_at",
    type=click.DateTime(START_FORMATS),
    help="Simulated start time (UTC if no offset); default now.",
)
@click.option(
    "--warmup", type=float, default=90.0, show_default=True, help="Simulated seconds before a new replica serves."
)
@click.option(
    "--deny",
    multiple=True,
    metavar="'VERB RESOURCE [NS]'",
    help="Refuse this action in access reviews and requests, e.g. 'patch deployments/scale llm'.",
)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=0, help="Port to listen on (default: a free one, printed).")
@click.option(
    "--kubeconfig",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write a kubeconfig for the twin here (atomically).",
)
@click.option("-v", "--verbose", is_flag=True, help="Log every request.")
def twin(
    catalog_path: Path,
    fleet: Path | None,
    replay_at: float,
    speed: float,
    start_at,
    warmup: float,
    deny: tuple[str, ...],
    host: str,
    port: int,
    kubeconfig: Path | None,
    verbose: bool,
) -> None:
    """Run the fleet twin: a Kubernetes API, /metrics in the exporters' names, and /twin/ faults.

    \b
    Endpoints:
      /api, /apis, /version   Kubernetes API (kubectl and the official client)
      /metrics                dcgm-exporter, kube-state-metrics, OpenCost, services
      /twin/faults            GET, POST {kind, target, duration_s}, DELETE /twin/faults/ID
      /twin/clock             GET, POST {speed} or {advance_s}
    """
    import signal
    import threading
    from datetime import UTC

    from console.twin.server import TwinServer

    if speed < 0:
        raise click.BadParameter("must be >= 0", param_hint="--speed")
    start = start_at.replace(tzinfo=start_at.tzinfo or UTC) if start_at else None
    try:
        if fleet:
            from console.twin.alibaba import TraceTwin

            sim = TraceTwin(fleet, replay_at=replay_at, speed=speed, start=start, warmup_s=warmup, deny=deny)
        else:
            from console.twin.sim import Twin

            cat = _load_catalog_or_exit(catalog_path)
            sim = Twin(cat, speed=speed, start=start, warmup_s=warmup, deny=deny)
    except (ValueError, OSError) as e:
        click.echo(f"gpuops twin: {e}", err=True)
        sys.exit(1)
    server = TwinServer(sim, host=host, port=port, verbose=verbose)
    if kubeconfig:
        from console.twin.kubeconfig import write_kubeconfig

        write_kubeconfig(kubeconfig, server.url, [c.context for c in sim.catalog.clusters])
    server.start()
    gpus = sum(len(n.gpus) for n in sim.nodes.values())
    click.echo(
        f"twin: {server.url} — {len(sim.nodes)} nodes, {gpus} GPUs, speed {speed:g}x"
        + (f", kubeconfig {kubeconfig}" if kubeconfig else ""),
        err=True,
    )
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    done.wait()
    server.stop()


@main.command()
@catalog_option
@click.option(
    "--fleet",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="The fleet is the Alibaba trace in this folder (as given to `gpuops twin --fleet`).",
)
@click.option("--prometheus", "prom_url", required=True, help="Prometheus base URL.")
@click.option("--kubeconfig", type=click.Path(dir_okay=False, exists=True), help="Kubeconfig to read nodes and HPAs.")
@click.option("--context", help="Kubeconfig context (default: the current one).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def snapshot(
    catalog_path: Path, fleet: Path | None, prom_url: str, kubeconfig: str | None, context: str | None, fmt: str
) -> None:
    """Build one fleet snapshot from the sources and print it (what the console shows)."""
    import dataclasses
    import json

    cat = _load_catalog_or_exit(catalog_path, fleet)
    conn = _connect_or_exit(cat, prom_url, kubeconfig, context, None)
    snap = conn.snapshot()
    conn.close()
    if fmt == "json":
        click.echo(json.dumps(dataclasses.asdict(snap), default=str, indent=1))
    else:
        from console.fleet.render import pools_table

        click.echo(pools_table(snap))
    failing = snap.failing()
    for s in failing:
        click.echo(f"source {s.name} failing since {s.failing_since}: {s.error}", err=True)
    sys.exit(2 if failing else 0)


def _connect_or_exit(
    cat, prom_url: str, kubeconfig: str | None, context: str | None, am_url: str | None, prefetch: bool = False
):
    from console.wiring import connect

    try:
        return connect(cat, prom_url, kubeconfig, context, am_url, prefetch=prefetch)
    except ValueError as e:  # an unknown context
        click.echo(f"error: {e}", err=True)
        sys.exit(2)


def _load_catalog_or_exit(path: Path, fleet: Path | None = None):  # -> Catalog
    if fleet:
        from console.twin.alibaba import catalog as trace_catalog

        return trace_catalog(fleet)
    return catalog_or_exit(path, 1)


@main.command()
@catalog_option
@click.option("--prometheus", "prom_url", required=True, help="Prometheus base URL.")
@click.option("--alertmanager", "am_url", help="Alertmanager base URL.")
@click.option("--kubeconfig", type=click.Path(dir_okay=False, exists=True))
@click.option("--context", help="Kubeconfig context (default: the current one).")
@click.option(
    "--interval",
    type=click.FloatRange(0.2, 3600),
    default=2.0,
    show_default=True,
    help="Seconds between the end of one refresh and the start of the next.",
)
@click.option(
    "--readonly",
    is_flag=True,
    help="Grey out and refuse every mutating action (a context marked readonly in the catalog is always so).",
)
@click.option("--operator", help="Your name, recorded as createdBy on silences (default: your login).")
@runbooks_option
@click.option(
    "--journal",
    "journal_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The runbook journal (default: $GPUOPS_JOURNAL, else ~/.local/state/gpuops/journal.jsonl).",
)
@drill_journal_option
def console(
    catalog_path: Path,
    prom_url: str,
    am_url: str | None,
    kubeconfig: str | None,
    context: str | None,
    interval: float,
    readonly: bool,
    operator: str | None,
    runbooks_dir: Path,
    journal_path: Path | None,
    drill_journal_path: Path | None,
) -> None:
    """Open the console on a fleet's Prometheus (and Kubernetes, Alertmanager).

    \b
    Views: 1 pools, 2 quotas, 3 services, 4 alerts, 5 runbooks, 6 drills, 7 readiness, 8 costs; Enter
           opens a pool, then a node; in Drills, Enter starts the selected scenario (x stops it).
    Keys:  : command bar (:pools :quotas … :costs :ctx NAME :q), / filter,
           o sort, s silence the selected alert, r the runbook for the selected service or alert (plan,
           confirm, run), Ctrl+R refresh, ? every key, Ctrl+P command palette, q quit.
    """
    cat = _load_catalog_or_exit(catalog_path)
    # The first refresh starts now and runs while the Kubernetes client and Textual load.
    conn = _connect_or_exit(cat, prom_url, kubeconfig, context, am_url, prefetch=True)
    conn.runbooks_dir, conn.journal_path = runbooks_dir, journal_path
    conn.drill_journal_path = drill_journal_path

    from console.tui.run import run_console

    run_console(conn, interval=interval, readonly=readonly, operator=operator)


@main.command()
@catalog_option
@click.option("--speed", type=float, default=1.0, show_default=True, help="The twin's clock speed.")
@click.option(
    "--scrape-interval",
    type=click.FloatRange(1, 5),
    default=2.0,
    show_default=True,
    help="Prometheus scrape and rule evaluation interval, seconds.",
)
@click.option(
    "--keep",
    type=click.Path(file_okay=False, path_type=Path),
    help="Keep the working folder (configs, logs, kubeconfig, TSDB) here instead of deleting it.",
)
@click.option("--no-console", is_flag=True, help="Start the servers, print their URLs, wait for Ctrl+C.")
@click.option(
    "--start",
    "start_at",
    type=click.DateTime(START_FORMATS),
    help="The twin's simulated start time (UTC if no offset), e.g. an hour before an event; default now.",
)
def demo(
    catalog_path: Path,
    speed: float,
    scrape_interval: float,
    keep: Path | None,
    no_console: bool,
    start_at: datetime | None,
) -> None:
    """Start the twin, a real Prometheus and Alertmanager, write a kubeconfig, open the console.

    Ctrl+C (or q in the console) stops every process it started; the working folder is deleted unless
    --keep names one.
    """
    from console.demo import run_demo

    cat = _load_catalog_or_exit(catalog_path)
    sys.exit(
        run_demo(
            cat,
            catalog_path,
            speed=speed,
            scrape_interval=scrape_interval,
            keep=keep,
            no_console=no_console,
            twin_args=("--start", start_at.strftime("%Y-%m-%dT%H:%M:%S%z")) if start_at else (),
        )
    )


dashboards_option = click.option(
    "--dashboards",
    "dashboards_dir",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    default=Path("dashboards"),
    show_default=True,
    help="The dashboard files (*.py, each with build(catalog)).",
)


@main.command()
@catalog_option
@out_option
@dashboards_option
@click.option(
    "--mixin",
    "mixins",
    multiple=True,
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Also compile this monitoring mixin (another team's, or a public one); repeatable.",
)
@click.option(
    "--jpath",
    "jpaths",
    multiple=True,
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="A jsonnet library folder for --mixin imports (vendor/); repeatable.",
)
def build(
    catalog_path: Path, out: Path, dashboards_dir: Path, mixins: tuple[Path, ...], jpaths: tuple[Path, ...]
) -> None:
    """Build the dashboards, Prometheus rules and Alertmanager config from the catalog.

    \b
      OUT/dashboards/<uid>.json  Grafana dashboards (dashboards/*.py, grafanalib)
      OUT/rules/*.yaml           Prometheus rules (alerts/mixin.libsonnet, and each --mixin)
      OUT/alertmanager.yaml      Alertmanager routing (alerts/alertmanager.libsonnet)

    Files are written with sorted keys, each whole or not at all: two builds give the same bytes.
    """
    import time

    from console.codegen.dashboards import DashboardError, build_all, panel_urls, write_dashboards
    from console.codegen.mixin import MixinError, build_alertmanager, build_rules, compile_mixin, write_rules

    cat = _load_catalog_or_exit(catalog_path)
    rules_dir = out / "rules"
    t0 = time.perf_counter()
    try:
        dashboards = write_dashboards(build_all(cat, dashboards_dir), out / "dashboards")
        t_dash = time.perf_counter() - t0
        built = [build_rules(cat, rules_dir, panel_urls(dashboards, cat.grafana.url))]
        for m in mixins:
            built.append(write_rules(compile_mixin(m, jpaths), rules_dir, m.name.split(".")[0]))
        am = build_alertmanager(cat, out)
    except (MixinError, DashboardError) as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(1)
    panels = sum(len(list(d.panels())) for d in dashboards)
    click.echo(f"{out / 'dashboards'}: {len(dashboards)} dashboards, {panels} panels")
    for b in built:
        click.echo(f"{b.rules}: {b.recording} recording rules; {b.alerts}: {b.alerting} alerts")
    click.echo(f"{am}: routes for {len(cat.teams) + 1} teams")
    total = time.perf_counter() - t0
    click.echo(f"built in {total * 1000:.0f} ms (dashboards {t_dash * 1000:.0f} ms)", err=True)


@main.command()
@catalog_option
@out_option
@click.option(
    "--tests",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("alerts/tests"),
    show_default=True,
    help="promtool unit tests (*.yaml), run against the built rules.",
)
@schema_option
@click.option(
    "--prometheus",
    "prom_url",
    help="Also run every dashboard query on this Prometheus: each must parse there and return data.",
)
@click.option(
    "--runbooks",
    "runbooks_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("runbooks"),
    show_default=True,
    help="The runbook files that alerts and dashboards link to.",
)
def lint(catalog_path: Path, out: Path, tests: Path, schema: Path, prom_url: str | None, runbooks_dir: Path) -> None:
    """Check what `gpuops build` wrote, with the real tools.

    \b
    Rules:        promtool check rules; promtool test rules (--tests)
    Alertmanager: amtool check-config; amtool config routes test for every team and severity
    Dashboards:   Grafana's JSON schema; every panel and variable query parsed by promtool,
                  and with --prometheus run there, where it must return data
    Links:        every runbook file loads; every alert's runbook_url and dashboard_url, and every
                  dashboard's runbook link, resolves to a runbook file or a built dashboard panel

    Exits 1 if any check fails, naming the file, rule, panel or route and the tool's message.
    """
    from console.codegen.dashboard_lint import check_promql_live, check_promql_offline, check_schema, expressions
    from console.codegen.dashboards import read_built
    from console.codegen.links import Resolver, check_alert_links, check_dashboard_links, check_runbooks
    from console.codegen.lint import check_alertmanager, check_rules, test_rules
    from console.codegen.mixin import expected_receivers

    cat = _load_catalog_or_exit(catalog_path)
    files = sorted((out / "rules").glob("*.yaml"))
    am = out / "alertmanager.yaml"
    dashboards = read_built(out / "dashboards")
    if not files or not am.exists() or not dashboards:
        click.echo(f"error: no build in {out}; run `gpuops build` first", err=True)
        sys.exit(2)
    if not schema.is_file():
        click.echo(f"error: no Grafana dashboard schema at {schema}; pass --schema", err=True)
        sys.exit(2)
    findings = check_rules(files) + test_rules(sorted(tests.glob("*.yaml")), out / "rules")
    findings += check_alertmanager(am, expected_receivers(cat))
    exprs = list(expressions(dashboards))
    findings += check_schema(dashboards, schema) + check_promql_offline(exprs)
    if prom_url:
        findings += check_promql_live(exprs, prom_url)
    resolver = Resolver(dashboards, cat.grafana.url, cat.grafana.runbooks_url, runbooks_dir)
    findings += [check_runbooks(runbooks_dir)]
    findings += check_alert_links(files, resolver) + check_dashboard_links(dashboards, resolver)
    for f in findings:
        click.echo(f"{'ok  ' if f.ok else 'FAIL'} {f.tool}: {f.target}")
        if not f.ok:
            click.echo("\n".join(f"     {line}" for line in f.output.splitlines()))
    failed = sum(not f.ok for f in findings)
    click.echo(f"{len(findings)} checks, {failed} failed", err=True)
    sys.exit(1 if failed else 0)


@main.group()
def runbook() -> None:
    """Runbooks (runbooks/*.yaml): typed parameters, preconditions, steps with rollbacks, verification."""


def _runbooks_or_exit(folder: Path):  # -> dict[str, Runbook]
    from console.runbooks import RunbookError, load_runbooks

    try:
        return load_runbooks(folder)
    except RunbookError as e:
        for issue in e.issues:
            click.echo(str(issue), err=True)
        click.echo(f"{folder}: {len(e.issues)} error(s)", err=True)
        sys.exit(1)


# plan, run, journal, rollback: the engine's commands.
register_runbook_commands(runbook)


@main.group()
def drill() -> None:
    """Incident drills (runbooks/drills/*.yaml): inject faults, time detection and mitigation, report."""


register_drill_commands(drill)
register_readiness_command(main)
register_cost_commands(main)


@runbook.command("list")
@runbooks_option
def runbook_list(runbooks_dir: Path) -> None:
    """Every runbook: name, title, parameters, steps. Exits 1 naming file:line: field if one does not load."""
    rbs = _runbooks_or_exit(runbooks_dir)
    width = max(len(n) for n in rbs)
    for name, rb in sorted(rbs.items()):
        params = " ".join(p.name + ("?" if p.optional or p.default is not None else "") for p in rb.parameters)
        steps = f"{len(rb.steps)} step" + ("s" if len(rb.steps) != 1 else "")
        click.echo(f"{name:<{width}}  {rb.title}  [{params}]  {steps}")


@runbook.command("show")
@runbooks_option
@click.argument("name")
def runbook_show(runbooks_dir: Path, name: str) -> None:
    """One runbook in full: parameters with types, ranges and defaults; checks; steps and their rollbacks."""
    rbs = _runbooks_or_exit(runbooks_dir)
    if name not in rbs:
        click.echo(f"error: no runbook {name!r}; known: {', '.join(sorted(rbs))}", err=True)
        sys.exit(2)
    from console.runbooks.render import describe

    click.echo(describe(rbs[name]))


grafana_options = [
    click.option("--grafana-url", required=True, help="Grafana's base URL, e.g. https://grafana.example.com."),
    click.option(
        "--token-file",
        type=click.Path(dir_okay=False, exists=True, path_type=Path),
        help="A file holding the API token (default: the GRAFANA_TOKEN environment variable).",
    ),
]


def _grafana_options(fn):  # type: ignore[no-untyped-def]
    for opt in reversed(grafana_options):
        fn = opt(fn)
    return fn


def _grafana_client(url: str, token_file: Path | None):  # -> GrafanaClient
    import os

    from console.sources.grafana import GrafanaClient

    token = token_file.read_text().strip() if token_file else os.environ.get("GRAFANA_TOKEN")
    return GrafanaClient(url, token or None)


def _built_dashboards_or_exit(out: Path):  # -> list[BuiltDashboard]
    from console.codegen.dashboards import read_built

    built = read_built(out / "dashboards")
    if not built:
        click.echo(f"error: no dashboards in {out / 'dashboards'}; run `gpuops build` first", err=True)
        sys.exit(2)
    return built


@main.command()
@catalog_option
@out_option
@_grafana_options
def diff(catalog_path: Path, out: Path, grafana_url: str, token_file: Path | None) -> None:
    """Print a unified diff of each built dashboard against what Grafana holds (ignoring id and version).

    Exits 0 when Grafana matches the build, 1 on any drift (a missing dashboard included), 2 on an error.
    Reads only.
    """
    from console.codegen.publish import PublishAborted, plan, raise_if_global
    from console.sources.grafana import GrafanaError

    cat = _load_catalog_or_exit(catalog_path)
    built = _built_dashboards_or_exit(out)
    client = _grafana_client(grafana_url, token_file)
    try:
        changes = plan(built, client, cat.grafana.folder_uid)
    except GrafanaError as e:
        try:
            raise_if_global(e, cat.grafana.folder_uid)
            click.echo(f"error: {e}", err=True)
        except PublishAborted as a:
            click.echo(f"error: {a}", err=True)
        sys.exit(2)
    finally:
        client.close()
    drift = [c for c in changes if c.state != "unchanged"]
    for c in changes:
        if c.state != "unchanged":
            click.echo(c.diff, nl=False)
    for c in changes:
        word = {"create": "missing in Grafana", "update": "differs", "move": "in another folder"}.get(c.state, "same")
        click.echo(f"{c.uid}: {word}", err=True)
    sys.exit(1 if drift else 0)


@main.command()
@catalog_option
@out_option
@_grafana_options
@click.option("--dry-run", is_flag=True, help="Show what would be created or updated; write nothing.")
@click.option("--message", help="The version message in Grafana (default: gpuops publish <git commit>).")
@click.option(
    "--force",
    is_flag=True,
    help="Overwrite dashboards even if someone changed them in Grafana since they were read.",
)
def publish(
    catalog_path: Path,
    out: Path,
    grafana_url: str,
    token_file: Path | None,
    dry_run: bool,
    message: str | None,
    force: bool,
) -> None:
    """Publish the built dashboards to Grafana: create the catalog's folder if missing, post the dashboards
    that changed (only those), and report created / updated / unchanged.

    \b
    A dashboard edited in Grafana since it was read is not overwritten (412 version-mismatch) unless
    --force; one whose title another dashboard in the folder holds is refused (412 name-exists).
    Reads and posts are retried on 5xx. Exits 1 if any dashboard failed, 2 if none could be tried.
    """
    from console.codegen.publish import PublishAborted, commit_message
    from console.codegen.publish import publish as do_publish
    from console.sources.grafana import GrafanaError

    cat = _load_catalog_or_exit(catalog_path)
    built = _built_dashboards_or_exit(out)
    client = _grafana_client(grafana_url, token_file)
    msg = message or commit_message(Path(__file__).resolve().parents[1])
    try:
        changes, report = do_publish(
            built, client, cat.grafana.folder_uid, cat.grafana.folder_title, msg, dry_run=dry_run, force=force
        )
    except (PublishAborted, GrafanaError) as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(2)
    finally:
        client.close()
    would = "would be " if dry_run else ""
    if report.folder_created:
        click.echo(f"folder {cat.grafana.folder_uid} ({cat.grafana.folder_title!r}): {would}created")
    states = {uid: "created" for uid in report.created} | {uid: "updated" for uid in report.updated}
    states |= {uid: "unchanged" for uid in report.unchanged}
    for c in changes:
        if c.uid in report.failed:
            click.echo(f"FAIL {c.uid}: {report.failed[c.uid]}")
        else:
            click.echo(f"{c.uid}: {would}{states[c.uid]}")
        if dry_run and c.state != "unchanged":
            click.echo(c.diff, nl=False)
    reqs = ", ".join(f"{n} {m}" for m, n in sorted(client.requests.items()))
    click.echo(
        f"{len(report.created)} {would}created, {len(report.updated)} {would}updated, "
        f"{len(report.unchanged)} unchanged, {len(report.failed)} failed ({reqs}) — {msg}",
        err=True,
    )
    sys.exit(1 if report.failed else 0)


if __name__ == "__main__":
    main()
