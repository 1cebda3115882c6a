"""Options several `gpuops` commands share."""

from __future__ import annotations

from pathlib import Path

import click

DEFAULT_CATALOG = "fleet.yaml"

catalog_option = click.option(
    "--catalog",
    "catalog_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_CATALOG,
    show_default=True,
    help="The fleet catalog.",
)
runbooks_option = click.option(
    "--runbooks",
    "runbooks_dir",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    default=Path("runbooks"),
    show_default=True,
    help="The runbook files.",
)
