"""`gpuops readiness EVENT`: will every service of an event hold, and what to do now."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from console.cli.options import (
    catalog_option,
    catalog_or_exit,
    context_option,
    context_or_exit,
    drill_journal_option,
    kubeconfig_option,
    prometheus_option,
    runbooks_option,
    schema_option,
)


def evaluate(
    catalog_path: Path,
    runbooks_dir: Path,
    event_name: str,
    prom_url: str,
    kubeconfig: str | None,
    context: str | None,
    drill_journal: Path | None,
    schema: Path,
    say: Any,
    method: str = "peak-ensemble",
) -> Any:  # -> Readiness
    """Check the input, then what the console's Readiness view runs; exits 2 on bad input or a failing source."""
    from console.runbooks.load import RunbookError
    from console.wiring import connect

    cat = catalog_or_exit(catalog_path)
    if event_name not in {e.name for e in cat.events}:
        known = ", ".join(e.name for e in cat.events) or "none"
        click.echo(f"error: {catalog_path}: no event {event_name!r} (events: {known})", err=True)
        sys.exit(2)
    ctx = context_or_exit(kubeconfig, context)
    say("reading the fleet …")
    conn = connect(cat, prom_url, kubeconfig, ctx, None, runbooks_dir=runbooks_dir, drill_journal=drill_journal)
    try:
        conn.runbooks()
    except RunbookError as e:
        for issue in e.issues:
            click.echo(str(issue), err=True)
        sys.exit(2)
    try:
        snap = conn.snapshot()
        for s in snap.failing():
            click.echo(f"error: source {s.name}: {s.error}", err=True)
        if snap.failing():
            sys.exit(2)
        return conn.readiness(event_name, snap, say=say, schema=schema, method=method)
    except Exception as e:  # Prometheus, Kubernetes or the twin refused a read: say which, exit 2
        click.echo(f"error: reading {prom_url} / {ctx}: {e}", err=True)
        sys.exit(2)
    finally:
        conn.close()


@click.command("readiness")
@catalog_option
@runbooks_option
@prometheus_option(help="Prometheus base URL (request history, rules).")
@kubeconfig_option
@context_option
@drill_journal_option
@schema_option
@click.option("--format", "fmt", type=click.Choice(["table", "json", "markdown"]), default="table", show_default=True)
@click.option(
    "--method",
    type=click.Choice(["peak-ensemble", "prophet"]),
    default="peak-ensemble",
    show_default=True,
    help="The peak forecaster (prophet: a Prophet fit per row, seconds each).",
)
@click.argument("event")
def readiness_cmd(
    catalog_path: Path,
    runbooks_dir: Path,
    prom_url: str,
    kubeconfig: str | None,
    context: str | None,
    drill_journal_path: Path | None,
    schema: Path,
    fmt: str,
    method: str,
    event: str,
) -> None:
    """Will every service of EVENT hold, in every region, and what must be done now.

    \b
    For each service x region of the event (catalog `events:`):
      forecast  the P95 of the event window's peak request rate, from 21 days of history (the twin's
                simulated days on a twin), times the event's uplift: learned from a past event of the
                catalog that the history holds (its hours left out of the forecast), else the catalog's
                multiplier. The default method
                (peak-ensemble) is calibrated on its own past forecasts of the same clock window; `cover`
                is the share of past windows its P95 held (`-`: too few windows yet, about 15 days of
                history give the first). With too little history it falls back to
                naive1d, then to the highest rate seen, and says so. See `gpuops forecast backtest`.
      sizing    peak x GPU-seconds per request (LLMs: tokens per request / the GPU model's tokens per
                GPU-second) / target utilisation -> replicas needed; x (1 + buffer) -> required
      verdict   READY (ready replicas >= required), AT RISK (inside the buffer), NOT READY (short of
                the peak), NO DATA (no history to forecast from)
    Then a checklist (alerts loaded, dashboards build, fallbacks exist, runbooks drilled within the
    event's window, quota room) and the runbook plans that close each gap.

    Exit 0 when READY (or the event has ended), 1 when AT RISK or NOT READY, 2 on bad input or a
    failing source.
    """
    from console.readiness.render import render_json, render_markdown, render_table

    def say(line: str) -> None:
        click.echo(line, err=True)

    r = evaluate(
        catalog_path, runbooks_dir, event, prom_url, kubeconfig, context, drill_journal_path, schema, say, method
    )
    render = {"table": render_table, "json": render_json, "markdown": render_markdown}[fmt]
    click.echo(render(r))
    sys.exit(0 if r.verdict in ("READY", "ENDED") else 1)
