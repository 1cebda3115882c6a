"""Kubernetes through the official client: kubeconfig contexts, and the objects the console reads.

Lists are read with `_preload_content=False` and parsed as JSON: the same API calls, without building a
model object per node, which is what costs time at thousands of nodes.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any, cast

import urllib3
from kubernetes import client, config

from console.catalog.model import GPU_RESOURCE
from console.quantity import parse_quantity


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


KUEUE_GROUP, KUEUE_VERSION = "kueue.x-k8s.io", "v1beta1"


@dataclass(frozen=True)
class KubeClusterQueue:
    name: str
    cohort: str
    stop_policy: str  # "" when it admits


@dataclass(frozen=True)
class KubeWorkload:
    namespace: str
    name: str
    queue: str  # the LocalQueue it was submitted to
    cluster_queue: str  # where it is admitted ("" while pending)
    state: str  # pending | admitted | evicted | finished
    flavor: str
    gpus: float
    created: datetime


def _workload(w: dict[str, Any]) -> KubeWorkload:
    meta, spec, status = w["metadata"], w.get("spec") or {}, w.get("status") or {}
    conds = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
    admission = status.get("admission") or {}
    assignment = (admission.get("podSetAssignments") or [{}])[0]
    gpus = 0.0
    for ps in spec.get("podSets") or []:
        for c in ((ps.get("template") or {}).get("spec") or {}).get("containers") or []:
            gpus += parse_quantity(((c.get("resources") or {}).get("requests") or {}).get(GPU_RESOURCE, "0")) * int(
                ps.get("count", 1)
            )
    if conds.get("Finished") == "True":
        state = "finished"
    elif admission:
        state = "admitted"
    else:
        state = "evicted" if conds.get("Evicted") == "True" else "pending"
    return KubeWorkload(
        meta.get("namespace", ""),
        meta["name"],
        spec.get("queueName", ""),
        admission.get("clusterQueue", ""),
        state,
        next(iter((assignment.get("flavors") or {}).values()), ""),
        gpus,
        datetime.fromisoformat(meta.get("creationTimestamp", "1970-01-01T00:00:00Z").replace("Z", "+00:00")),
    )


class KubeSource:
    """Reads from one kubeconfig context; lists are cached for `ttl_s` (the slow poll)."""

    def __init__(self, kubeconfig: str | None = None, context: str | None = None, ttl_s: float = 10.0):
        self.context = context
        self.api_client = config.new_client_from_config(config_file=kubeconfig, context=context)
        self.core = client.CoreV1Api(self.api_client)
        self.autoscaling = client.AutoscalingV2Api(self.api_client)
        self.custom = client.CustomObjectsApi(self.api_client)
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
        value = self._get(fetch)
        with self._lock:
            self._cache[key] = (time.monotonic(), value)
        return value

    def _get(self, fetch: Any) -> Any:
        """One list from the API server, its JSON read; no answer at all is a KubeError that says so."""
        self.requests += 1
        try:
            resp = fetch(_preload_content=False, _request_timeout=10)
        except urllib3.exceptions.HTTPError as e:
            raise unreachable(e, self.context) from None
        return json.loads(resp.data)

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

    def _kueue(self, plural: str, namespaced: bool) -> list[dict[str, Any]]:
        """Kueue's objects of one kind; none where Kueue is not installed (its API answers 404)."""
        if namespaced:
            fetch = partial(self.custom.list_custom_object_for_all_namespaces, KUEUE_GROUP, KUEUE_VERSION, plural)
        else:
            fetch = partial(self.custom.list_cluster_custom_object, KUEUE_GROUP, KUEUE_VERSION, plural)
        try:
            return cast("list[dict[str, Any]]", self._cached(plural, fetch)["items"])
        except client.ApiException as e:
            if e.status == 404:
                return []
            raise

    def cluster_queues(self) -> list[KubeClusterQueue]:
        return [
            KubeClusterQueue(q["metadata"]["name"], q["spec"].get("cohort", ""), q["spec"].get("stopPolicy") or "")
            for q in self._kueue("clusterqueues", namespaced=False)
        ]

    def workloads(self) -> list[KubeWorkload]:
        return [_workload(w) for w in self._kueue("workloads", namespaced=True)]

    def pods_on_node(self, node: str) -> list[KubePod]:
        """The pods bound to one node (a field selector: the API server filters, not us). Not cached."""
        pods = self._get(partial(self.core.list_pod_for_all_namespaces, field_selector=f"spec.nodeName={node}"))
        out = []
        for p in pods["items"]:
            requests: dict[str, str] = {}
            for c in p["spec"].get("containers", []):
                requests.update((c.get("resources") or {}).get("requests") or {})
            meta = p["metadata"]
            out.append(KubePod(meta["namespace"], meta["name"], p.get("status", {}).get("phase", ""), requests))
        return out


# --- objects a runbook reads and changes ------------------------------------------------------------------
class KubeError(Exception):
    """An API error, as the `Status` body tells it: the code, the reason and the message."""

    def __init__(self, code: int, reason: str, message: str):
        super().__init__(f"{code} {reason}: {message}")
        self.code, self.reason, self.message = code, reason, message

    @property
    def retryable(self) -> bool:
        """Worth trying again: a conflict (re-read first), throttling, or the server's own trouble."""
        return self.code in (409, 429) or self.code >= 500


@dataclass(frozen=True)
class Kind:
    api: str  # the client class
    resource: str  # the plural an access review names
    group: str
    namespaced: bool
    method: str  # the client's method suffix: read_<m>, patch_<m>, ... ("" for a custom resource)
    subresource: str = ""  # changed through it (a deployment's replicas: the scale subresource)
    version: str = ""  # a custom resource's version: read and changed through CustomObjectsApi


KINDS: dict[str, Kind] = {
    "deployment": Kind("AppsV1Api", "deployments", "apps", True, "namespaced_deployment", "scale"),
    "hpa": Kind(
        "AutoscalingV2Api", "horizontalpodautoscalers", "autoscaling", True, "namespaced_horizontal_pod_autoscaler"
    ),
    "configmap": Kind("CoreV1Api", "configmaps", "", True, "namespaced_config_map"),
    "job": Kind("BatchV1Api", "jobs", "batch", True, "namespaced_job"),
    "node": Kind("CoreV1Api", "nodes", "", False, "node"),
    "namespace": Kind("CoreV1Api", "namespaces", "", False, "namespace"),
    "pod": Kind("CoreV1Api", "pods", "", True, "namespaced_pod"),
    "lease": Kind("CoordinationV1Api", "leases", "coordination.k8s.io", True, "namespaced_lease"),
    "resourcequota": Kind("CoreV1Api", "resourcequotas", "", True, "namespaced_resource_quota"),
    "clusterqueue": Kind("CustomObjectsApi", "clusterqueues", KUEUE_GROUP, False, "", version=KUEUE_VERSION),
    "localqueue": Kind("CustomObjectsApi", "localqueues", KUEUE_GROUP, True, "", version=KUEUE_VERSION),
    "workload": Kind("CustomObjectsApi", "workloads", KUEUE_GROUP, True, "", version=KUEUE_VERSION),
}
_LIST = {
    "deployment": "list_deployment_for_all_namespaces",
    "hpa": "list_horizontal_pod_autoscaler_for_all_namespaces",
    "configmap": "list_config_map_for_all_namespaces",
    "job": "list_job_for_all_namespaces",
    "node": "list_node",
    "namespace": "list_namespace",
    "pod": "list_pod_for_all_namespaces",
    "lease": "list_lease_for_all_namespaces",
    "resourcequota": "list_resource_quota_for_all_namespaces",
}
MERGE_PATCH = "application/merge-patch+json"


class KubeObjects:
    """Read, patch (JSON merge patch, optionally a server-side dry run), create and delete the objects a
    runbook acts on, and ask whether this identity may (SelfSubjectAccessReview). Raises `KubeError`."""

    def __init__(self, kubeconfig: str | None = None, context: str | None = None, timeout_s: float = 10.0):
        self.context = context
        self.api_client = config.new_client_from_config(config_file=kubeconfig, context=context)
        self.timeout_s = timeout_s
        self._apis: dict[str, Any] = {}
        self.requests = 0

    def close(self) -> None:
        self.api_client.close()

    def _call(self, kind: str, verb: str, *args: Any, **kw: Any) -> dict[str, Any]:
        k = KINDS[kind]
        api = self._apis.get(k.api) or self._apis.setdefault(k.api, getattr(client, k.api)(self.api_client))
        if k.version:
            method, args = _custom(k, verb, args)
        else:
            method = _LIST[kind] if verb == "list" else f"{verb}_{k.method}"
        if verb == "patch" and k.subresource:
            method += f"_{k.subresource}"
        self.requests += 1
        try:
            resp = getattr(api, method)(*args, _preload_content=False, _request_timeout=self.timeout_s, **kw)
        except client.ApiException as e:
            raise _kube_error(e) from None
        except urllib3.exceptions.HTTPError as e:
            raise unreachable(e, self.context) from None
        return cast("dict[str, Any]", json.loads(resp.data)) if resp.data else {}

    def _where(self, kind: str, namespace: str | None, name: str) -> tuple[str, ...]:
        return (name, namespace or "") if KINDS[kind].namespaced else (name,)

    def get(self, kind: str, namespace: str | None, name: str) -> dict[str, Any]:
        return self._call(kind, "read", *self._where(kind, namespace, name))

    def list(self, kind: str, label_selector: str = "", field_selector: str = "") -> list[dict[str, Any]]:
        kw = {k: v for k, v in (("label_selector", label_selector), ("field_selector", field_selector)) if v}
        return cast("list[dict[str, Any]]", self._call(kind, "list", **kw)["items"])

    def patch(
        self, kind: str, namespace: str | None, name: str, body: dict[str, Any], dry_run: bool = False
    ) -> dict[str, Any]:
        extra = {"dry_run": "All"} if dry_run else {}
        where = self._where(kind, namespace, name)
        return self._call(kind, "patch", *where, body, _content_type=MERGE_PATCH, **extra)

    def create(self, kind: str, namespace: str | None, body: dict[str, Any]) -> dict[str, Any]:
        return cast(
            "dict[str, Any]", self._call(kind, "create", *((namespace,) if KINDS[kind].namespaced else ()), body)
        )

    def replace(self, kind: str, namespace: str | None, name: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._call(kind, "replace", *self._where(kind, namespace, name), body)

    def delete(self, kind: str, namespace: str | None, name: str, dry_run: bool = False) -> None:
        extra = {"dry_run": "All"} if dry_run else {}
        self._call(kind, "delete", *self._where(kind, namespace, name), **extra)

    def may(self, verb: str, kind: str, namespace: str | None, name: str = "") -> tuple[bool, str]:
        """(allowed, the server's reason) for `verb` on this object, as this identity."""
        k = KINDS[kind]
        attrs = {"verb": verb, "resource": k.resource, "group": k.group, "name": name}
        if k.subresource and verb == "patch":
            attrs["subresource"] = k.subresource
        if k.namespaced:
            attrs["namespace"] = namespace or ""
        api = client.AuthorizationV1Api(self.api_client)
        self.requests += 1
        try:
            resp: Any = api.create_self_subject_access_review(
                {  # type: ignore[arg-type]  # a plain dict is what the API server reads
                    "apiVersion": "authorization.k8s.io/v1",
                    "kind": "SelfSubjectAccessReview",
                    "spec": {"resourceAttributes": attrs},
                },
                _preload_content=False,
                _request_timeout=self.timeout_s,
            )
        except client.ApiException as e:
            raise _kube_error(e) from None
        status = json.loads(resp.data).get("status") or {}
        return bool(status.get("allowed")), str(status.get("reason", ""))


def _custom(k: Kind, verb: str, args: tuple[Any, ...]) -> tuple[str, tuple[Any, ...]]:
    """CustomObjectsApi's method for a verb, and its leading arguments: (group, version[, namespace], plural,
    name, ...) from the (name[, namespace], ...) the built-in kinds take."""
    where = (k.group, k.version)
    verb = "get" if verb == "read" else verb
    if verb == "list":
        return ("list_custom_object_for_all_namespaces" if k.namespaced else "list_cluster_custom_object"), (
            *where,
            k.resource,
        )
    if verb == "create":
        ns, rest = (args[0], args[1:]) if k.namespaced else (None, args)
        scope = "namespaced" if k.namespaced else "cluster"
        return f"create_{scope}_custom_object", (*where, *((ns,) if k.namespaced else ()), k.resource, *rest)
    name, rest = args[0], args[1:]
    if k.namespaced:
        ns, rest = rest[0], rest[1:]
        return f"{verb}_namespaced_custom_object", (*where, ns, k.resource, name, *rest)
    return f"{verb}_cluster_custom_object", (*where, k.resource, name, *rest)


def unreachable(e: urllib3.exceptions.HTTPError, context: str | None) -> KubeError:
    """No answer at all (refused, dropped, timed out), in one line: the context, the server and the first cause
    (urllib3 wraps it two or three deep: a MaxRetryError's ProtocolError's RemoteDisconnected)."""
    pool = getattr(e, "pool", None)
    at = f" at {pool.host}:{pool.port}" if pool is not None else ""
    return KubeError(503, "Unreachable", f"{context or 'the API server'}{at}: no answer: {_first_cause(e)}")


def _first_cause(e: BaseException) -> str:
    seen: set[int] = set()
    while id(e) not in seen:
        seen.add(id(e))
        reason = getattr(e, "reason", None)
        inner = reason if isinstance(reason, BaseException) else None
        inner = inner or next((a for a in e.args if isinstance(a, BaseException)), None) or e.__cause__
        if inner is None:
            break
        e = inner
    return f"{type(e).__name__}: {e}" if str(e) else type(e).__name__


def _kube_error(e: Any) -> KubeError:
    try:
        body = json.loads(e.body or "{}")
    except (TypeError, ValueError):
        body = {}
    return KubeError(int(e.status or 0), str(body.get("reason") or e.reason or ""), str(body.get("message") or e))
