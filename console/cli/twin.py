"""`gpuops twin`: the simulated fleet alone."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from console.cli.options import DEFAULT_CATALOG, START_FORMATS, duration_seconds, fleet_catalog_or_exit, history_option

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
@history_option("0")
@click.option(
    "--history-step",
    default="5m",
    show_default=True,
    metavar="DURATION",
    callback=duration_seconds,
    help="Time between the history's samples (at most 5m, Prometheus' lookback).",
)
@click.option(
    "--history-job",
    default="twin",
    show_default=True,
    help="The job name of the Prometheus scrape that reads this twin (the history's series carry it, and the "
    "instance host:port, as the live scrapes will).",
)
@click.option(
    "--history-blocks",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the history's TSDB blocks go: a Prometheus data folder, before that Prometheus starts.",
)
@click.option(
    "--labels",
    "convention",
    type=click.Choice(["gpuops", "gke", "eks", "karpenter"]),
    default="gpuops",
    show_default=True,
    help="How nodes are labelled: the pool in gpuops.io/pool, or as GKE (cloud.google.com/gke-nodepool), "
    "EKS (eks.amazonaws.com/nodegroup) or Karpenter (karpenter.sh/nodepool) name node groups, with GPU feature "
    "discovery's product names (NVIDIA-H100-80GB-HBM3). The catalog's node_labels.pool must name the same label.",
)
@click.option(
    "--ksm-node-labels",
    default="*",
    show_default=True,
    metavar="LABELS",
    help="The node labels kube-state-metrics exports in kube_node_labels, by commas, as its "
    "--metric-labels-allowlist=nodes=[...] says; '*' all of them, '' none (its default).",
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
    history: float,
    history_step: float,
    history_blocks: Path | None,
    history_job: str,
    convention: str,
    ksm_node_labels: str,
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
    from datetime import UTC, timedelta

    from console.twin.history import target_labels
    from console.twin.server import TwinServer

    if speed < 0:
        raise click.BadParameter("must be >= 0", param_hint="--speed")
    start = start_at.replace(tzinfo=start_at.tzinfo or UTC) if start_at else None
    history_s, step_s = _history_options(history, history_step, history_blocks, fleet, speed)
    live_from = start or datetime.now(UTC)
    if history_s:
        start = live_from - timedelta(seconds=history_s)  # built where the history starts, then stepped on
    allowed = None if ksm_node_labels.strip() == "*" else [x.strip() for x in ksm_node_labels.split(",") if x.strip()]
    try:
        sim: Twin
        if fleet:
            from console.twin.alibaba import TraceTwin

            sim = TraceTwin(
                fleet, replay_at=replay_at, speed=speed, start=start, warmup_s=warmup, deny=deny,
                labels=convention, ksm_node_labels=allowed,
            )  # fmt: skip
        else:
            from console.twin.sim import Twin as CatalogTwin

            cat = fleet_catalog_or_exit(catalog_path)
            sim = CatalogTwin(
                cat, speed=speed, start=start, warmup_s=warmup, deny=deny, labels=convention, ksm_node_labels=allowed
            )
    except (ValueError, OSError) as e:
        click.echo(f"gpuops twin: {e}", err=True)
        sys.exit(1)
    server = TwinServer(sim, host=host, port=port, verbose=verbose)  # bound (its port known), not yet serving
    if history_s and history_blocks:
        _write_history(
            sim, live_from, step_s, history_blocks, target_labels(history_job, f"{host}:{server.server_port}")
        )
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


def _history_options(
    history_s: float, step_s: float, blocks: Path | None, fleet: Path | None, speed: float
) -> tuple[float, float]:
    if not history_s:
        return 0.0, step_s
    if fleet:
        raise click.BadParameter("a replayed trace's history is the trace itself", param_hint="--history")
    if speed <= 0:
        raise click.BadParameter("a history needs a running clock (--speed > 0)", param_hint="--history")
    if not blocks:
        raise click.BadParameter("--history needs --history-blocks (where the TSDB blocks go)")
    return history_s, step_s


def _write_history(sim: Twin, end: datetime, step_s: float, blocks: Path, target: tuple[tuple[str, str], ...]) -> None:
    """The fleet's past into `blocks`, then the twin live from its end; each failure one line, exit 1."""
    import shutil
    import tempfile
    import time

    from console.procs.backfill import Backfill, BackfillError, size_bytes
    from console.procs.process import ServerError
    from console.twin.history import write_history

    blocks.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="gpuops-history-", dir=blocks.parent))
    wall_end = time.time()
    say = lambda line: click.echo(line, err=True)  # noqa: E731
    try:
        backfill = Backfill(blocks)
        written = write_history(
            sim, end, step_s, scratch, wall_end, target,
            progress=lambda k, n: say(f"history: step {k}/{n}"), on_file=backfill.submit,
        )  # fmt: skip
        made = backfill.wait()
    except (ValueError, OSError, BackfillError, ServerError) as e:
        click.echo(f"gpuops twin: history: {e}", err=True)
        sys.exit(1)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    sim.resume_after_history(end, wall_end, written.start)
    events = ", ".join(f"{e.name} {e.start:%Y-%m-%d %H:%M}" for e in written.past_events) or "none"
    say(
        f"history: {written.start:%Y-%m-%d %H:%M} to {written.end:%Y-%m-%d %H:%M} UTC, {written.series} series, "
        f"{written.samples} samples, {made} blocks, {size_bytes(blocks) / 1e6:.1f} MB, "
        f"{time.time() - wall_end:.1f} s; past events: {events}"
    )
