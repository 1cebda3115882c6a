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
from console.procs.process import ServerError
from console.procs.stack import running_stack


def run_demo(
    catalog: Catalog,
    catalog_path: Path,
    *,
    speed: float,
    scrape_interval: float,
    keep: Path | None,
    no_console: bool,
    twin_args: tuple[str, ...] = (),
) -> int:
    workdir = keep.resolve() if keep else Path(tempfile.mkdtemp(prefix="gpuops-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    # A closed terminal (SIGHUP) or a kill (SIGTERM) stops the children as Ctrl+C does.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _interrupt)
    with ExitStack() as stack:
        if not keep:
            stack.callback(shutil.rmtree, workdir, ignore_errors=True)
        try:
            running = stack.enter_context(
                running_stack(
                    catalog,
                    catalog_path,
                    workdir,
                    speed=speed,
                    scrape_interval_s=scrape_interval,
                    twin_args=twin_args,
                    say=lambda line: click.echo(line, err=True),
                )
            )
        except ServerError as e:
            click.echo(f"gpuops demo: {e}", err=True)
            return 1
        prom_url, am_url, kubeconfig = running.prom_url, running.am_url, running.kubeconfig
        click.echo(
            f"twin          {running.twin_url}\nprometheus    {prom_url}\nalertmanager  {am_url}\n"
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
    return 0


def _interrupt(*_: object) -> None:
    """Raise KeyboardInterrupt so every exit path runs the same cleanup."""
    raise KeyboardInterrupt
