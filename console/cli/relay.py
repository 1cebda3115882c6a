"""`gpuops relay`: Alertmanager's webhook to Feishu/Lark cards, one group per team."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from console.cli.options import catalog_option, catalog_or_exit


@click.command()
@catalog_option
@click.option("--listen", default="127.0.0.1:9095", show_default=True, help="host:port to serve on.")
@click.option(
    "--secrets-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where feishu-<team>.url, feishu-<team>.secret and relay-token are [default: the catalog's "
    "alerting.secrets_dir].",
)
@click.option(
    "--failures",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Append each card that could not be delivered here, whole, as JSON lines.",
)
@click.option(
    "--sink",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Serve POST /sink/<name>, appending what it is sent here (the demo's Slack and PagerDuty).",
)
@click.option("--tries", default=4, show_default=True, type=click.IntRange(1, 10), help="Attempts per card.")
@click.option(
    "--backoff", default=1.0, show_default=True, type=click.FloatRange(0, 60), help="First retry wait (s), doubling."
)
def relay(
    catalog_path: Path,
    listen: str,
    secrets_dir: Path | None,
    failures: Path | None,
    sink: Path | None,
    tries: int,
    backoff: float,
) -> None:
    """Receive Alertmanager's webhook and post a Feishu/Lark card for each alert group.

    \b
    Alertmanager posts each team's groups to POST /feishu/<team> (the built
    alertmanager.yaml routes there for every team with a feishu_group). Each group
    becomes one interactive card: severity colour, the alerts' summaries, and buttons for
    the runbook, the dashboard, a pre-filled silence and the alerts in Alertmanager.
    Signed for the bot (HMAC-SHA256 of "timestamp\\nsecret", base64) when it has a secret.

    \b
    Secrets (files under --secrets-dir, never in the catalog):
      feishu-<team>.url     the group bot's webhook URL (file:///path writes a local sink)
      feishu-<team>.secret  its signing secret (optional)
      relay-token           the bearer token Alertmanager must send (optional)

    \b
    Endpoints:
      POST /feishu/<team>   Alertmanager's webhook (v4)
      POST /sink/<name>     with --sink: anything, appended to that file
      GET  /notifications   the recent deliveries
      GET  /notified        each alert's last delivery (the console's "notified" column)
      GET  /metrics         gpuops_relay_notifications_total{team,result}
      GET  /-/ready

    A card that still fails after its retries is logged, written to --failures, and
    answered 502, so Alertmanager sends the group again: nothing is dropped silently.
    """
    import signal
    import threading

    from console.relay.server import Relay, RelayServer
    from console.relay.targets import TargetError, read_secret, targets
    from console.sources.feishu import FeishuBot

    cat = catalog_or_exit(catalog_path, 1)
    folder = secrets_dir or Path(cat.alerting.secrets_dir)
    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit():
        raise click.BadParameter(f"{listen!r} is not host:port", param_hint="--listen")
    try:
        found = targets(cat, folder)
        token = read_secret(folder / "relay-token", required=False)
    except TargetError as e:
        click.echo(f"gpuops relay: {e}", err=True)
        sys.exit(1)
    if not found and sink is None:
        click.echo(f"gpuops relay: no team in {catalog_path} has a feishu_group: nothing to relay", err=True)
        sys.exit(1)
    core = Relay(
        found, failures=failures, sink=sink, bot=lambda t: FeishuBot(t.url, t.secret, tries=tries, backoff_s=backoff)
    )
    try:
        server = RelayServer(core, host, int(port), token)
    except OSError as e:
        click.echo(f"gpuops relay: cannot listen on {listen}: {e.strerror}", err=True)
        sys.exit(1)
    thread = threading.Thread(target=server.serve_forever, name="relay-http", daemon=True)
    thread.start()
    teams = ", ".join(f"{t.team} → {t.group}" for t in found.values())
    click.echo(f"relay: {server.url} — {teams}" + ("" if token else " (no relay-token: any caller accepted)"), err=True)
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: done.set())
    done.wait()
    server.shutdown()
    server.server_close()
    core.close()
