"""A real Alertmanager (Debian's package), clustering off, with temporary storage."""

from __future__ import annotations

from pathlib import Path

import yaml

from console.atomic import write_atomic
from console.procs.ports import free_port
from console.procs.process import Server, find_binary

# A minimal routing tree until the generated one (`gpuops build`) is given.
DEFAULT_CONFIG = {
    "route": {
        "receiver": "null",
        "group_by": ["alertname", "team"],
        "group_wait": "5s",
        "group_interval": "30s",
        "repeat_interval": "4h",
    },
    "receivers": [{"name": "null"}],
}


def alertmanager(workdir: Path, port: int | None = None, config: dict | None = None) -> Server:
    port = port or free_port()
    path = workdir / "alertmanager.yml"
    write_atomic(path, yaml.safe_dump(config or DEFAULT_CONFIG))
    argv = [
        find_binary("prometheus-alertmanager", "alertmanager"),
        f"--config.file={path}",
        f"--storage.path={workdir / 'am-data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",
        "--log.level=warn",
    ]
    return Server("alertmanager", argv, f"http://127.0.0.1:{port}", "/-/ready", workdir / "alertmanager.log")
