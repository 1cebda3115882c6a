"""Connect a catalog to its sources: the one place that builds the clients the console refreshes from."""

from __future__ import annotations

from dataclasses import dataclass

from console.catalog.model import Catalog
from console.fleet.build import SnapshotBuilder


@dataclass
class Connections:
    builder: SnapshotBuilder
    context: str
    prom_url: str
    am_url: str | None

    def close(self) -> None:
        self.builder.close()


def connect(
    catalog: Catalog, prom_url: str, kubeconfig: str | None, context: str | None, am_url: str | None = None
) -> Connections:
    from console.sources.prometheus import PrometheusSource

    kube = None
    ctx = context or "(none)"
    if kubeconfig:
        from console.sources.kube import KubeSource, contexts

        names, current = contexts(kubeconfig)
        ctx = context or current or names[0]
        kube = KubeSource(kubeconfig, ctx)
    return Connections(SnapshotBuilder(catalog, PrometheusSource(prom_url), kube), ctx, prom_url, am_url)
