"""`gpuops snapshot`: the fleet as the console sees it."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from console.cli.options import (
    catalog_option,
    connect_or_exit,
    context_option,
    fleet_catalog_or_exit,
    kubeconfig_option,
    prometheus_option,
)


@click.command()
@catalog_option
@click.option(
    "--fleet",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="The fleet is the Alibaba trace in this folder (as given to `gpuops twin --fleet`).",
)
@prometheus_option(help="Prometheus base URL.")
@kubeconfig_option
@context_option
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def snapshot(
    catalog_path: Path, fleet: Path | None, prom_url: str, kubeconfig: str | None, context: str | None, fmt: str
) -> None:
    """Build one fleet snapshot from the sources and print it (what the console shows)."""
    import dataclasses
    import json

    cat = fleet_catalog_or_exit(catalog_path, fleet)
    conn = connect_or_exit(cat, prom_url, kubeconfig, context, None)
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
