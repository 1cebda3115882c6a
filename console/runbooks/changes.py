"""One change a runbook makes: an object, a field, the value before and the value after.

A step's action becomes a list of changes when it is planned; running it writes `after`, rolling it back
writes `before`. Both go through `write`, a JSON merge patch guarded by the resourceVersion that was read,
so a change made by someone else in between is a 409, never overwritten.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from console.sources.kube import KubeObjects

JSON = str | int | float | bool | None
SILENCE = "silence"  # an Alertmanager silence: created by the change, expired by its rollback
SILENCE_END = "silence-end"  # a run's earlier silence, expired by the change, made again by its rollback
ALERTMANAGER = frozenset({SILENCE, SILENCE_END})  # changes made in Alertmanager, not in Kubernetes
EVICTION = "eviction"  # a pod deleted so its controller places it elsewhere: not undone by a rollback
RUN_MARK = "(gpuops run "  # in a silence's createdBy: a run made it, so a later run may end it


def silence_author(operator: str, run_id: str, note: str = "") -> str:
    """The createdBy of a silence a run makes: the operator, and the run that `RUN_MARK` finds again."""
    return f"{operator} {RUN_MARK}{run_id}{', ' + note if note else ''})"


@dataclass(frozen=True)
class Target:
    kind: str  # deployment | hpa | configmap | job | node | silence (see console.sources.kube.KINDS)
    namespace: str
    name: str
    cluster: str = ""  # the catalog cluster it lives in, when a run spans several ("": the run's context)

    def __str__(self) -> str:
        where = f"{self.kind} {self.namespace}/{self.name}" if self.namespace else f"{self.kind} {self.name}"
        return f"{where} in cluster {self.cluster}" if self.cluster else where


@dataclass(frozen=True)
class Lock:
    """The Lease that guards a target: one run at a time on a service, a node or a namespace."""

    namespace: str
    subject: str  # service/llm-chat, node/gpu-a-001, namespace/team-research
    cluster: str = ""  # whose API holds the Lease ("": the run's context)

    @property
    def lease(self) -> str:
        return "gpuops-runbook-" + self.subject.replace("/", "-")


@dataclass(frozen=True)
class Change:
    target: Target
    path: tuple[str, ...]  # ("spec", "replicas"), ("data", "weight.us-east")
    before: JSON
    after: JSON
    lock: Lock | None
    why: str = ""

    @property
    def field(self) -> str:
        return ".".join(f"[{p}]" if "." in p else p for p in self.path).replace(".[", "[")

    def as_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["path"] = list(self.path)
        for part in (d["target"], d["lock"] or {}):  # a one-cluster run's records stay as they were
            if not part.get("cluster"):
                part.pop("cluster", None)
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Change:
        lock = Lock(**d["lock"]) if d.get("lock") else None
        return cls(Target(**d["target"]), tuple(d["path"]), d["before"], d["after"], lock, d.get("why", ""))


def read(kube: KubeObjects, target: Target, path: tuple[str, ...]) -> tuple[JSON, str]:
    """The field's value now (None when absent) and the object's resourceVersion."""
    obj = kube.get(target.kind, target.namespace or None, target.name)
    return value_at(obj, path), obj["metadata"].get("resourceVersion", "")


def value_at(obj: dict[str, Any], path: tuple[str, ...]) -> JSON:
    cur: Any = obj
    for p in path:
        if not isinstance(cur, dict) or p not in cur:
            return None
        cur = cur[p]
    return cast("str | int | float | bool | None", cur)


def write(
    kube: KubeObjects, target: Target, path: tuple[str, ...], value: JSON, version: str = "", dry_run: bool = False
) -> dict[str, Any]:
    """Set one field (None removes it) with a merge patch; `version` makes it a compare-and-set."""
    body: dict[str, Any] = {}
    cur = body
    for p in path[:-1]:
        cur = cur.setdefault(p, {})
    cur[path[-1]] = value
    if version:
        body["metadata"] = {"resourceVersion": version}
    return kube.patch(target.kind, target.namespace or None, target.name, body, dry_run=dry_run)


def show(v: JSON) -> str:
    return "(absent)" if v is None else str(v).lower() if isinstance(v, bool) else str(v)
