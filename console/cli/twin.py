"""`gpuops twin`: the simulated fleet alone."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from console.cli.options import DEFAULT_CATALOG, START_FORMATS, fleet_catalog_or_exit

if TYPE_CHECKING:
    from console.twin.sim import Twin


@click.command()
@click.option(
    "--catalog",
    "catalog_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_CATALOG,
    show_default=True,
    help="The fleet to simulate.",
)
@click.option(
    "--fleet",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="Load the Alibaba GPU cluster trace from this folder instead of the catalog's pools.",
)
@click.option(
    "--replay-at",
    type=float,
    default=0.0,
    show_default=True,
    help="With --fleet: start the replay this many seconds into the trace.",
)
@click.option(
    "--speed",
    type=float,
    default=1.0,
    show_default=True,
    help="Simulated seconds per wall second (0 pauses the clock).",
)
@click.option(
    "--start",
    "start_at",
    type=click.DateTime(START_FORMATS),
    help="Simulated start time (UTC if no offset); default now.",
)
@click.option(
    "--warmup", type=float, default=90.0, show_default=True, help="Simulated seconds before a new replica serves."
)
@click.option(
    "--deny",
    multiple=True,
    metavar="'VERB RESOURCE [NS]'",
    help="Refuse this action in access reviews and requests, e.g. 'patch deployments/scale llm'.",
)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=0, help="Port to listen on (default: a free one, printed).")
@click.option(
    "--kubeconfig",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write a kubeconfig for the twin here (atomically).",
)
@click.option("-v", "--verbose", is_flag=True, help="Log every request.")
def twin(
    catalog_path: Path,
    fleet: Path | None,
    replay_at: float,
    speed: float,
    start_at: datetime | None,
    warmup: float,
    deny: tuple[str, ...],
    host: str,
    port: int,
    kubeconfig: Path | None,
    verbose: bool,
) -> None:
    """Run the fleet twin: a Kubernetes API, /metrics in the exporters' names, and /twin/ faults.

    \b
    Endpoints:
      /api, /apis, /version   Kubernetes API (kubectl and the official client)
      /metrics                dcgm-exporter, kube-state-metrics, OpenCost, services
      /twin/faults            GET, POST {kind, target, duration_s}, DELETE /twin/faults/ID
      /twin/clock             GET, POST {speed} or {advance_s}
    """
    import signal
    import threading
    from datetime import UTC

    from console.twin.server import TwinServer

    if speed < 0:
        raise click.BadParameter("must be >= 0", param_hint="--speed")
    start = start_at.replace(tzinfo=start_at.tzinfo or UTC) if start_at else None
    try:
        sim: Twin
        if fleet:
            from console.twin.alibaba import TraceTwin

            sim = TraceTwin(fleet, replay_at=replay_at, speed=speed, start=start, warmup_s=warmup, deny=deny)
        else:
            from console.twin.sim import Twin as CatalogTwin

            cat = fleet_catalog_or_exit(catalog_path)
            sim = CatalogTwin(cat, speed=speed, start=start, warmup_s=warmup, deny=deny)
    except (ValueError, OSError) as e:
        click.echo(f"gpuops twin: {e}", err=True)
        sys.exit(1)
    server = TwinServer(sim, host=host, port=port, verbose=verbose)
    if kubeconfig:
        from console.twin.kubeconfig import write_kubeconfig

        write_kubeconfig(kubeconfig, server.url, [c.context for c in sim.catalog.clusters])
    server.start()
    gpus = sum(len(n.gpus) for n in sim.nodes.values())
    click.echo(
        f"twin: {server.url} — {len(sim.nodes)} nodes, {gpus} GPUs, speed {speed:g}x"
        + (f", kubeconfig {kubeconfig}" if kubeconfig else ""),
        err=True,
    )
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    done.wait()
    server.stop()
