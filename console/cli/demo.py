"""`gpuops demo`: the twin, a real Prometheus and Alertmanager, a kubeconfig, and the console.

Everything it starts is stopped on exit, Ctrl+C included; the working folder is removed unless kept.
"""

from __future__ import annotations

import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from console.cli.options import (
    START_FORMATS,
    catalog_option,
    fleet_catalog_or_exit,
    history_cache_option,
    history_option,
)

if TYPE_CHECKING:  # imported when a command runs: `gpuops --help` loads no HTTP client
    from console.catalog.model import Catalog
    from console.procs.clusters import RunningClusters
    from console.procs.stack import RunningStack


def run_demo(
    catalog: Catalog,
    catalog_path: Path,
    *,
    speed: float,
    scrape_interval: float,
    keep: Path | None,
    no_console: bool,
    twin_args: tuple[str, ...] = (),
    history_s: float = 0.0,
    history_cache: Path | None = None,
) -> int:
    from console.procs.process import ServerError
    from console.procs.recorded import RECORDED_S
    from console.timefmt import age

    with ExitStack() as stack:
        workdir = _workdir(stack, keep)
        try:
            running = stack.enter_context(
                stack_with_rules(
                    catalog,
                    catalog_path,
                    workdir,
                    speed=speed,
                    scrape_interval_s=scrape_interval,
                    twin_args=twin_args,
                    history_s=history_s,
                    history_cache=history_cache,
                    recorded_s=RECORDED_S,
                    say=lambda line: click.echo(line, err=True),
                )
            )
        except ServerError as e:
            click.echo(f"gpuops demo: {e}", err=True)
            return 1
        prom_url, am_url, kubeconfig = running.prom_url, running.am_url, running.kubeconfig
        # With a history, the twin's copy of the catalog holds its past event: the console reads that one.
        copy = running.catalog_path if running.catalog_path not in (None, catalog_path) else None
        click.echo(
            f"twin          {running.twin_url}\nprometheus    {prom_url}\nalertmanager  {am_url}\n"
            f"relay         {running.relay_url} (Feishu cards: {workdir / 'feishu.jsonl'}; Slack, PagerDuty: "
            f"{workdir / 'sink.jsonl'})\n"
            f"kubeconfig    {kubeconfig}\n"
            + (f"catalog       {copy} (with the history's past event: `gpuops readiness` reads it)\n" if copy else "")
            + (
                f"recorded      the rules' series over the history's last {age(RECORDED_S)}, backfilled in the "
                f"background: {running.recorded_log}\n"
                if running.recorded_log
                else ""
            )
            + f"working dir   {workdir} ({'kept' if keep else 'removed on exit'})",
            err=True,
        )
        try:
            if no_console:
                click.echo("servers running; Ctrl+C stops them", err=True)
                while not (gone := running.exited()):
                    time.sleep(1.0)
                # One server dead leaves a demo that only looks up: say which, stop the rest, exit non-zero.
                click.echo(f"gpuops demo: {gone}\nstopping the others", err=True)
                return 1
            else:
                from console.wiring import connect

                if copy:
                    catalog = fleet_catalog_or_exit(copy)

                conn = connect(
                    catalog, prom_url, str(kubeconfig), None, am_url, prefetch=True, relay_url=running.relay_url
                )
                from console.tui.run import run_console

                run_console(conn)
        except KeyboardInterrupt:
            pass
    return 0


def stack_with_rules(
    catalog: Catalog,
    catalog_path: Path,
    workdir: Path,
    *,
    speed: float,
    scrape_interval_s: float,
    twin_args: tuple[str, ...],
    say: Callable[[str], None],
    history_s: float = 0.0,
    history_cache: Path | None = None,
    recorded_s: float = 0.0,
) -> AbstractContextManager[RunningStack]:
    """`running_stack` with the catalog's rules built fresh, each alert's `for` divided by `speed` so that on a
    fast clock an alert waits the simulated time it would on a real fleet; and the catalog's Alertmanager
    routing, delivering through `gpuops relay` to files in `workdir` (see `console.procs.relay`). `recorded_s`: how
    much of a history's end the rules' recorded series are backfilled over (`console.procs.recorded`)."""
    from console.codegen.mixin import alertmanager_config, build_rules
    from console.procs.ports import free_port
    from console.procs.relay import deliver_locally, local_secrets, relay
    from console.procs.stack import running_stack
    from console.relay.targets import feishu_groups

    built = build_rules(catalog, workdir / "rules", speed=max(speed, 1.0))
    port = free_port()
    relay_url = f"http://127.0.0.1:{port}"
    secrets_dir = local_secrets(workdir, list(feishu_groups(catalog)))
    # A notification within seconds of its alert, as an on-call would want to see in a demo.
    alerting = catalog.alerting.model_copy(
        update={"secrets_dir": str(secrets_dir), "relay_url": relay_url, "group_wait": "5s", "group_interval": "30s"}
    )
    routing = deliver_locally(alertmanager_config(catalog.model_copy(update={"alerting": alerting})), relay_url)
    return running_stack(
        catalog_path, workdir, speed=speed, scrape_interval_s=scrape_interval_s,
        rule_files=(built.rules, built.alerts), twin_args=twin_args, history_s=history_s, history_cache=history_cache,
        recorded_s=recorded_s, am_config=routing, relay=relay(workdir, catalog_path, secrets_dir, port), say=say,
    )  # fmt: skip


def clusters_with_rules(
    catalog: Catalog,
    catalog_path: Path,
    workdir: Path,
    *,
    speed: float,
    scrape_interval_s: float,
    twin_args: tuple[str, ...] = (),
    say: Callable[[str], None],
) -> AbstractContextManager[RunningClusters]:
    """`running_clusters` with a cluster per region and a global view that holds the records alone: each
    cluster's Prometheus evaluates the catalog's rules built fresh (each alert's `for` divided by `speed`) and
    sends the global view its records, `up` and the few raw series the refresh joins; the global view evaluates
    ClusterDown. Every alert goes to one Alertmanager (a null receiver: the console and drills read its API)."""
    from console.catalog.clusters import per_region
    from console.codegen.mixin import build_rules, split_for_global
    from console.fleet.queries import records_only_keep
    from console.procs.clusters import running_clusters

    split = split_for_global(build_rules(catalog, workdir / "rules", speed=max(speed, 1.0)))
    names = [c.name for c in per_region(catalog)]
    return running_clusters(
        catalog_path, workdir, speed=speed, scrape_interval_s=scrape_interval_s, twin_args=twin_args,
        rule_files=split.global_view, cluster_rules=dict.fromkeys(names, split.cluster), am_config={}, say=say,
        forward=records_only_keep(),
    )  # fmt: skip


def run_clusters_demo(catalog: Catalog, catalog_path: Path, *, speed: float, scrape_interval: float,
                      keep: Path | None, no_console: bool) -> int:  # fmt: skip
    """The twin's clusters (one per region), a Prometheus each running the rules, the global view holding their
    records, every alert going to Alertmanager, and the console reading them cluster by cluster (`:ctx all`,
    `:ctx NAME`)."""
    from console.procs.process import ServerError

    with ExitStack() as stack:
        workdir = _workdir(stack, keep)
        try:
            running = stack.enter_context(
                clusters_with_rules(catalog, catalog_path, workdir, speed=speed, scrape_interval_s=scrape_interval,
                                    say=lambda line: click.echo(line, err=True))
            )  # fmt: skip
        except ServerError as e:
            click.echo(f"gpuops demo: {e}", err=True)
            return 1
        lines = [f"cluster {n:<13} API {running.twin[n]}  prometheus {running.prometheus[n]}" for n in running.twin]
        click.echo(
            "\n".join(lines)
            + f"\nglobal view   {running.global_url} (each cluster's records; ClusterDown evaluates here)"
            f"\nalertmanager  {running.am_url} (every cluster's alerts and the global view's)"
            f"\nkubeconfig    {running.kubeconfig}\ncatalog       {running.catalog_path}"
            f"\nworking dir   {workdir} ({'kept' if keep else 'removed on exit'})",
            err=True,
        )
        try:
            if no_console:
                click.echo("servers running; Ctrl+C stops them", err=True)
                while all(s.running for s in running.servers):
                    time.sleep(1.0)
                click.echo("gpuops demo: a server exited; stopping the others", err=True)
                return 1
            from console.tui.run import run_console
            from console.wiring import connect

            conn = connect(
                fleet_catalog_or_exit(running.catalog_path),
                "",
                str(running.kubeconfig),
                None,
                running.am_url,
                prefetch=True,
            )
            run_console(conn)
        except KeyboardInterrupt:
            pass
    return 0


def _workdir(stack: ExitStack, keep: Path | None) -> Path:
    """The demo's working folder (`keep`, or a new one removed when `stack` closes); from here a closed terminal
    (SIGHUP) or a kill (SIGTERM) stops the children as Ctrl+C does."""
    workdir = keep.resolve() if keep else Path(tempfile.mkdtemp(prefix="gpuops-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    if not keep:
        stack.callback(shutil.rmtree, workdir, ignore_errors=True)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _interrupt)
    return workdir


def _interrupt(*_: object) -> None:
    """Raise KeyboardInterrupt so every exit path runs the same cleanup."""
    raise KeyboardInterrupt


@click.command()
@catalog_option
@click.option("--speed", type=float, default=1.0, show_default=True, help="The twin's clock speed.")
@click.option(
    "--scrape-interval",
    type=click.FloatRange(1, 5),
    default=2.0,
    show_default=True,
    help="Prometheus scrape and rule evaluation interval, seconds.",
)
@click.option(
    "--keep",
    type=click.Path(file_okay=False, path_type=Path),
    help="Keep the working folder (configs, logs, kubeconfig, TSDB) here instead of deleting it.",
)
@click.option("--no-console", is_flag=True, help="Start the servers, print their URLs, wait for Ctrl+C.")
@click.option(
    "--start",
    "start_at",
    type=click.DateTime(START_FORMATS),
    help="The twin's simulated start time (UTC if no offset), e.g. an hour before an event; default now.",
)
@history_option("21d")  # three of each weekday: the peak forecast calibrates at every lead
@history_cache_option
@click.option(
    "--clusters",
    "layout",
    type=click.Choice(["one", "per-region"]),
    default="one",
    show_default=True,
    help="per-region: a Kubernetes cluster per region with a Prometheus each (its `cluster` external label), a "
    "global view taking their remote writes, and the console over all of them (`:ctx all`, `:ctx NAME`). Live "
    "only: no history, no Alertmanager.",
)
def demo(
    catalog_path: Path,
    speed: float,
    scrape_interval: float,
    keep: Path | None,
    no_console: bool,
    start_at: datetime | None,
    history: float,
    history_cache: Path | None,
    layout: str,
) -> None:
    """Start the twin, a real Prometheus and Alertmanager, write a kubeconfig, open the console.

    Ctrl+C (or q in the console) stops every process it started; the working folder is deleted unless
    --keep names one.
    """

    cat = fleet_catalog_or_exit(catalog_path)
    if layout == "per-region":
        sys.exit(
            run_clusters_demo(
                cat, catalog_path, speed=speed, scrape_interval=scrape_interval, keep=keep, no_console=no_console
            )
        )
    sys.exit(
        run_demo(
            cat,
            catalog_path,
            speed=speed,
            scrape_interval=scrape_interval,
            keep=keep,
            no_console=no_console,
            twin_args=("--start", start_at.strftime("%Y-%m-%dT%H:%M:%S%z")) if start_at else (),
            history_s=history,
            history_cache=history_cache,
        )
    )
