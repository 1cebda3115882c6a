"""`gpuops cost report`: GPU-hours and cost by team, namespace, service, region, pool, GPU model or pod."""

from __future__ import annotations

import sys
import time
from datetime import UTC
from pathlib import Path

import click

from console.cli.options import (
    catalog_option,
    catalog_or_exit,
    context_option,
    context_or_exit,
    kubeconfig_option,
    prometheus_option,
)
from console.cost.export import DIMENSIONS

FORMATS = ("table", "csv", "json", "focus")


@click.group()
def cost() -> None:
    """GPU cost attribution, budgets and exports (prices, tiers and budgets from the catalog)."""


@cost.command("report")
@catalog_option
@prometheus_option(help="Prometheus base URL.")
@kubeconfig_option
@context_option
@click.option("--from", "from_", default="month", show_default=True, help="Start: now, month, -6h, -7d, ISO 8601.")
@click.option("--to", "to", default="now", show_default=True, help="End, as --from.")
@click.option("--by", type=click.Choice(DIMENSIONS), default="team", show_default=True, help="Group by.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@click.option("--step", type=float, help="Seconds between readings (default: the scrape interval, or finer).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write here, not stdout.")
def report_cmd(
    catalog_path: Path,
    prom_url: str,
    kubeconfig: str | None,
    context: str | None,
    from_: str,
    to: str,
    by: str,
    fmt: str,
    step: float | None,
    output: Path | None,
) -> None:
    """GPU-hours and cost over a period, from GPU requests in Prometheus (kube-state-metrics).

    \b
    Each pod is charged for the GPUs it requests while it holds them: a MIG instance as its share of
    the GPU, a shared GPU (gpu-milli) by its thousandths. Allocatable GPUs nobody requested are
    `__idle__` (spread over the teams when prices.share_idle is true). Efficiency: busy GPU-hours
    (dcgm-exporter utilisation) / GPU-hours.
    \b
    list       GPU-hours x the model's hourly price (prices.gpu_hourly)
    effective  with the team's SLA tier and billing mode (hourly, monthly_package, per_job)
    \b
    --format focus writes FinOps FOCUS rows (one per pod and pool idle line) as CSV; table, csv and
    json group them --by a dimension. Every grouping adds up to the same totals.
    Times are on the fleet's clock: the twin's simulated clock with --context twin.
    Exit 2 on bad input or when Prometheus cannot be read.
    """
    from console.cost.budgets import month_bounds
    from console.cost.export import table, to_csv, to_focus, to_json
    from console.cost.gather import parse_when, read_period
    from console.fleet.scope import for_catalog
    from console.sources.prometheus import PrometheusSource

    cat = catalog_or_exit(catalog_path)
    if step is not None and step <= 0:
        click.echo("error: --step: must be more than 0 seconds", err=True)
        sys.exit(2)
    from console.wiring import connect

    # The fleet's clock: the twin's with its context, else real time (no kubeconfig: a cluster's).
    conn = connect(cat, prom_url, kubeconfig, context_or_exit(kubeconfig, context) if kubeconfig else None)
    try:
        timeline = conn.timeline()
    except Exception as e:
        click.echo(f"error: reading the twin's clock through {kubeconfig} / {context}: {e}", err=True)
        sys.exit(2)
    finally:
        conn.close()
    try:
        now = timeline.sim_at(time.time()).astimezone(UTC)
        start, end = parse_when(from_, now), parse_when(to, now)
    except ValueError as e:
        click.echo(f"error: --from/--to: {e}", err=True)
        sys.exit(2)
    if end <= start:
        click.echo(f"error: --to ({end:%Y-%m-%d %H:%M}) is not after --from ({start:%Y-%m-%d %H:%M})", err=True)
        sys.exit(2)
    prom = PrometheusSource(prom_url, timeout_s=60, rewrite=for_catalog(cat))
    try:
        period = read_period(prom, cat, timeline, start, min(end, now), step, say=lambda s: click.echo(s, err=True))
    except Exception as e:
        click.echo(f"error: {prom_url}: {e}", err=True)
        sys.exit(2)
    rep = period.report
    if rep.measured_from and fmt != "table":  # the table says it in its heading
        click.echo(f"note: Prometheus' history starts at {rep.measured_from:%Y-%m-%d %H:%M:%S} UTC", err=True)
    if fmt == "focus":
        centres = {t.name: t.cost_centre for t in cat.teams}
        text = to_focus(rep, *month_bounds(rep.start), centres, {r.name: r.title or r.name for r in cat.regions})
    else:
        text = {"table": table, "csv": to_csv, "json": to_json}[fmt](rep, by)
    if output is None:
        click.echo(text)
        return
    from console.atomic import PUBLISHED, write_atomic

    write_atomic(output, text if text.endswith("\n") else text + "\n", mode=PUBLISHED)
    click.echo(f"{output}: {len(rep.rows)} rows, {fmt}", err=True)
