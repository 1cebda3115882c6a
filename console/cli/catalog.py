"""`gpuops catalog check`."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from console.cli.options import DEFAULT_CATALOG


@click.group()
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
