"""`gpuops twin`: the simulated fleet alone."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from console.cli.options import DEFAULT_CATALOG, START_FORMATS, duration_seconds, fleet_catalog_or_exit, history_option

if TYPE_CHECKING:
    from console.twin.history_cache import HistoryCache
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
@click.option(
    "--deny-in",
    nargs=2,
    multiple=True,
    metavar="CLUSTER 'VERB RESOURCE [NS]'",
    help="As --deny, in one cluster only (with --clusters), e.g. --deny-in us-east 'patch configmaps llm'.",
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
    help="The job name of the Prometheus scrape that reads this twin (the history's series carry it, as the "
    "live scrapes will).",
)
@click.option(
    "--history-instance",
    metavar="NAME",
    help="The instance label the scrape gives this twin's series (its static_configs labels); default its "
    "host:port, Prometheus' own default. A fixed name lets --history-cache continue a kept history.",
)
@click.option(
    "--history-blocks",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the history's TSDB blocks go: a Prometheus data folder, before that Prometheus starts.",
)
@click.option(
    "--history-catalog",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the catalog with the history's past events added here (atomically): what the console reads, so "
    "that readiness knows the past event it learns the uplift from.",
)
@click.option(
    "--history-cache",
    type=click.Path(file_okay=False, path_type=Path),
    help="Keep the history here, by a hash of the catalog and these options, and continue it on a later start "
    "whose clock runs on from its end (not with --start): only the time since is stepped.",
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
@click.option(
    "--clusters",
    "layout",
    type=click.Choice(["one", "per-region", "catalog"]),
    default="one",
    show_default=True,
    help="How the fleet is split into Kubernetes clusters: one API for the whole fleet; one cluster per region "
    "(named after it); or the catalog's clusters (each region in exactly one). Each cluster has its own API and "
    "/metrics on a port of its own (--port is the first's, the others free ones: the kubeconfig has one context per "
    "cluster, each with its server), the clock is "
    "shared, a global load balancer routes traffic across them, and a `cluster_down` fault takes one away.",
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
    deny_in: tuple[tuple[str, str], ...],
    host: str,
    port: int,
    kubeconfig: Path | None,
    history: float,
    history_step: float,
    history_blocks: Path | None,
    history_job: str,
    history_instance: str | None,
    history_catalog: Path | None,
    history_cache: Path | None,
    convention: str,
    ksm_node_labels: str,
    layout: str,
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
    from datetime import UTC, timedelta

    from console.twin.history import target_labels
    from console.twin.server import TwinServer

    if speed < 0:
        raise click.BadParameter("must be >= 0", param_hint="--speed")
    _check_deny(deny, deny_in, layout)
    start = start_at.replace(tzinfo=start_at.tzinfo or UTC) if start_at else None
    history_s, step_s = _history_options(history, history_step, history_blocks, fleet, speed, layout)
    live_from = start or datetime.now(UTC)
    if history_s:
        start = live_from - timedelta(seconds=history_s)  # built where the history starts, then stepped on
    kwargs = {"speed": speed, "start": start, "warmup_s": warmup, "deny": deny, "labels": convention,
              "ksm_node_labels": _allowlist(ksm_node_labels)}  # fmt: skip
    if layout != "one":
        _serve_clusters(catalog_path, layout, kwargs, host, port, kubeconfig, verbose, deny_in)
        return
    sim = _build(catalog_path, fleet, replay_at, kwargs)
    server = TwinServer(sim, host=host, port=port, verbose=verbose)  # bound (its port known), not yet serving
    if history_s and history_blocks:
        target = target_labels(history_job, history_instance or f"{host}:{server.server_port}")
        options = [history_s, step_s, speed, warmup, deny, convention, ksm_node_labels, target]
        cache = _history_cache(history_cache, catalog_path, options) if history_cache else None
        sim = _write_history(sim, live_from, step_s, history_blocks, target, history_s, start_at is not None, cache)
        server.use(sim)
        if history_catalog:
            _write_catalog(sim, history_catalog)
    if kubeconfig:
        from console.twin.kubeconfig import write_kubeconfig

        write_kubeconfig(kubeconfig, {c.context: server.url for c in sim.catalog.clusters})
    server.start()
    gpus = sum(len(n.gpus) for n in sim.nodes.values())
    click.echo(
        f"twin: {server.url} — {len(sim.nodes)} nodes, {gpus} GPUs, speed {speed:g}x"
        + (f", kubeconfig {kubeconfig}" if kubeconfig else ""),
        err=True,
    )
    _wait_for_signal()
    server.stop()


def _check_deny(deny: tuple[str, ...], deny_in: tuple[tuple[str, str], ...], layout: str) -> None:
    """Every deny rule parses, and one for a single cluster comes with clusters (their names are checked once
    the catalog is split)."""
    from console.twin.kubeapi import DenyRule

    for hint, rule in [*(("--deny", r) for r in deny), *(("--deny-in", r) for _, r in deny_in)]:
        try:
            DenyRule.parse(rule)
        except ValueError as e:
            raise click.BadParameter(str(e), param_hint=hint) from None
    if deny_in and layout == "one":
        raise click.UsageError("--deny-in names a cluster: it needs --clusters per-region or --clusters catalog")


def _wait_for_signal() -> None:
    import signal
    import threading

    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: done.set())
    done.wait()


def _serve_clusters(
    catalog_path: Path,
    layout: str,
    kwargs: dict[str, Any],
    host: str,
    port: int,
    kubeconfig: Path | None,
    verbose: bool,
    deny_in: tuple[tuple[str, str], ...] = (),
) -> None:
    """Each cluster's twin on its own port, one clock, one router; a line per cluster; stop on a signal.
    `deny_in`: (cluster, rule) pairs, each cluster's deny list beyond the fleet's."""
    from datetime import UTC

    from console.catalog.clusters import per_region
    from console.twin.clusters import ClusterSet, Router, split_clusters
    from console.twin.model import SimClock
    from console.twin.server import TwinServer
    from console.twin.sim import Twin as CatalogTwin

    catalog = fleet_catalog_or_exit(catalog_path)
    try:
        parts = split_clusters(catalog, per_region(catalog) if layout == "per-region" else list(catalog.clusters))
    except ValueError as e:
        click.echo(f"gpuops twin: --clusters {layout}: {e}", err=True)
        sys.exit(1)
    unknown = sorted({c for c, _ in deny_in} - {c.name for c, _ in parts})
    if unknown:
        names = ", ".join(c.name for c, _ in parts)
        click.echo(f"gpuops twin: --deny-in: no cluster {', '.join(map(repr, unknown))} (clusters: {names})", err=True)
        sys.exit(1)
    clock = SimClock(kwargs.pop("start") or datetime.now(UTC), kwargs.pop("speed"))
    router = Router()
    fleet_deny = list(kwargs.pop("deny"))
    twins = {
        c.name: CatalogTwin(
            cat, clock=clock, router=router, deny=[*fleet_deny, *(r for n, r in deny_in if n == c.name)], **kwargs
        )
        for c, cat in parts
    }
    clusters = ClusterSet(twins)
    servers = {
        c.name: TwinServer(twins[c.name], host, 0 if i else port, verbose, clusters) for i, (c, _) in enumerate(parts)
    }
    if kubeconfig:
        from console.twin.kubeconfig import write_kubeconfig

        write_kubeconfig(kubeconfig, {c.context: servers[c.name].url for c, _ in parts})
    for s in servers.values():
        s.start()
    for c, _ in parts:
        t = twins[c.name]
        gpus = sum(len(n.gpus) for n in t.nodes.values())
        click.echo(
            f"twin: cluster {c.name} ({', '.join(c.regions)}) {servers[c.name].url} — {len(t.nodes)} nodes, "
            f"{gpus} GPUs",
            err=True,
        )
    click.echo(
        f"twin: {len(parts)} clusters, speed {clock.speed:g}x" + (f", kubeconfig {kubeconfig}" if kubeconfig else ""),
        err=True,
    )
    _wait_for_signal()
    for s in servers.values():
        s.stop()


def _build(catalog_path: Path, fleet: Path | None, replay_at: float, kwargs: dict[str, Any]) -> Twin:
    """The catalog's twin, or the Alibaba trace's with `fleet`; a bad file is one line, exit 1."""
    try:
        if fleet:
            from console.twin.alibaba import TraceTwin

            return TraceTwin(fleet, replay_at=replay_at, **kwargs)
        from console.twin.sim import Twin as CatalogTwin

        return CatalogTwin(fleet_catalog_or_exit(catalog_path), **kwargs)
    except (ValueError, OSError) as e:
        click.echo(f"gpuops twin: {e}", err=True)
        sys.exit(1)


def _allowlist(labels: str) -> list[str] | None:
    """--ksm-node-labels as a list; None for every label ('*')."""
    return None if labels.strip() == "*" else [x.strip() for x in labels.split(",") if x.strip()]


def _history_options(
    history_s: float, step_s: float, blocks: Path | None, fleet: Path | None, speed: float, layout: str
) -> tuple[float, float]:
    if layout != "one" and (history_s or fleet):
        raise click.BadParameter("several clusters run live only: no --history, no --fleet", param_hint="--clusters")
    if not history_s:
        return 0.0, step_s
    if fleet:
        raise click.BadParameter("a replayed trace's history is the trace itself", param_hint="--history")
    if speed <= 0:
        raise click.BadParameter("a history needs a running clock (--speed > 0)", param_hint="--history")
    if not blocks:
        raise click.BadParameter("--history needs --history-blocks (where the TSDB blocks go)")
    return history_s, step_s


def _history_cache(folder: Path, catalog_path: Path, options: list[object]) -> HistoryCache:
    """The cache folder's entry for this catalog (its bytes), these options and this version of gpuops."""
    from console import __version__
    from console.twin.history_cache import HistoryCache, cache_key

    return HistoryCache(folder, cache_key(catalog_path.read_bytes(), repr([__version__, *options])))


def _write_history(
    sim: Twin,
    end: datetime,
    step_s: float,
    blocks: Path,
    target: tuple[tuple[str, str], ...],
    history_s: float,
    pinned: bool,
    cache: HistoryCache | None,
) -> Twin:
    """The fleet's past into `blocks` (from `cache` when it runs on to this start); the twin, live from its end.
    Each failure is one line, exit 1."""
    from console.procs.backfill import BackfillError
    from console.procs.history import make_history
    from console.procs.process import ServerError

    say = lambda line: click.echo(line, err=True)  # noqa: E731
    try:
        made = make_history(sim, end, step_s, blocks, target, history_s=history_s, pinned=pinned, cache=cache, say=say)
    except (ValueError, OSError, BackfillError, ServerError) as e:
        click.echo(f"gpuops twin: history: {e}", err=True)
        sys.exit(1)
    w = made.written
    made.twin.resume_after_history(w.end, w.wall_end, made.since)
    events = ", ".join(f"{e.name} {e.start:%Y-%m-%d %H:%M}" for e in made.twin.past_events) or "none"
    kept = f"{made.reused} kept, " if made.reused else ""
    say(
        f"history: {made.since:%Y-%m-%d %H:%M} to {w.end:%Y-%m-%d %H:%M} UTC, {w.series} series, "
        f"{w.samples} samples written, {made.blocks} blocks ({kept}{made.size / 1e6:.1f} MB), {made.seconds:.1f} s; "
        f"past events: {events}" + (f"; cache not used: {made.cache_note}" if made.cache_note else "")
    )
    return made.twin


def _write_catalog(sim: Twin, path: Path) -> None:
    """The twin's catalog with the past events only its history holds, for the console to read."""
    from console.atomic import write_atomic
    from console.catalog.load import dump_catalog

    cat = sim.catalog.model_copy(update={"events": [*sim.catalog.events, *sim.past_events]})
    write_atomic(path, dump_catalog(cat, "Written by `gpuops twin --history-catalog`: the catalog it ran, with the "
                                         "past events its history holds."))  # fmt: skip
