"""A real Prometheus (Debian's package) scraping the twin, with temporary storage."""

from __future__ import annotations

from pathlib import Path

import yaml

from console.atomic import write_atomic
from console.procs.ports import free_port
from console.procs.process import Server, find_binary

# The twin's scrape names its instance: a history written before the twin's port was chosen carries it too.
TWIN_INSTANCE = "twin"


def prometheus_config(
    twin_target: str, scrape_interval_s: float, alertmanager: str | None = None, rule_files: list[str] | None = None
) -> dict:
    cfg: dict = {
        "global": {
            "scrape_interval": f"{scrape_interval_s:g}s",
            "evaluation_interval": f"{scrape_interval_s:g}s",
            "scrape_timeout": f"{min(scrape_interval_s, 10):g}s",
        },
        "scrape_configs": [
            {
                "job_name": "twin",
                "honor_labels": True,
                "metrics_path": "/metrics",
                "static_configs": [{"targets": [twin_target], "labels": {"instance": TWIN_INSTANCE}}],
            }
        ],
    }
    if alertmanager:
        cfg["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]}
    if rule_files:
        cfg["rule_files"] = rule_files
    return cfg


def prometheus(
    workdir: Path,
    twin_target: str,
    port: int | None = None,
    scrape_interval_s: float = 2.0,
    alertmanager: str | None = None,
    rule_files: list[str] | None = None,
    retention: str = "2h",
) -> Server:
    """`retention` covers a backfilled history, if any: older blocks would be dropped at once."""
    port = port or free_port()
    config = workdir / "prometheus.yml"
    write_atomic(config, yaml.safe_dump(prometheus_config(twin_target, scrape_interval_s, alertmanager, rule_files)))
    argv = [
        find_binary("prometheus"),
        f"--config.file={config}",
        f"--storage.tsdb.path={workdir / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{port}",
        f"--storage.tsdb.retention.time={retention}",
        "--web.enable-lifecycle",
        "--log.level=warn",
    ]
    return Server("prometheus", argv, f"http://127.0.0.1:{port}", "/-/ready", workdir / "prometheus.log")
