"""Kubernetes through the official client: kubeconfig contexts, and the objects the console reads.

Lists are read with `_preload_content=False` and parsed as JSON: the same API calls, without building a
model object per node, which is what costs time at thousands of nodes.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from typing import Any

from kubernetes import client, config


@dataclass(frozen=True)
class KubeHpa:
    namespace: str
    name: str
    target: str
    min_replicas: int
    max_replicas: int


@dataclass(frozen=True)
class KubePod:
    namespace: str
    name: str
    phase: str
    requests: dict[str, str]

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


def contexts(kubeconfig: str | None = None) -> tuple[list[str], str | None]:
    ctxs, current = config.list_kube_config_contexts(config_file=kubeconfig)
    return [c["name"] for c in ctxs], (current or {}).get("name")


class KubeSource:
    """Reads from one kubeconfig context; lists are cached for `ttl_s` (the slow poll)."""

    def __init__(self, kubeconfig: str | None = None, context: str | None = None, ttl_s: float = 10.0):
        self.context = context
        self.api_client = config.new_client_from_config(config_file=kubeconfig, context=context)
        self.core = client.CoreV1Api(self.api_client)
        self.autoscaling = client.AutoscalingV2Api(self.api_client)
        self.ttl_s = ttl_s
        self._cache: dict[str, tuple[float, Any]] = {}
        self._lock = threading.Lock()
        self.requests = 0

    def close(self) -> None:
        self.api_client.close()

    def _cached(self, key: str, fetch: Any) -> Any:
        with self._lock:
            hit = self._cache.get(key)
            if hit and time.monotonic() - hit[0] < self.ttl_s:
                return hit[1]
        self.requests += 1
        resp = fetch(_preload_content=False, _request_timeout=10)
        value = json.loads(resp.data)
        with self._lock:
            self._cache[key] = (time.monotonic(), value)
        return value

    def invalidate(self) -> None:
        with self._lock:
            self._cache.clear()

    def hpas(self) -> list[KubeHpa]:
        doc = self._cached("hpas", self.autoscaling.list_horizontal_pod_autoscaler_for_all_namespaces)
        return [
            KubeHpa(
                h["metadata"]["namespace"],
                h["metadata"]["name"],
                h["spec"]["scaleTargetRef"]["name"],
                h["spec"].get("minReplicas", 1),
                h["spec"]["maxReplicas"],
            )
            for h in doc["items"]
        ]

    def pods_on_node(self, node: str) -> list[KubePod]:
        """The pods bound to one node (a field selector: the API server filters, not us). Not cached."""
        self.requests += 1
        resp = self.core.list_pod_for_all_namespaces(
            field_selector=f"spec.nodeName={node}", _preload_content=False, _request_timeout=10
        )
        out = []
        for p in json.loads(resp.data)["items"]:
            requests: dict[str, str] = {}
            for c in p["spec"].get("containers", []):
                requests.update((c.get("resources") or {}).get("requests") or {})
            meta = p["metadata"]
            out.append(KubePod(meta["namespace"], meta["name"], p.get("status", {}).get("phase", ""), requests))
        return out
