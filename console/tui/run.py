"""Start the console: wire the sources, then run the app."""

from __future__ import annotations

from console.catalog.model import Catalog
from console.tui.app import GpuopsApp
from console.wiring import connect


def run_console(
    catalog: Catalog,
    *,
    prom_url: str,
    am_url: str | None,
    kubeconfig: str | None,
    context: str | None,
    interval: float,
    readonly: bool,
) -> None:
    conn = connect(catalog, prom_url, kubeconfig, context, am_url)
    ctx_ro = any(c.readonly for c in catalog.clusters if c.context == conn.context)
    try:
        GpuopsApp(conn.builder.build, conn.context, interval=interval, readonly=readonly or ctx_ro).run()
    finally:
        conn.close()
