"""The Kubernetes resources the twin serves: discovery documents and kubectl's table columns."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


@dataclass(frozen=True)
class Resource:
    group: str  # "" is the core group
    version: str
    plural: str
    kind: str
    namespaced: bool
    short: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ("create", "delete", "get", "list", "patch", "update", "watch")

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """The name Kubernetes uses in messages, e.g. `deployments.apps`."""
        return f"{self.plural}.{self.group}" if self.group else self.plural


KUEUE = "kueue.x-k8s.io"
RESOURCES: tuple[Resource, ...] = (
    Resource("", "v1", "namespaces", "Namespace", False, ("ns",)),
    Resource("", "v1", "nodes", "Node", False, ("no",), ("status",)),
    Resource("", "v1", "pods", "Pod", True, ("po",), ("status",)),
    Resource("", "v1", "configmaps", "ConfigMap", True, ("cm",)),
    Resource("", "v1", "resourcequotas", "ResourceQuota", True, ("quota",), ("status",)),
    Resource("apps", "v1", "deployments", "Deployment", True, ("deploy",), ("scale", "status")),
    Resource("autoscaling", "v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler", True, ("hpa",), ("status",)),
    Resource("batch", "v1", "jobs", "Job", True, (), ("status",)),
    Resource("coordination.k8s.io", "v1", "leases", "Lease", True),
    Resource(
        "authorization.k8s.io", "v1", "selfsubjectaccessreviews", "SelfSubjectAccessReview", False, verbs=("create",)
    ),
    # Kueue's batch admission (console/twin/kueue.py), as its CRDs serve them.
    Resource(KUEUE, "v1beta1", "resourceflavors", "ResourceFlavor", False, ("rf",)),
    Resource(KUEUE, "v1beta1", "clusterqueues", "ClusterQueue", False, ("cq",), ("status",)),
    Resource(KUEUE, "v1beta1", "localqueues", "LocalQueue", True, ("queue", "queues", "lq"), ("status",)),
    Resource(KUEUE, "v1beta1", "workloads", "Workload", True, ("wl",), ("status",)),
)
BY_PATH = {(r.group, r.version, r.plural): r for r in RESOURCES}
BY_PLURAL = {r.plural: r for r in RESOURCES}


def groups() -> dict[str, list[Resource]]:
    out: dict[str, list[Resource]] = {}
    for r in RESOURCES:
        out.setdefault(r.group, []).append(r)
    return out


def api_versions(server_address: str) -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    }


def api_group_list() -> dict[str, Any]:
    items = []
    for group, res in groups().items():
        if not group:
            continue
        gv = {"groupVersion": res[0].group_version, "version": res[0].version}
        items.append({"name": group, "versions": [gv], "preferredVersion": gv})
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": items}


def api_group(group: str) -> dict[str, Any] | None:
    res = groups().get(group)
    if not res or not group:
        return None
    gv = {"groupVersion": res[0].group_version, "version": res[0].version}
    return {"kind": "APIGroup", "apiVersion": "v1", "name": group, "versions": [gv], "preferredVersion": gv}


def resource_list(group: str, version: str) -> dict[str, Any] | None:
    res = [r for r in groups().get(group, []) if r.version == version]
    if not res:
        return None
    items: list[dict[str, Any]] = []
    for r in res:
        items.append(
            {
                "name": r.plural,
                "singularName": r.kind.lower(),
                "namespaced": r.namespaced,
                "kind": r.kind,
                "verbs": list(r.verbs),
                "shortNames": list(r.short),
            }
        )
        for sub in r.subresources:
            kind = "Scale" if sub == "scale" else r.kind
            sub_group = {"group": "autoscaling", "version": "v1"} if sub == "scale" else {}
            items.append(
                {
                    "name": f"{r.plural}/{sub}",
                    "singularName": "",
                    "namespaced": r.namespaced,
                    "kind": kind,
                    "verbs": ["get", "patch", "update"],
                    **sub_group,
                }
            )
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": res[0].group_version, "resources": items}


# --- kubectl's server-side printing -------------------------------------------------------------------


def _age(obj: dict[str, Any], now: datetime) -> str:
    ts = obj.get("metadata", {}).get("creationTimestamp")
    if not ts:
        return "<unknown>"
    secs = max(0, int((now - datetime.fromisoformat(ts.replace("Z", "+00:00"))).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if secs >= size:
            return f"{secs // size}{unit}"
    return f"{secs}s"


def _quota_pairs(obj: dict[str, Any], want_limits: bool) -> str:
    hard = obj.get("status", {}).get("hard") or obj.get("spec", {}).get("hard", {})
    used = obj.get("status", {}).get("used", {})
    keys = sorted(k for k in hard if k.startswith("limits.") == want_limits)
    return ", ".join(f"{k}: {used.get(k, '0')}/{hard[k]}" for k in keys)


def _node_status(obj: dict[str, Any]) -> str:
    conds = {c["type"]: c["status"] for c in obj.get("status", {}).get("conditions", [])}
    s = "Ready" if conds.get("Ready") == "True" else "NotReady"
    return s + (",SchedulingDisabled" if obj.get("spec", {}).get("unschedulable") else "")


def _columns(plural: str) -> list[tuple[str, str]]:
    return {
        "nodes": [
            ("Name", "string"),
            ("Status", "string"),
            ("Roles", "string"),
            ("Age", "string"),
            ("Version", "string"),
        ],
        "pods": [
            ("Name", "string"),
            ("Ready", "string"),
            ("Status", "string"),
            ("Restarts", "integer"),
            ("Age", "string"),
        ],
        "deployments": [
            ("Name", "string"),
            ("Ready", "string"),
            ("Up-to-date", "integer"),
            ("Available", "integer"),
            ("Age", "string"),
        ],
        "resourcequotas": [("Name", "string"), ("Age", "string"), ("Request", "string"), ("Limit", "string")],
        "horizontalpodautoscalers": [
            ("Name", "string"),
            ("Reference", "string"),
            ("MinPods", "integer"),
            ("MaxPods", "integer"),
            ("Replicas", "integer"),
            ("Age", "string"),
        ],
        "configmaps": [("Name", "string"), ("Data", "integer"), ("Age", "string")],
        "leases": [("Name", "string"), ("Holder", "string"), ("Age", "string")],
        # Kueue's CRDs' printer columns (`kubectl get cq` shows the stop policy too: what hold-batch sets).
        "clusterqueues": [
            ("Name", "string"),
            ("Cohort", "string"),
            ("Pending Workloads", "integer"),
            ("Admitted Workloads", "integer"),
            ("Stop Policy", "string"),
        ],
        "localqueues": [
            ("Name", "string"),
            ("ClusterQueue", "string"),
            ("Pending Workloads", "integer"),
            ("Admitted Workloads", "integer"),
        ],
        "workloads": [
            ("Name", "string"),
            ("Queue", "string"),
            ("Reserved in", "string"),
            ("Admitted", "string"),
            ("Finished", "string"),
            ("Age", "string"),
        ],
    }.get(plural, [("Name", "string"), ("Age", "string")])


def _cells(plural: str, obj: dict[str, Any], now: datetime) -> list[Any]:
    name = obj["metadata"]["name"]
    spec, status = obj.get("spec", {}), obj.get("status", {})
    age = _age(obj, now)
    if plural == "nodes":
        return [name, _node_status(obj), "<none>", age, "v1.30.0-twin"]
    if plural == "pods":
        ready = 1 if any(c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions", [])) else 0
        return [name, f"{ready}/1", status.get("phase", "Unknown"), 0, age]
    if plural == "deployments":
        want = spec.get("replicas", 0)
        return [
            name,
            f"{status.get('readyReplicas', 0)}/{want}",
            status.get("updatedReplicas", 0),
            status.get("availableReplicas", 0),
            age,
        ]
    if plural == "resourcequotas":
        return [name, age, _quota_pairs(obj, False), _quota_pairs(obj, True)]
    if plural == "horizontalpodautoscalers":
        ref = spec.get("scaleTargetRef", {})
        return [
            name,
            f"{ref.get('kind')}/{ref.get('name')}",
            spec.get("minReplicas", 1),
            spec.get("maxReplicas", 0),
            status.get("currentReplicas", 0),
            age,
        ]
    if plural == "configmaps":
        return [name, len(obj.get("data", {})), age]
    if plural == "leases":
        return [name, spec.get("holderIdentity", ""), age]
    if plural == "clusterqueues":
        return [
            name,
            spec.get("cohort", ""),
            status.get("pendingWorkloads", 0),
            status.get("admittedWorkloads", 0),
            spec.get("stopPolicy", "None"),
        ]
    if plural == "localqueues":
        return [
            name,
            spec.get("clusterQueue", ""),
            status.get("pendingWorkloads", 0),
            status.get("admittedWorkloads", 0),
        ]
    if plural == "workloads":
        conds = {c["type"]: c["status"] for c in status.get("conditions", [])}
        reserved = (status.get("admission") or {}).get("clusterQueue", "")
        return [name, spec.get("queueName", ""), reserved, conds.get("Admitted", ""), conds.get("Finished", ""), age]
    return [name, age]


def as_table(plural: str, objs: list[dict[str, Any]], resource_version: str) -> dict[str, Any]:
    now = datetime.now(UTC)
    cols = [
        {"name": n, "type": t, "format": "name" if n == "Name" else "", "description": "", "priority": 0}
        for n, t in _columns(plural)
    ]
    rows = [
        {
            "cells": _cells(plural, o, now),
            "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o["metadata"]},
        }
        for o in objs
    ]
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": cols,
        "rows": rows,
    }
