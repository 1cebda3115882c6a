"""`gpuops demo`: the twin, a real Prometheus and Alertmanager, a kubeconfig, and the console.

Everything it starts is stopped on exit, Ctrl+C included; the working folder is removed unless kept.
"""

from __future__ import annotations

import shutil
import signal
import tempfile
from contextlib import ExitStack
from pathlib import Path

import click

from console.catalog.model import Catalog
from console.procs import alertmanager as am
from console.procs import prometheus as prom
from console.procs import twin as tw
from console.procs.ports import free_port
from console.procs.process import Server, ServerError


def run_demo(
    catalog: Catalog, catalog_path: Path, *, speed: float, scrape_interval: float, keep: Path | None, no_console: bool
) -> int:
    workdir = keep.resolve() if keep else Path(tempfile.mkdtemp(prefix="gpuops-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    kubeconfig = workdir / "kubeconfig.yaml"
    # A closed terminal (SIGHUP) or a kill (SIGTERM) stops the children as Ctrl+C does.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _interrupt)
    with ExitStack() as stack:
        if not keep:
            stack.callback(shutil.rmtree, workdir, ignore_errors=True)
        servers: list[Server] = []

        def start(server: Server, what: str) -> Server:
            click.echo(f"starting {what} …", err=True)
            stack.callback(server.stop)
            servers.append(server.start())
            return server

        try:
            twin_port = free_port()
            twin = start(
                tw.twin(
                    workdir,
                    "--catalog",
                    str(catalog_path.resolve()),
                    "--speed",
                    f"{speed:g}",
                    "--kubeconfig",
                    str(kubeconfig),
                    port=twin_port,
                ),
                "the fleet twin",
            )
            alert = start(am.alertmanager(workdir), "Alertmanager")
            am_url = alert.base_url
            # The rules of this catalog, built fresh: the demo's Prometheus evaluates what `gpuops build` makes.
            from console.codegen.mixin import build_rules

            built = build_rules(catalog, workdir / "rules")
            rules = [str(built.rules), str(built.alerts)]
            prometheus = start(
                prom.prometheus(
                    workdir,
                    f"127.0.0.1:{twin_port}",
                    scrape_interval_s=scrape_interval,
                    alertmanager=am_url.removeprefix("http://"),
                    rule_files=rules,
                ),
                "Prometheus",
            )
        except ServerError as e:
            click.echo(f"gpuops demo: {e}", err=True)
            return 1
        prom_url = prometheus.base_url
        click.echo(
            f"twin          {twin.base_url}\nprometheus    {prom_url}\nalertmanager  {am_url}\n"
            f"kubeconfig    {kubeconfig}\nworking dir   {workdir} ({'kept' if keep else 'removed on exit'})",
            err=True,
        )
        try:
            if no_console:
                click.echo("servers running; Ctrl+C stops them", err=True)
                signal.pause()
            else:
                from console.wiring import connect

                conn = connect(catalog, prom_url, str(kubeconfig), None, am_url, prefetch=True)
                from console.tui.run import run_console

                run_console(conn)
        except KeyboardInterrupt:
            pass
        finally:
            click.echo("stopping " + ", ".join(s.name for s in reversed(servers)) + " …", err=True)
    return 0


def _interrupt(*_: object) -> None:
    """Raise KeyboardInterrupt so every exit path runs the same cleanup."""
    raise KeyboardInterrupt
