"""A kubeconfig for the twin, written atomically, that kubectl and the kubernetes client accept."""

from __future__ import annotations

from pathlib import Path

import yaml

from console.atomic import write_atomic


def kubeconfig(servers: dict[str, str], token: str = "twin-operator") -> dict:
    """One context per entry of `servers` (context -> API server URL); one kubeconfig cluster per server."""
    names = {url: f"twin-{i}" if i else "twin" for i, url in enumerate(dict.fromkeys(servers.values()))}
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {"server": url}} for url, name in names.items()],
        "users": [{"name": "twin-operator", "user": {"token": token}}],
        "contexts": [
            {"name": c, "context": {"cluster": names[url], "user": "twin-operator"}} for c, url in servers.items()
        ],
        "current-context": next(iter(servers)),
        "preferences": {},
    }


def write_kubeconfig(path: Path, servers: dict[str, str]) -> Path:
    write_atomic(path, yaml.safe_dump(kubeconfig(servers), sort_keys=False))
    return path
