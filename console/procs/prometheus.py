"""A real Prometheus (Debian's package) scraping the twin, with temporary storage."""

from __future__ import annotations

from pathlib import Path

import yaml

from console.atomic import write_atomic
from console.procs.ports import free_port
from console.procs.process import Server, find_binary

# The twin's scrape names its instance: a history written before the twin's port was chosen carries it too.
TWIN_INSTANCE = "twin"

# How each cluster's Prometheus sends on to the global view. Sent every second (the default waits up to 5 s):
# the global view trails the cluster by about that. At most 8 connections a sender, each request up to 2,000
# samples: with the defaults (200 shards of 500 samples) ten clusters sending 10,000 GPUs' series held 805
# connections open to the global view while it fell behind, past its limit of 512, and the console could not
# connect to it at all (bench/clusters_scale.py).
REMOTE_WRITE_QUEUE = {"batch_send_deadline": "1s", "max_shards": 8, "max_samples_per_send": 2000, "capacity": 10000}


def prometheus_config(
    twin_target: str | None,
    scrape_interval_s: float,
    alertmanager: str | None = None,
    rule_files: list[str] | None = None,
    *,
    external_labels: dict[str, str] | None = None,
    remote_write: str | None = None,
    eval_interval_s: float | None = None,
    forward: str | None = None,
) -> dict:
    """`twin_target` None: a Prometheus that scrapes nothing (a global view fed by remote writes). The rules are
    evaluated every `eval_interval_s` (default: as often as it scrapes). `forward`: the metric names (a regex)
    its remote writes carry, the rest staying here (default: all)."""
    cfg: dict = {
        "global": {
            "scrape_interval": f"{scrape_interval_s:g}s",
            "evaluation_interval": f"{eval_interval_s or scrape_interval_s:g}s",
            "scrape_timeout": f"{min(scrape_interval_s, 10):g}s",
        },
        "scrape_configs": [
            {
                "job_name": "twin",
                "honor_labels": True,
                "metrics_path": "/metrics",
                "static_configs": [{"targets": [twin_target], "labels": {"instance": TWIN_INSTANCE}}],
            }
        ]
        if twin_target
        else [],
    }
    if external_labels:  # what this Prometheus adds to what it sends on (remote writes, alerts)
        cfg["global"]["external_labels"] = dict(external_labels)
    if remote_write:
        cfg["remote_write"] = [{"url": remote_write, "queue_config": REMOTE_WRITE_QUEUE}]
        if forward:
            keep = {"source_labels": ["__name__"], "regex": forward, "action": "keep"}
            cfg["remote_write"][0]["write_relabel_configs"] = [keep]
    if alertmanager:
        cfg["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]}
    if rule_files:
        cfg["rule_files"] = rule_files
    return cfg


def prometheus(
    workdir: Path,
    twin_target: str | None,
    port: int | None = None,
    scrape_interval_s: float = 2.0,
    alertmanager: str | None = None,
    rule_files: list[str] | None = None,
    retention: str = "2h",
    *,
    external_labels: dict[str, str] | None = None,
    remote_write: str | None = None,
    receiver: bool = False,
    name: str = "prometheus",
    eval_interval_s: float | None = None,
    forward: str | None = None,
) -> Server:
    """`retention` covers a backfilled history, if any: older blocks would be dropped at once. `receiver`: take
    other Prometheus' remote writes (`/api/v1/write`). `name` names its config, data folder and log in `workdir`."""
    port = port or free_port()
    config = workdir / f"{name}.yml"
    cfg = prometheus_config(
        twin_target,
        scrape_interval_s,
        alertmanager,
        rule_files,
        external_labels=external_labels,
        remote_write=remote_write,
        eval_interval_s=eval_interval_s,
        forward=forward,
    )
    write_atomic(config, yaml.safe_dump(cfg))
    tsdb = workdir / ("tsdb" if name == "prometheus" else f"{name}-tsdb")
    argv = [
        find_binary("prometheus"),
        f"--config.file={config}",
        f"--storage.tsdb.path={tsdb}",
        f"--web.listen-address=127.0.0.1:{port}",
        f"--storage.tsdb.retention.time={retention}",
        "--web.enable-lifecycle",
        "--log.level=warn",
        *(["--web.enable-remote-write-receiver"] if receiver else []),
    ]
    return Server(name, argv, f"http://127.0.0.1:{port}", "/-/ready", workdir / f"{name}.log")
