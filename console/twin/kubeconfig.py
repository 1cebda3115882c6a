"""A kubeconfig for the twin, written atomically, that kubectl and the kubernetes client accept."""

from __future__ import annotations

from pathlib import Path

import yaml

from console.atomic import write_atomic


def kubeconfig(server_url: str, contexts: list[str], token: str = "twin-operator") -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "twin", "cluster": {"server": server_url}}],
        "users": [{"name": "twin-operator", "user": {"token": token}}],
        "contexts": [{"name": c, "context": {"cluster": "twin", "user": "twin-operator"}} for c in contexts],
        "current-context": contexts[0],
        "preferences": {},
    }


def write_kubeconfig(path: Path, server_url: str, contexts: list[str]) -> Path:
    write_atomic(path, yaml.safe_dump(kubeconfig(server_url, contexts), sort_keys=False))
    return path
