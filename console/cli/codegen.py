"""`gpuops build | lint | diff | publish`: rules, Alertmanager config and dashboards as code."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from console.cli.options import (
    alerts_option,
    catalog_option,
    dashboards_option,
    fleet_catalog_or_exit,
    out_option,
    runbooks_option,
    schema_option,
    with_options,
)
from console.content import ALERTS, mixin

if TYPE_CHECKING:
    from console.catalog.model import Catalog
    from console.codegen.dashboards import BuiltDashboard
    from console.sources.grafana import GrafanaClient


@click.command()
@catalog_option
@out_option
@dashboards_option
@alerts_option
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
    catalog_path: Path,
    out: Path,
    dashboards_dir: Path,
    alerts_dir: Path,
    mixins: tuple[Path, ...],
    jpaths: tuple[Path, ...],
) -> None:
    """Build the dashboards, Prometheus rules and Alertmanager config from the catalog.

    \b
      OUT/dashboards/<uid>.json  Grafana dashboards (dashboards/*.py, grafanalib)
      OUT/rules/*.yaml           Prometheus rules (alerts/mixin.libsonnet, and each --mixin)
      OUT/alertmanager.yaml      Alertmanager routing (alerts/alertmanager.libsonnet)

    Dashboards and alerts come from ./dashboards and ./alerts (a repository `gpuops init` made), else from
    the copies gpuops ships; the summary names which.

    Files are written with sorted keys, each whole or not at all: two builds give the same bytes.
    """
    import time

    from console.codegen.dashboards import DashboardError, build_all, write_dashboards
    from console.codegen.mixin import MixinError, build_alertmanager, build_rules, compile_mixin, write_rules

    cat = fleet_catalog_or_exit(catalog_path)
    rules_dir = out / "rules"
    t0 = time.perf_counter()
    try:
        dashboards = write_dashboards(build_all(cat, dashboards_dir), out / "dashboards")
        t_dash = time.perf_counter() - t0
        built = [build_rules(cat, rules_dir, dashboards, alerts=alerts_dir)]
        for m in mixins:
            built.append(write_rules(compile_mixin(m, jpaths), rules_dir, m.name.split(".")[0]))
        am = build_alertmanager(cat, out, alerts_dir)
    except (MixinError, DashboardError) as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(1)
    panels = sum(len(list(d.panels())) for d in dashboards)
    click.echo(f"{out / 'dashboards'}: {len(dashboards)} dashboards, {panels} panels (from {dashboards_dir})")
    sources = [mixin(alerts_dir), *mixins]
    for b, source in zip(built, sources, strict=True):
        click.echo(f"{b.rules}: {b.recording} recording rules; {b.alerts}: {b.alerting} alerts (from {source})")
    click.echo(f"{am}: routes for {len(cat.teams) + 1} teams")
    total = time.perf_counter() - t0
    click.echo(f"built in {total * 1000:.0f} ms (dashboards {t_dash * 1000:.0f} ms)", err=True)


@click.command()
@catalog_option
@out_option
@click.option(
    "--tests",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="promtool unit tests (*.yaml), run against the built rules (default: ./alerts/tests where there is one; "
    "the example fleet's tests are not run against another catalog's rules).",
)
@schema_option
@click.option(
    "--prometheus",
    "prom_url",
    help="Also run every dashboard query on this Prometheus: each must parse there and return data.",
)
@runbooks_option
def lint(
    catalog_path: Path, out: Path, tests: Path | None, schema: Path, prom_url: str | None, runbooks_dir: Path
) -> None:
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
    from console.codegen.lint import check_alertmanager, check_rules, shown, test_rules
    from console.codegen.mixin import expected_receivers

    cat = fleet_catalog_or_exit(catalog_path)
    files = sorted((out / "rules").glob("*.yaml"))
    am = out / "alertmanager.yaml"
    dashboards = read_built(out / "dashboards")
    if not files or not am.exists() or not dashboards:
        click.echo(f"error: no build in {out}; run `gpuops build` first", err=True)
        sys.exit(2)
    if not schema.is_file():
        click.echo(f"error: no Grafana dashboard schema at {schema}; pass --schema", err=True)
        sys.exit(2)
    # A team's repository without tests of its own (`gpuops init --discover`) has none to run: said, not failed.
    tests = tests or Path(ALERTS) / "tests"
    unit = sorted(tests.glob("*.yaml"))
    findings = check_rules(files) + test_rules(unit, out / "rules")
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
        if lines := shown(f):
            click.echo("\n".join(f"     {line}" for line in lines))
    failed = sum(not f.ok for f in findings)
    if not unit:
        click.echo(f"note: no promtool unit tests ({tests}: no *.yaml)", err=True)
    click.echo(f"{len(findings)} checks, {failed} failed", err=True)
    sys.exit(1 if failed else 0)


grafana_options = with_options(
    click.option(
        "--grafana-url",
        envvar="GRAFANA_URL",
        help="Grafana's base URL, e.g. https://grafana.example.com (default: $GRAFANA_URL, else the catalog's "
        "grafana.url).",
    ),
    click.option(
        "--token-file",
        type=click.Path(dir_okay=False, exists=True, path_type=Path),
        help="A file holding the API token (default: the GRAFANA_TOKEN environment variable).",
    ),
)


def _grafana_client(url: str | None, token_file: Path | None, cat: Catalog) -> GrafanaClient:
    import os

    from console.sources.grafana import GrafanaClient

    url = url or cat.grafana.url
    if not url:
        click.echo("error: no Grafana URL: pass --grafana-url, set GRAFANA_URL or the catalog's grafana.url", err=True)
        sys.exit(2)
    token = token_file.read_text().strip() if token_file else os.environ.get("GRAFANA_TOKEN")
    return GrafanaClient(url, token or None)


def _built_dashboards_or_exit(out: Path) -> list[BuiltDashboard]:
    from console.codegen.dashboards import read_built

    built = read_built(out / "dashboards")
    if not built:
        click.echo(f"error: no dashboards in {out / 'dashboards'}; run `gpuops build` first", err=True)
        sys.exit(2)
    return built


@click.command()
@catalog_option
@out_option
@grafana_options
def diff(catalog_path: Path, out: Path, grafana_url: str | None, token_file: Path | None) -> None:
    """Print a unified diff of each built dashboard against what Grafana holds (ignoring id and version).

    Exits 0 when Grafana matches the build, 1 on any drift (a missing dashboard included), 2 on an error.
    Reads only.
    """
    from console.codegen.publish import PublishAborted, plan, raise_if_global
    from console.sources.grafana import GrafanaError

    cat = fleet_catalog_or_exit(catalog_path)
    built = _built_dashboards_or_exit(out)
    client = _grafana_client(grafana_url, token_file, cat)
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


@click.command()
@catalog_option
@out_option
@grafana_options
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
    grafana_url: str | None,
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

    cat = fleet_catalog_or_exit(catalog_path)
    built = _built_dashboards_or_exit(out)
    client = _grafana_client(grafana_url, token_file, cat)
    msg = message or commit_message(Path.cwd())  # the repository the content was built from
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
