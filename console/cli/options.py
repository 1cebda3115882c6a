"""What several `gpuops` commands share: their common options, and the loaders that turn a bad file or an
unknown name into file:line: field: message on stderr and a non-zero exit. Only the command layer imports it."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from console.codegen.schema import DEFAULT_SCHEMA
from console.content import ALERTS, DASHBOARDS, RUNBOOKS, local_or_shipped

if TYPE_CHECKING:
    from console.catalog.model import Catalog
    from console.runbooks.journal import Journal
    from console.runbooks.model import Runbook
    from console.wiring import Connections

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_CATALOG = "fleet.yaml"
# A simulated start time on the command line (`twin --start`, `demo --start`): UTC unless an offset is given.
START_FORMATS = ["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S"]

catalog_option = click.option(
    "--catalog",
    "catalog_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_CATALOG,
    show_default=True,
    help="The fleet catalog.",
)


def content_option(name: str, what: str) -> Callable[[F], F]:
    """`--<name> DIR`: a folder of the content a team edits; by default ./<name>, else the copy gpuops ships
    (console/content.py), so a command works from an installed gpuops anywhere."""

    def default(_ctx: click.Context, _param: click.Parameter, value: Path | None) -> Path:
        return value if value is not None else local_or_shipped(name)

    return click.option(
        f"--{name}",
        f"{name}_dir",
        type=click.Path(file_okay=False, exists=True, path_type=Path),
        callback=default,
        help=f"{what} (default: ./{name}, else the ones gpuops ships).",
    )


runbooks_option = content_option(RUNBOOKS, "The runbook files")
dashboards_option = content_option(DASHBOARDS, "The dashboard files (*.py, each with build(catalog))")
alerts_option = content_option(
    ALERTS, "The monitoring mixin (mixin.libsonnet) and the Alertmanager template (alertmanager.libsonnet)"
)
schema_option = click.option(
    "--schema",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_SCHEMA,
    help="Grafana's dashboard JSON schema (default: the copy shipped with gpuops).",
)
drill_journal_option = click.option(
    "--drill-journal",
    "drill_journal_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The drill journal (default: $GPUOPS_DRILL_JOURNAL, else drills.jsonl beside the runbook journal).",
)
run_journal_option = click.option(
    "--journal",
    "journal_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The run journal (default: $GPUOPS_JOURNAL, else ~/.local/state/gpuops/journal.jsonl).",
)
out_option = click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("build"),
    show_default=True,
    help="Where the build goes.",
)
# How a command reaches a fleet: declared once, for every command that reads or acts on one.
kubeconfig_option = click.option(
    "--kubeconfig",
    type=click.Path(dir_okay=False, exists=True),
    help="The kubeconfig to reach the clusters through (nodes, HPAs, the twin's clock; runbooks act through it).",
)
context_option = click.option(
    "--context", help="Kubeconfig context (default: the current one); `twin` reads the twin's simulated clock."
)
operator_option = click.option(
    "--operator", help="Your name in the journals, on leases and as a silence's createdBy (default: your login)."
)
alertmanager_option = click.option(
    "--alertmanager",
    "am_url",
    help="Alertmanager base URL (alerts, silences); each cluster's own, where the catalog names one, is read too.",
)


def prometheus_option(required: bool = True, help: str = "Prometheus base URL.") -> Callable[[F], F]:
    return click.option("--prometheus", "prom_url", required=required, help=help)


def with_options(*options: Callable[[F], F]) -> Callable[[F], F]:
    """Several options as one decorator, in the order given."""

    def wrap(fn: F) -> F:
        for opt in reversed(options):
            fn = opt(fn)
        return fn

    return wrap


def connection_options(prometheus_help: str = "Prometheus base URL.") -> Callable[[F], F]:
    """--prometheus, --alertmanager, --kubeconfig, --context: a runbook's or a drill's way to the fleet."""
    return with_options(prometheus_option(help=prometheus_help), alertmanager_option, kubeconfig_option, context_option)


def catalog_or_exit(path: Path, code: int = 2) -> Catalog:
    """The catalog at `path`, or each problem as file:line: field: message on stderr and exit `code`."""
    from console.catalog import CatalogError, load_catalog

    try:
        return load_catalog(path)
    except CatalogError as e:
        for issue in e.issues:
            click.echo(str(issue), err=True)
        sys.exit(code)


def fleet_catalog_or_exit(path: Path, fleet: Path | None = None) -> Catalog:
    """The catalog, or with `fleet` the one made from the Alibaba trace folder; exit 1 on a bad file."""
    if fleet:
        from console.twin.alibaba import catalog as trace_catalog

        return trace_catalog(fleet)
    return catalog_or_exit(path, 1)


def runbooks_reporting(folder: Path) -> tuple[dict[str, Runbook], list[str]]:
    """The runbooks that load, and the names of those that do not, their file:line: field errors on stderr."""
    from console.runbooks import usable_runbooks

    rbs, issues = usable_runbooks(folder)
    for issue in issues:
        click.echo(str(issue), err=True)
    broken = sorted({Path(i.file).stem for i in issues})
    if broken:
        click.echo(f"{folder}: {len(issues)} error(s); left out: {', '.join(broken)}", err=True)
    return rbs, broken


def runbooks_or_exit(folder: Path, want: str | None = None) -> dict[str, Runbook]:
    """The runbooks that load: a broken file's runbook is left out, and only when it is the one wanted
    (`want`) does the command stop, with exit 1."""
    rbs, broken = runbooks_reporting(folder)
    if want is not None and want in broken:
        click.echo(f"error: runbook {want!r} does not load (above)", err=True)
        sys.exit(1)
    return rbs


def records_or_exit(journal: Journal) -> list[dict[str, Any]]:
    """The journal's records, its hash chain checked, or the first bad line on stderr and exit 1."""
    from console.runbooks.journal import JournalError

    try:
        return journal.records()
    except JournalError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(1)


def context_or_exit(kubeconfig: str | None, context: str | None) -> str:
    """The context asked for (the kubeconfig's current one if none), or a clear error and exit 2."""
    from console.sources.kubeconfig import contexts

    try:
        known, current = contexts(kubeconfig)
    except ValueError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(2)
    context = context or current
    if context not in known:
        click.echo(f"error: context {context!r} is not in the kubeconfig (known: {', '.join(known)})", err=True)
        sys.exit(2)
    return context


def connect_or_exit(
    cat: Catalog,
    prom_url: str,
    kubeconfig: str | None,
    context: str | None,
    am_url: str | None,
    prefetch: bool = False,
    **more: Any,
) -> Connections:
    from console.wiring import connect

    try:
        return connect(cat, prom_url, kubeconfig, context, am_url, prefetch=prefetch, **more)
    except ValueError as e:  # an unknown context
        click.echo(f"error: {e}", err=True)
        sys.exit(2)


def duration_seconds(ctx: click.Context, param: click.Parameter, value: str) -> float:
    """A click callback: `30m`, `14d`, `1h30m` in seconds; `0` is none."""
    from console.timefmt import parse_duration

    if value.strip() == "0":
        return 0.0
    try:
        return parse_duration(value)
    except ValueError as e:
        raise click.BadParameter(str(e)) from None


def history_option(default: str) -> Callable[[F], F]:
    """`--history DURATION`: how much of the fleet's past the twin writes into Prometheus before it starts."""

    return click.option(
        "--history",
        default=default,
        show_default=True,
        metavar="DURATION",
        callback=duration_seconds,
        help="The fleet's past to backfill into Prometheus before it starts (the twin's own simulation, e.g. "
        "21d, every 5 minutes, every 30 s over the last 6 hours): readiness, costs, the trend bars and the raw "
        "series' panels start full; the demo backfills the recorded series over the last 6 hours. 0: none.",
    )


def default_history_cache() -> Path:
    import os

    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gpuops" / "history"


history_cache_option = click.option(
    "--history-cache",
    metavar="DIRECTORY",
    default=lambda: str(default_history_cache()),
    callback=lambda ctx, param, value: Path(value) if value else None,  # '' is none
    show_default="$XDG_CACHE_HOME/gpuops/history",
    help="Keep the written history here and continue it on the next start (only the time since is written). "
    "'' turns it off.",
)
