"""`gpuops relay` as a child process, and the demo's secrets for it: every notification stays on this machine.

The demo has no Feishu tenant, Slack workspace or PagerDuty service. Each team's Feishu bot URL is a file://
sink (the relay writes the signed card there, as Feishu would receive it), and Slack and PagerDuty post to
the relay's own sink: `feishu.jsonl` and `sink.jsonl` in the working folder hold what each would have shown.
"""

from __future__ import annotations

import secrets
import sys
from pathlib import Path
from typing import Any

from console.atomic import write_atomic
from console.procs.ports import free_port
from console.procs.process import Server


def relay(workdir: Path, catalog_path: Path, secrets_dir: Path, port: int | None = None) -> Server:
    port = port or free_port()
    argv = [
        sys.executable, "-m", "console.cli", "relay", "--catalog", str(catalog_path.resolve()),
        "--listen", f"127.0.0.1:{port}", "--secrets-dir", str(secrets_dir), "--backoff", "0.5",
        "--failures", str(workdir / "relay-failures.jsonl"), "--sink", str(workdir / "sink.jsonl"),
    ]  # fmt: skip
    return Server("relay", argv, f"http://127.0.0.1:{port}", "/-/ready", workdir / "relay.log")


def local_secrets(workdir: Path, feishu_teams: list[str]) -> Path:
    """The secrets folder of a demo: each team's Feishu bot is the file sink `feishu.jsonl`, signed with a
    fresh secret; the relay's bearer token is fresh too."""
    folder = workdir / "secrets"
    folder.mkdir(mode=0o700, exist_ok=True)
    sink = (workdir / "feishu.jsonl").resolve()
    write_atomic(folder / "relay-token", secrets.token_hex(16))
    for team in feishu_teams:
        write_atomic(folder / f"feishu-{team}.url", sink.as_uri())
        write_atomic(folder / f"feishu-{team}.secret", secrets.token_urlsafe(24))
    return folder


def deliver_locally(config: dict[str, Any], relay_url: str) -> dict[str, Any]:
    """The built Alertmanager config with Slack and PagerDuty posting to the relay's sink, not the internet."""
    for r in config.get("receivers", []):
        for c in r.get("slack_configs", []):
            c.pop("api_url_file", None)
            c["api_url"] = f"{relay_url}/sink/{r['name']}"
        for c in r.get("pagerduty_configs", []):
            c.pop("routing_key_file", None)
            c["routing_key"] = "demo"
            c["url"] = f"{relay_url}/sink/{r['name']}"
    return config
