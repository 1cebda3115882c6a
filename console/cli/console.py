"""`gpuops console`."""

from __future__ import annotations

from pathlib import Path

import click

from console.cli.options import (
    alertmanager_option,
    catalog_option,
    connect_or_exit,
    context_option,
    drill_journal_option,
    fleet_catalog_or_exit,
    kubeconfig_option,
    operator_option,
    prometheus_option,
    runbooks_option,
)


@click.command()
@catalog_option
@prometheus_option(
    required=False,
    help="Prometheus base URL. Not needed when the catalog names each cluster's Prometheus or a global view: the "
    "console then reads cluster by cluster (`:ctx all` merged, `:ctx NAME` one).",
)
@alertmanager_option
@kubeconfig_option
@context_option
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
@operator_option
@runbooks_option
@click.option(
    "--journal",
    "journal_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The runbook journal (default: $GPUOPS_JOURNAL, else ~/.local/state/gpuops/journal.jsonl).",
)
@drill_journal_option
@click.option(
    "--relay", "relay_url", help="`gpuops relay` base URL: the Alerts view shows which chat each alert reached."
)
def console(
    catalog_path: Path,
    prom_url: str | None,
    am_url: str | None,
    kubeconfig: str | None,
    context: str | None,
    interval: float,
    readonly: bool,
    operator: str | None,
    runbooks_dir: Path,
    journal_path: Path | None,
    drill_journal_path: Path | None,
    relay_url: str | None,
) -> None:
    """Open the console on a fleet's Prometheus (and Kubernetes, Alertmanager).

    \b
    Views: 1 pools, 2 quotas, 3 services, 4 alerts, 5 runbooks, 6 drills, 7 readiness, 8 costs, 9 queues; Enter
           opens a pool, then a node; in Drills, Enter starts the selected scenario (x stops it).
    Keys:  : command bar (:pools :quotas … :costs :ctx NAME :q), / filter,
           o sort, s silence the selected alert, r the runbook for the selected service or alert (plan,
           confirm, run), Ctrl+R refresh, ? every key, Ctrl+P command palette, q quit.
    """
    cat = fleet_catalog_or_exit(catalog_path)
    if not prom_url and not cat.read_clusters():
        raise click.UsageError(
            f"--prometheus is required: {catalog_path} names no cluster's Prometheus and no global view"
        )
    # The first refresh starts now and runs while the Kubernetes client and Textual load.
    conn = connect_or_exit(cat, prom_url or "", kubeconfig, context, am_url, prefetch=True, relay_url=relay_url)
    conn.runbooks_dir, conn.journal_path = runbooks_dir, journal_path
    conn.drill_journal_path = drill_journal_path

    from console.tui.run import run_console

    run_console(conn, interval=interval, readonly=readonly, operator=operator)
