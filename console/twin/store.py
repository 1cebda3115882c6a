"""The twin's object store: Kubernetes objects as JSON dicts, with resource versions and conflicts."""

from __future__ import annotations

import copy
import itertools
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from console.twin.resources import Resource

Obj = dict[str, Any]


class ApiError(Exception):
    """An error the Kubernetes API reports as a `Status` body."""

    def __init__(self, code: int, reason: str, message: str, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details or {}

    def status(self) -> Obj:
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "details": self.details,
            "code": self.code,
        }


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch; also what the twin does for strategic merge patches."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


def json_patch(target: Obj, ops: list[dict[str, Any]]) -> Obj:
    """RFC 6902, the operations kubectl and clients send: add, replace, remove, test."""
    doc = copy.deepcopy(target)
    for op in ops:
        parts = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].lstrip("/").split("/")]
        parent: Any = doc
        for p in parts[:-1]:
            parent = parent[int(p)] if isinstance(parent, list) else parent.setdefault(p, {})
        last = parts[-1]
        kind = op["op"]
        if kind in ("add", "replace"):
            if isinstance(parent, list):
                idx = len(parent) if last == "-" else int(last)
                if kind == "add":
                    parent.insert(idx, op["value"])
                else:
                    parent[idx] = op["value"]
            else:
                parent[last] = op["value"]
        elif kind == "remove":
            if isinstance(parent, list):
                del parent[int(last)]
            else:
                parent.pop(last, None)
        elif kind == "test":
            current = parent[int(last)] if isinstance(parent, list) else parent.get(last)
            if current != op["value"]:
                raise ApiError(422, "Invalid", f"json patch test failed at {op['path']}")
        else:
            raise ApiError(415, "UnsupportedMediaType", f"json patch operation {kind!r} is not supported")
    return doc


def selector_matches(labels: dict[str, str], selector: str) -> bool:
    """Equality-based label selectors: `a=b,c!=d,e,!f`."""
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in term:
            k, v = term.split("!=", 1)
            if labels.get(k.strip()) == v.strip():
                return False
        elif "=" in term:
            k, v = term.split("=", 1)
            if labels.get(k.strip().rstrip("=")) != v.strip():
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


def field_value(obj: Obj, path: str) -> str:
    cur: Any = obj
    for p in path.split("."):
        cur = cur.get(p, "") if isinstance(cur, dict) else ""
    return str(cur)


class Store:
    """Thread-safe; every mutation bumps a global resource version, as etcd's revision does."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self._objs: dict[tuple[str, str, str], Obj] = {}
        self._rv = itertools.count(1)
        self.revision = 0
        self.changed: dict[str, int] = {}  # resource (qualified) -> the revision it last changed at
        self.listeners: list[Callable[[str, Resource, Obj], None]] = []

    def __getstate__(self) -> dict[str, object]:
        """What a kept history holds (`console.twin.history_cache`): the objects and their revision; no lock,
        and no listener (each owner adds its own again)."""
        return {"objs": self._objs, "revision": self.revision}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__()  # type: ignore[misc]
        self._objs, self.revision = state["objs"], state["revision"]
        self.changed = {}
        self._rv = itertools.count(self.revision + 1)

    def _key(self, res: Resource, ns: str | None, name: str) -> tuple[str, str, str]:
        return (res.qualified, ns or "" if res.namespaced else "", name)

    def _bump(self, obj: Obj, res: Resource) -> None:
        self.revision = next(self._rv)
        self.changed[res.qualified] = self.revision
        obj["metadata"]["resourceVersion"] = str(self.revision)

    def get(self, res: Resource, ns: str | None, name: str) -> Obj:
        with self.lock:
            obj = self._objs.get(self._key(res, ns, name))
            if obj is None:
                raise ApiError(
                    404,
                    "NotFound",
                    f'{res.qualified} "{name}" not found',
                    {"name": name, "group": res.group, "kind": res.plural},
                )
            return obj

    def find(self, res: Resource, ns: str | None, name: str) -> Obj | None:
        with self.lock:
            return self._objs.get(self._key(res, ns, name))

    def list(
        self, res: Resource, ns: str | None = None, label_selector: str = "", field_selector: str = ""
    ) -> list[Obj]:
        with self.lock:
            out = [
                o
                for (q, ons, _), o in self._objs.items()
                if q == res.qualified and (not ns or not res.namespaced or ons == ns)
            ]
        if label_selector:
            out = [o for o in out if selector_matches(o["metadata"].get("labels") or {}, label_selector)]
        for term in filter(None, field_selector.split(",")):
            neg = "!=" in term
            k, v = term.split("!=" if neg else "=", 1)
            out = [o for o in out if (field_value(o, k.lstrip("=").rstrip("=")) == v.lstrip("=")) != neg]
        return sorted(out, key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))

    def iter(self, res: Resource) -> Iterator[Obj]:
        """Live objects of one resource; callers hold `lock` while iterating."""
        return (o for (q, _, _), o in self._objs.items() if q == res.qualified)

    def create(self, res: Resource, ns: str | None, obj: Obj, dry_run: bool = False) -> Obj:
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        name = meta.get("name") or (
            meta.get("generateName", "") + uuid.uuid4().hex[:5] if meta.get("generateName") else ""
        )
        if not name:
            raise ApiError(
                422,
                "Invalid",
                f"{res.kind} is invalid: metadata.name: Required value",
                {"kind": res.kind, "causes": [{"field": "metadata.name", "reason": "FieldValueRequired"}]},
            )
        meta["name"] = name
        if res.namespaced:
            if not ns:
                raise ApiError(422, "Invalid", f"{res.kind} is invalid: metadata.namespace: Required value")
            meta["namespace"] = ns
        obj["apiVersion"], obj["kind"] = res.group_version, res.kind
        with self.lock:
            if self._key(res, ns, name) in self._objs:
                raise ApiError(
                    409,
                    "AlreadyExists",
                    f'{res.qualified} "{name}" already exists',
                    {"name": name, "group": res.group, "kind": res.plural},
                )
            meta.setdefault("uid", str(uuid.uuid4()))
            meta.setdefault("creationTimestamp", now_rfc3339())
            meta.setdefault("generation", 1)
            if dry_run:
                meta["resourceVersion"] = str(self.revision)
                return obj
            self._bump(obj, res)
            self._objs[self._key(res, ns, name)] = obj
            self._notify("ADDED", res, obj)
            return obj

    def replace(
        self, res: Resource, ns: str | None, name: str, obj: Obj, dry_run: bool = False, check_version: bool = True
    ) -> Obj:
        with self.lock:
            current = self.get(res, ns, name)
            sent = (obj.get("metadata") or {}).get("resourceVersion")
            if check_version and sent and sent != current["metadata"]["resourceVersion"]:
                raise ApiError(
                    409,
                    "Conflict",
                    f'Operation cannot be fulfilled on {res.qualified} "{name}": the object has been modified; '
                    "please apply your changes to the latest version and try again",
                    {"name": name, "group": res.group, "kind": res.plural},
                )
            new = copy.deepcopy(obj)
            meta = new.setdefault("metadata", {})
            for keep in ("uid", "creationTimestamp", "name", "namespace"):
                if keep in current["metadata"]:
                    meta[keep] = current["metadata"][keep]
            if new.get("spec") != current.get("spec"):
                meta["generation"] = current["metadata"].get("generation", 1) + 1
            else:
                meta["generation"] = current["metadata"].get("generation", 1)
            new["apiVersion"], new["kind"] = res.group_version, res.kind
            if dry_run:
                meta["resourceVersion"] = current["metadata"]["resourceVersion"]
                return new
            self._bump(new, res)
            self._objs[self._key(res, ns, name)] = new
            self._notify("MODIFIED", res, new)
            return new

    def update(self, res: Resource, ns: str | None, name: str, change: Callable[[Obj], None]) -> Obj:
        """Controller-side update (the twin's own controllers): no version check."""
        with self.lock:
            obj = copy.deepcopy(self.get(res, ns, name))
            change(obj)
            return self.replace(res, ns, name, obj, check_version=False)

    def delete(self, res: Resource, ns: str | None, name: str, dry_run: bool = False) -> Obj:
        with self.lock:
            obj = self.get(res, ns, name)
            if not dry_run:
                del self._objs[self._key(res, ns, name)]
                self.revision = next(self._rv)
                self.changed[res.qualified] = self.revision
                self._notify("DELETED", res, obj)
            return obj

    def _notify(self, event: str, res: Resource, obj: Obj) -> None:
        for fn in self.listeners:
            fn(event, res, obj)


def setting(*path: str, value: Any) -> Callable[[Obj], None]:
    """A change for `Store.update` that sets the field at `path` (a controller writing what it computed)."""

    def change(o: Obj) -> None:
        for key in path[:-1]:
            o = o.setdefault(key, {})
        o[path[-1]] = value

    return change
