"""Options several `gpuops` commands share."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

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

# Grafana's dashboard JSON schema, shipped in the package: an installed gpuops reads nothing outside itself.
DEFAULT_SCHEMA = Path(__file__).resolve().parent / "codegen" / "grafana-dashboard.jsonschema.json"
# A simulated start time on the command line (`twin --start`, `demo --start`): UTC unless an offset is given.
START_FORMATS = ["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S"]
schema_option = click.option(
    "--schema",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_SCHEMA,
    help="Grafana's dashboard JSON schema (default: the copy shipped with gpuops).",
)
drill_journal_option = click.option(
    "--drill-journal",
    "drill_journal_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The drill journal (default: $GPUOPS_DRILL_JOURNAL, else drills.jsonl beside the runbook journal).",
)


def catalog_or_exit(path: Path, code: int = 2) -> Any:  # -> Catalog
    """The catalog at `path`, or each problem as file:line: field: message on stderr and exit `code`."""
    from console.catalog import CatalogError, load_catalog

    try:
        return load_catalog(path)
    except CatalogError as e:
        for issue in e.issues:
            click.echo(str(issue), err=True)
        sys.exit(code)
