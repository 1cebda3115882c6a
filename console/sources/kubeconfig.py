"""A kubeconfig's contexts, read without the Kubernetes client: the file is YAML, read through the guards every
config file goes through (size, binary, alias bombs), and the client's imports (0.3 s) stay off the path to the
console's first paint."""

from __future__ import annotations

import os
from pathlib import Path

from console.catalog.yamlpos import FileRefused, load_located


def kubeconfig_path(kubeconfig: str | None) -> Path:
    """The file kubectl would read: the one given, else the first in $KUBECONFIG, else ~/.kube/config."""
    if kubeconfig:
        return Path(kubeconfig)
    env = os.environ.get("KUBECONFIG", "")
    first = next((p for p in env.split(os.pathsep) if p), "")
    return Path(first).expanduser() if first else Path.home() / ".kube" / "config"


def contexts(kubeconfig: str | None = None) -> tuple[list[str], str | None]:
    """(every context's name, the current context or None). ValueError, naming the file (and line), for a file
    that cannot be read or holds no contexts."""
    path = kubeconfig_path(kubeconfig)
    try:
        doc = load_located(path)
    except (OSError, FileRefused) as e:
        raise ValueError(f"{path}: {e}") from None
    if doc.issues:
        raise ValueError(str(doc.issues[0]))
    data = doc.data if isinstance(doc.data, dict) else {}
    listed = data.get("contexts")
    names = [c["name"] for c in listed or [] if isinstance(c, dict) and isinstance(c.get("name"), str)]
    if not names:
        raise ValueError(f"{path}:{doc.line_of(('contexts',))}: contexts: a kubeconfig lists at least one context")
    current = data.get("current-context")
    return names, current if isinstance(current, str) and current in names else None
