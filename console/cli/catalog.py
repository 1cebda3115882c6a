"""`gpuops catalog check`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from console.cli.options import DEFAULT_CATALOG, context_option, context_or_exit, kubeconfig_option

if TYPE_CHECKING:
    from console.catalog.model import Catalog


@click.group()
def catalog() -> None:
    """The catalog (fleet.yaml): regions, pools, teams, services, prices, events."""


@catalog.command("check")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path), default=DEFAULT_CATALOG)
@click.option("--strict", is_flag=True, help="Exit 1 while any placeholder of `catalog discover` is left.")
def catalog_check(file: Path, strict: bool) -> None:
    """Validate FILE; print every error as file:line: field: message and exit 1 if any.

    Values marked `# placeholder:` (what `gpuops catalog discover` could not know: budgets, SLOs, prices) are
    listed the same way, as warnings; with --strict they fail the check."""
    from console.catalog import CatalogError, load_catalog
    from console.catalog.load import placeholders

    try:
        c = load_catalog(file)
    except CatalogError as e:
        for issue in e.issues:
            click.echo(str(issue), err=True)
        click.echo(f"{file}: {len(e.issues)} error(s)", err=True)
        sys.exit(1)
    left = placeholders(file)
    for issue in left:
        click.echo(f"{issue}", err=True)
    if left and strict:
        click.echo(f"{file}: {len(left)} placeholder(s) left", err=True)
        sys.exit(1)
    click.echo(f"{file}: ok — {_summary(c)}" + (f"; {len(left)} placeholders to replace" if left else ""))


def _summary(c: Catalog) -> str:
    gpus = sum(c.gpus_per_pool().values())
    return (
        f"{len(c.regions)} regions, {len(c.pools)} pools ({gpus} GPUs), {len(c.teams)} teams, "
        f"{len(c.services)} services, {len(c.jobs)} jobs, {len(c.events)} events"
    )


@catalog.command("discover")
@kubeconfig_option
@context_option
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write the draft here (default: stdout)."
)
@click.option("--force", is_flag=True, help="Replace --output if it exists.")
def catalog_discover(kubeconfig: str | None, context: str | None, output: Path | None, force: bool) -> None:
    """Draft a catalog from a cluster: regions, pools (by the node group label it uses: GKE, EKS, Karpenter or
    gpuops.io/pool; GPU model and count from GPU feature discovery and the nodes' allocatable; MIG profiles),
    teams from namespaces and their ResourceQuotas, services from the Deployments that request GPUs, batch Jobs.

    \b
    Guessed values carry a `# guessed:` comment; what a cluster cannot know (budgets, SLOs, prices, the cost of
    a request) is a `# placeholder:` that `gpuops catalog check` lists by line (and --strict refuses).
    Reads only: nodes, namespaces, resource quotas, deployments, jobs and HPAs."""
    from console.catalog import CatalogError
    from console.catalog.load import parse_catalog

    if output and output.exists() and not force:
        click.echo(f"error: {output} exists; --force replaces it", err=True)
        sys.exit(2)
    text = draft_from_cluster(kubeconfig, context)
    name = str(output or "<draft>")
    try:
        c = parse_catalog(text, name)
    except CatalogError as e:  # a cluster the draft cannot describe whole: written still, to be edited
        for issue in e.issues:
            click.echo(str(issue), err=True)
        c = None
    if output:
        from console.atomic import write_atomic

        write_atomic(output, text, 0o644)
    else:
        click.echo(text, nl=False)
    marks = text.count("# placeholder:")
    if c is None:
        click.echo(f"{name}: drafted with errors (above); fix them, then gpuops catalog check {name}", err=True)
        sys.exit(1)
    click.echo(f"{name}: {_summary(c)}; {marks} placeholders to replace (gpuops catalog check lists them)", err=True)


def draft_from_cluster(kubeconfig: str | None, context: str | None) -> str:
    """The catalog `discover` drafts from the context's cluster (reads only), each read shown on stderr;
    exit 2 naming the context and the kind when a read fails."""
    from console.discover import Objects, draft
    from console.sources.kube import KubeObjects

    ctx = context_or_exit(kubeconfig, context)
    kube = KubeObjects(kubeconfig, ctx)
    lists: dict[str, list[dict[str, Any]]] = {}
    try:
        for kind in ("node", "namespace", "resourcequota", "deployment", "job", "hpa"):
            click.echo(f"reading {kind}s from {ctx} …", err=True)
            lists[kind] = kube.list(kind)
    except Exception as e:
        click.echo(f"error: {ctx}: cannot list {kind}s: {e}", err=True)
        sys.exit(2)
    finally:
        kube.close()
    objs = Objects(
        lists["node"], lists["namespace"], lists["resourcequota"], lists["deployment"], lists["job"], lists["hpa"]
    )
    return draft(ctx, objs)
