"""The twin's Kubernetes API: request routing over the store, as the official client and kubectl expect."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import parse_qs

from console.twin import resources as r
from console.twin.store import ApiError, Obj, Store, json_patch, merge_patch

MUTATING = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
VERSION = {
    "major": "1",
    "minor": "30",
    "gitVersion": "v1.30.0-gpuops-twin",
    "gitCommit": "twin",
    "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z",
    "goVersion": "go1.22",
    "compiler": "gc",
    "platform": "linux/amd64",
}


@dataclass(frozen=True)
class DenyRule:
    """`verb resource[/subresource] [namespace]`, `*` anywhere: what SelfSubjectAccessReview refuses."""

    verb: str
    resource: str
    namespace: str = "*"

    @classmethod
    def parse(cls, text: str) -> DenyRule:
        parts = text.split()
        if len(parts) not in (2, 3):
            raise ValueError(f"deny rule {text!r}: expected 'VERB RESOURCE[/SUB] [NAMESPACE]'")
        return cls(*parts)

    def matches(self, verb: str, resource: str, namespace: str) -> bool:
        return self.verb in ("*", verb) and self.resource in ("*", resource) and self.namespace in ("*", namespace)


REASONS = {409: "Conflict", 429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable", 504: "Timeout"}


@dataclass
class ApiFault:
    """The next `count` requests whose method matches and whose path contains `path` fail with `code`
    (`count` -1: every one, until cleared): how retries and permanent failures are tested."""

    method: str
    path: str
    code: int
    count: int = 1

    @classmethod
    def parse(cls, spec: dict[str, Any]) -> ApiFault:
        code = int(spec.get("code", 500))
        if code not in REASONS:
            raise ApiError(422, "Invalid", f"code: one of {sorted(REASONS)}, got {code}")
        count = int(spec.get("count", 1))
        if count == 0 or count < -1:
            raise ApiError(422, "Invalid", "count: a positive number, or -1 for every request")
        return cls(str(spec.get("method", "*")).upper(), str(spec.get("path", "")), code, count)

    def error(self, path: str) -> Response:
        reason = REASONS[self.code]
        return Response(self.code, ApiError(self.code, reason, f"injected by the twin: {reason} on {path}").status())


@dataclass
class Response:
    code: int
    body: Any
    content_type: str = "application/json"


@dataclass
class KubeApi:
    store: Store
    server_address: str = "127.0.0.1"
    deny: list[DenyRule] = field(default_factory=list)
    user: str = "twin-operator"
    faults: list[ApiFault] = field(default_factory=list)

    def allowed(self, verb: str, resource: str, namespace: str) -> bool:
        return not any(d.matches(verb, resource, namespace) for d in self.deny)

    def handle(self, method: str, path: str, query: str, headers: dict[str, str], body: bytes) -> Response:
        for f in self.faults:
            if f.count != 0 and f.method in ("*", method) and f.path in path:
                f.count -= f.count > 0
                return f.error(path)
        try:
            return self._route(method, path.rstrip("/") or "/", parse_qs(query), headers, body)
        except ApiError as e:
            return Response(e.code, e.status())

    # --- routing ------------------------------------------------------------------------------------

    def _route(self, method: str, path: str, q: dict[str, list[str]], headers: dict[str, str], body: bytes) -> Response:
        if path == "/api":
            return Response(200, r.api_versions(self.server_address))
        found = _discovery(path)
        if isinstance(found, Response):
            return found
        res, ns, name, sub = found
        if q.get("watch", ["false"])[0] in ("true", "1"):
            raise ApiError(405, "MethodNotAllowed", "the twin serves list and get; poll instead of watch")
        verb = MUTATING.get(method) or ("get" if name else "list")
        resource_name = f"{res.plural}/{sub}" if sub else res.plural
        if method in MUTATING and not self.allowed(verb, resource_name, ns or ""):
            raise ApiError(
                403,
                "Forbidden",
                f'{res.qualified} "{name or ""}" is forbidden: User "{self.user}" cannot {verb} '
                f'resource "{resource_name}" in API group "{res.group}"' + (f' in the namespace "{ns}"' if ns else ""),
                {"name": name or "", "group": res.group, "kind": res.plural},
            )
        dry_run = "All" in q.get("dryRun", [])
        if res.plural == "selfsubjectaccessreviews":
            return self._access_review(_json(body))
        if not name:
            return self._collection(method, res, ns, q, headers, body, dry_run)
        if sub == "scale":
            return self._scale(method, res, ns, name, headers, body, dry_run)
        return self._object(method, res, ns, name, headers, body, dry_run)

    def _collection(
        self,
        method: str,
        res: r.Resource,
        ns: str | None,
        q: dict[str, list[str]],
        headers: dict[str, str],
        body: bytes,
        dry_run: bool,
    ) -> Response:
        if method == "GET":
            return self._list(res, ns, q, headers)
        if method == "POST":
            return Response(201, self.store.create(res, ns, _json(body), dry_run=dry_run))
        raise ApiError(405, "MethodNotAllowed", f"{method} is not allowed on a collection")

    def _object(
        self,
        method: str,
        res: r.Resource,
        ns: str | None,
        name: str,
        headers: dict[str, str],
        body: bytes,
        dry_run: bool,
    ) -> Response:
        if method == "GET":
            return Response(200, self._maybe_table(res, [self.store.get(res, ns, name)], headers, single=True))
        if method == "PUT":
            new = _json(body)
            _validate(res, new)
            return Response(200, self.store.replace(res, ns, name, new, dry_run))
        if method == "PATCH":
            current = self.store.get(res, ns, name)
            patched = _apply_patch(current, headers.get("content-type", ""), body)
            _validate(res, patched)
            return Response(200, self.store.replace(res, ns, name, patched, dry_run))
        if method == "DELETE":
            self.store.delete(res, ns, name, dry_run)
            return Response(
                200,
                {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "metadata": {},
                    "status": "Success",
                    "details": {"name": name, "group": res.group, "kind": res.plural},
                },
            )
        raise ApiError(405, "MethodNotAllowed", f"{method} is not allowed")

    def _list(self, res: r.Resource, ns: str | None, q: dict[str, list[str]], headers: dict[str, str]) -> Response:
        objs = self.store.list(res, ns, q.get("labelSelector", [""])[0], q.get("fieldSelector", [""])[0])
        return Response(200, self._maybe_table(res, objs, headers))

    def _maybe_table(self, res: r.Resource, objs: list[Obj], headers: dict[str, str], single: bool = False) -> Obj:
        rv = str(self.store.revision)
        if "as=Table" in headers.get("accept", ""):
            return r.as_table(res.plural, objs, rv)
        if single:
            return objs[0]
        return {
            "kind": f"{res.kind}List",
            "apiVersion": res.group_version,
            "metadata": {"resourceVersion": rv},
            "items": objs,
        }

    def _scale(
        self,
        method: str,
        res: r.Resource,
        ns: str | None,
        name: str,
        headers: dict[str, str],
        body: bytes,
        dry_run: bool,
    ) -> Response:
        obj = self.store.get(res, ns, name)
        scale = _scale_of(obj)
        if method == "GET":
            return Response(200, scale)
        if method == "PUT":
            new_scale = _json(body)
        elif method == "PATCH":
            new_scale = _apply_patch(scale, headers.get("content-type", ""), body)
        else:
            raise ApiError(405, "MethodNotAllowed", f"{method} is not allowed on scale")
        replicas = (new_scale.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or replicas < 0:
            raise ApiError(
                422,
                "Invalid",
                f'Scale.autoscaling "{name}" is invalid: spec.replicas: Invalid value: '
                f"{replicas!r}: must be greater than or equal to 0",
                {
                    "name": name,
                    "group": "autoscaling",
                    "kind": "Scale",
                    "causes": [{"field": "spec.replicas", "reason": "FieldValueInvalid"}],
                },
            )
        updated = copy.deepcopy(obj)
        updated["spec"]["replicas"] = replicas
        # The version a client sends on the Scale guards the deployment itself.
        updated["metadata"]["resourceVersion"] = (new_scale.get("metadata") or {}).get("resourceVersion") or obj[
            "metadata"
        ]["resourceVersion"]
        saved = self.store.replace(res, ns, name, updated, dry_run)
        return Response(200, _scale_of(saved))

    def _access_review(self, review: Obj) -> Response:
        attrs = (review.get("spec") or {}).get("resourceAttributes") or {}
        resource = attrs.get("resource", "") + (f"/{attrs['subresource']}" if attrs.get("subresource") else "")
        ok = self.allowed(attrs.get("verb", ""), resource, attrs.get("namespace", ""))
        out = copy.deepcopy(review)
        out.update({"kind": "SelfSubjectAccessReview", "apiVersion": "authorization.k8s.io/v1"})
        out.setdefault("metadata", {})
        out["status"] = {"allowed": ok}
        if not ok:
            out["status"].update({"denied": True, "reason": "denied by the twin's deny list"})
        return Response(201, out)


def _json(body: bytes) -> Obj:
    try:
        doc = json.loads(body or b"{}")
    except json.JSONDecodeError as e:
        raise ApiError(400, "BadRequest", f"the request body is not JSON: {e}") from None
    if not isinstance(doc, dict):
        raise ApiError(400, "BadRequest", "the request body must be a JSON object")
    return doc


def _apply_patch(current: Obj, content_type: str, body: bytes) -> Obj:
    ctype = content_type.split(";")[0].strip()
    if ctype == "application/json-patch+json":
        ops = json.loads(body or b"[]")
        if not isinstance(ops, list):
            raise ApiError(400, "BadRequest", "a JSON patch is a list of operations")
        return json_patch(current, ops)
    if ctype in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
        return cast("dict[str, Any]", merge_patch(current, _json(body)))
    raise ApiError(415, "UnsupportedMediaType", f"the twin does not accept patches of type {ctype!r}")


def _scale_of(obj: Obj) -> Obj:
    meta = obj["metadata"]
    labels = ((obj.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp") if k in meta
        },
        "spec": {"replicas": obj["spec"].get("replicas", 0)},
        "status": {
            "replicas": (obj.get("status") or {}).get("replicas", 0),
            "selector": ",".join(f"{k}={v}" for k, v in sorted(labels.items())),
        },
    }


def _validate(res: r.Resource, obj: Obj) -> None:
    """The few validations the twin's callers rely on getting a 422 for."""
    name = obj.get("metadata", {}).get("name", "")
    if res.plural == "deployments":
        replicas = (obj.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or replicas < 0:
            raise ApiError(
                422,
                "Invalid",
                f'Deployment.apps "{name}" is invalid: spec.replicas: Invalid value: '
                f"{replicas!r}: must be greater than or equal to 0",
                {
                    "name": name,
                    "group": "apps",
                    "kind": "Deployment",
                    "causes": [{"field": "spec.replicas", "reason": "FieldValueInvalid"}],
                },
            )
    if res.plural == "configmaps":
        for k, v in (obj.get("data") or {}).items():
            if not isinstance(v, str):
                raise ApiError(
                    422,
                    "Invalid",
                    f'ConfigMap "{name}" is invalid: data[{k}]: must be a string',
                    {
                        "name": name,
                        "kind": "ConfigMap",
                        "causes": [{"field": f"data[{k}]", "reason": "FieldValueInvalid"}],
                    },
                )
    if res.plural == "horizontalpodautoscalers":
        spec = obj.get("spec") or {}
        lo, hi = spec.get("minReplicas", 1), spec.get("maxReplicas", 0)
        if not isinstance(lo, int) or not isinstance(hi, int) or lo < 1 or hi < lo:
            raise ApiError(
                422,
                "Invalid",
                f'HorizontalPodAutoscaler "{name}" is invalid: spec.minReplicas: '
                f"must be at least 1 and at most maxReplicas ({lo!r} > {hi!r})",
                {
                    "name": name,
                    "kind": "HorizontalPodAutoscaler",
                    "causes": [{"field": "spec.minReplicas", "reason": "FieldValueInvalid"}],
                },
            )


def _not_found(path: str) -> ApiError:
    return ApiError(404, "NotFound", f"the server could not find the requested resource ({path})")


def _discovery(path: str) -> Response | tuple[r.Resource, str | None, str | None, str]:
    """A discovery document for the path, or what it names: (resource, namespace, name, subresource)."""
    if path == "/version":
        return Response(200, VERSION)
    if path == "/apis":
        return Response(200, r.api_group_list())
    parts = path.strip("/").split("/")
    if parts[0] == "api" and len(parts) >= 2:
        group, version, rest = "", parts[1], parts[2:]
    elif parts[0] == "apis" and len(parts) == 2:
        grp = r.api_group(parts[1])
        if grp is None:
            raise _not_found(path)
        return Response(200, grp)
    elif parts[0] == "apis" and len(parts) > 2:
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        raise _not_found(path)
    if not rest:
        doc = r.resource_list(group, version)
        if doc is None:
            raise _not_found(path)
        return Response(200, doc)
    ns: str | None = None
    if rest[0] == "namespaces" and len(rest) >= 3:
        ns, rest = rest[1], rest[2:]
    res = r.BY_PATH.get((group, version, rest[0]))
    if res is None:
        raise _not_found(path)
    name = rest[1] if len(rest) > 1 else None
    sub = rest[2] if len(rest) > 2 else ""
    if sub and sub not in res.subresources:
        raise _not_found(path)
    return res, ns, name, sub
