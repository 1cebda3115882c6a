"""`gpuops doctor`: the first command on a real cluster."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from console.cli.options import catalog_option, catalog_or_exit, connection_options

if TYPE_CHECKING:
    from console.doctor import Check

MARKS = {"ok": "ok  ", "miss": "MISS", "unreachable": "DOWN"}


@click.command()
@catalog_option
@connection_options("Prometheus base URL (the one the console and the rules use).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def doctor(
    catalog_path: Path,
    prom_url: str,
    am_url: str | None,
    kubeconfig: str | None,
    context: str | None,
    fmt: str,
) -> None:
    """Check that a cluster and its monitoring give the console, the rules and the runbooks what they need,
    and print the exact fix for each miss (a flag, a Helm value, an RBAC rule, a catalog setting).

    \b
    Prometheus:    clock skew; dcgm-exporter series through the catalog's selector, with the pod that holds
                   each GPU; kube-state-metrics with the node labels the pools join on; OpenCost; the
                   gpuops recording and alerting rules loaded
    Kubernetes:    nodes labelled for every pool; an access review for each read the console makes and
                   each change a runbook makes, per team namespace
    Alertmanager:  API v2 reachable (with --alertmanager)

    Exits 0 when all is well, 1 with misses, 2 when a source cannot be reached.
    """
    from console.doctor import run
    from console.sources.alertmanager import AlertmanagerSource
    from console.sources.kube import KubeObjects
    from console.sources.prometheus import PrometheusSource

    cat = catalog_or_exit(catalog_path)  # a catalog that does not load: exit 2, nothing checked
    prom = PrometheusSource(prom_url, timeout_s=10)
    am = AlertmanagerSource(am_url) if am_url else None
    try:
        kube = KubeObjects(kubeconfig, context)
    except Exception as e:  # no kubeconfig, no such context: the Kubernetes checks cannot run
        click.echo(f"gpuops doctor: Kubernetes: {type(e).__name__}: {e}", err=True)
        kube = None

    def show(c: Check) -> None:
        if fmt == "table":
            click.echo(f"{MARKS[c.verdict]}  {c.area:<12} {c.name}: {c.detail}")
            if c.fix:
                click.echo(f"{'':18}fix: {c.fix}")

    try:
        report = run(cat, prom, kube, am, on_check=show)
    finally:
        if kube is not None:
            kube.close()
        if am is not None:
            am.close()
    if kube is None:
        report.unreachable.append("Kubernetes: no kubeconfig or context")
    if fmt == "json":
        click.echo(json.dumps(report.as_json(), indent=2))
    else:
        misses = sum(c.verdict == "miss" for c in report.checks)
        click.echo(f"{len(report.checks)} checks, {misses} missing, {len(report.unreachable)} unreachable")
    sys.exit(report.exit_code)
