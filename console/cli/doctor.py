"""`gpuops doctor`: the first command on a real cluster."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from console.cli.options import (
    alertmanager_option,
    catalog_option,
    catalog_or_exit,
    context_option,
    kubeconfig_option,
    prometheus_option,
    with_options,
)

if TYPE_CHECKING:
    from console.catalog.model import Cluster
    from console.doctor import Check, ClusterSources

MARKS = {"ok": "ok  ", "miss": "MISS", "unreachable": "DOWN"}


@click.command()
@catalog_option
@with_options(
    prometheus_option(
        required=False,
        help="Prometheus base URL (the one the console and the rules use); not with a catalog of clusters, "
        "whose own are checked.",
    ),
    alertmanager_option,
    kubeconfig_option,
    context_option,
)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def doctor(
    catalog_path: Path,
    prom_url: str | None,
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

    \b
    A catalog that reads its clusters one by one (a global: view, or clusters with their own prometheus:) is
    checked as the console reads it, instead of --prometheus and --context: the global view (with each
    cluster's series under its cluster label, and the rules), then each cluster's own Prometheus (the rules
    there when there is no global view), its context in the kubeconfig (the pools of its regions, the
    access) and its own Alertmanager. Each line names the cluster it was checked in.

    Exits 0 when all is well, 1 with misses, 2 when a source cannot be reached.
    """
    from console.doctor import run
    from console.sources.alertmanager import AlertmanagerSource
    from console.sources.kube import KubeObjects
    from console.sources.prometheus import PrometheusSource

    cat = catalog_or_exit(catalog_path)  # a catalog that does not load: exit 2, nothing checked
    per_cluster = bool(cat.read_clusters())
    am = AlertmanagerSource(am_url) if am_url else None
    prom = kube = glob = None
    clusters: list[ClusterSources] = []
    if per_cluster:
        glob = PrometheusSource(cat.global_view.prometheus, timeout_s=10) if cat.global_view else None
        clusters = [_cluster_sources(c, kubeconfig) for c in cat.clusters]
    else:
        if not prom_url:
            raise click.UsageError("Missing option '--prometheus' (the catalog reads no cluster's own Prometheus)")
        prom = PrometheusSource(prom_url, timeout_s=10)
        try:
            kube = KubeObjects(kubeconfig, context)
        except Exception as e:  # no kubeconfig, no such context: the Kubernetes checks cannot run
            click.echo(f"gpuops doctor: Kubernetes: {type(e).__name__}: {e}", err=True)

    def show(c: Check) -> None:
        if fmt == "table":
            where = f"[{c.cluster}] " if c.cluster else ""
            click.echo(f"{MARKS[c.verdict]}  {c.area:<12} {where}{c.name}: {c.detail}")
            if c.fix:
                click.echo(f"{'':18}fix: {c.fix}")

    try:
        report = run(cat, prom, kube, am, on_check=show, global_prom=glob, clusters=clusters)
    finally:
        for k in [kube, *(c.kube for c in clusters)]:
            if k is not None:
                k.close()
        for a in [am, *(c.am for c in clusters)]:
            if a is not None:
                a.close()
    if kube is None and not per_cluster:
        report.unreachable.append("Kubernetes: no kubeconfig or context")
    if fmt == "json":
        click.echo(json.dumps(report.as_json(), indent=2))
    else:
        misses = sum(c.verdict == "miss" for c in report.checks)
        click.echo(f"{len(report.checks)} checks, {misses} missing, {len(report.unreachable)} unreachable")
    sys.exit(report.exit_code)


def _cluster_sources(cluster: Cluster, kubeconfig: str | None) -> ClusterSources:
    """A catalog cluster's own sources; its context is looked up in the kubeconfig, and a missing one is said."""
    from console.doctor import ClusterSources
    from console.sources.alertmanager import AlertmanagerSource
    from console.sources.kube import KubeObjects
    from console.sources.prometheus import PrometheusSource

    kube, why = None, ""
    try:
        kube = KubeObjects(kubeconfig, cluster.context)
    except Exception as e:  # no kubeconfig, or no such context in it
        why = f"Kubernetes (context {cluster.context}): {type(e).__name__}: {e}"
    return ClusterSources(
        cluster.name,
        tuple(cluster.regions),
        PrometheusSource(cluster.prometheus, timeout_s=10) if cluster.prometheus else None,
        kube,
        AlertmanagerSource(cluster.alertmanager) if cluster.alertmanager else None,
        why,
    )
