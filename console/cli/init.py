"""`gpuops init DIR`: start a team's ops-as-code repository."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from console.cli.options import context_option, kubeconfig_option


@click.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--discover",
    is_flag=True,
    help="Draft fleet.yaml from the cluster (as `gpuops catalog discover`) instead of the example fleet.",
)
@kubeconfig_option
@context_option
def init(directory: Path, discover: bool, kubeconfig: str | None, context: str | None) -> None:
    """Make DIRECTORY a team's ops-as-code repository: fleet.yaml, dashboards/, alerts/ (the monitoring mixin,
    the Alertmanager template and, with the example fleet, its promtool tests), runbooks/, a README and a CI
    workflow (.github/workflows/gpuops.yml: check, build, lint and diff on pull requests; publish main).

    \b
    DIRECTORY may exist (a fresh clone); no file in it is replaced: if any of these exists, nothing is
    written. Afterwards, in DIRECTORY:
      gpuops catalog check fleet.yaml && gpuops build && gpuops lint
    """
    from importlib.metadata import version

    from console.runbooks.signals import interrupts
    from console.scaffold import InitError, create, files

    catalog = None
    if discover:
        from console.cli.catalog import draft_from_cluster

        catalog = draft_from_cluster(kubeconfig, context)
    content = files(version("gpuops"), catalog)
    try:
        with interrupts():
            create(directory, content)
    except InitError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(2)
    except OSError as e:
        click.echo(f"error: {directory}: {e.strerror or e}; nothing written", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        click.echo(f"stopped: nothing written in {directory}", err=True)
        sys.exit(130)
    for rel in sorted(content):
        click.echo(f"  {directory / rel}")
    click.echo(f"{directory}: {len(content)} files. Next:", err=True)
    click.echo(f"  cd {directory} && gpuops catalog check fleet.yaml && gpuops build && gpuops lint", err=True)
