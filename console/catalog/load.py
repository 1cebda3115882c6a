"""Load `fleet.yaml` into a `Catalog`, reporting every problem with file, line and field."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from pathlib import Path

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from console.catalog.model import Catalog
from console.catalog.yamlpos import CatalogIssue, Located, Path_, dotted, parse_located


class CatalogError(Exception):
    def __init__(self, issues: list[CatalogIssue]):
        self.issues = issues
        super().__init__("\n".join(str(i) for i in issues))


def load_catalog(path: str | Path) -> Catalog:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise CatalogError([CatalogIssue(str(p), 0, "(file)", f"cannot read: {e.strerror or e}")]) from e
    return parse_catalog(text, str(p))


def parse_catalog(text: str, filename: str) -> Catalog:
    loc = parse_located(text, filename)
    if loc.issues and loc.data is None:
        raise CatalogError(loc.issues)
    issues = list(loc.issues)
    if not isinstance(loc.data, dict):
        raise CatalogError([CatalogIssue(filename, 1, "(document)", "the catalog must be a mapping")])
    try:
        catalog = Catalog.model_validate(loc.data)
    except ValidationError as e:
        for err in e.errors():
            path: Path_ = tuple(err["loc"])
            issues.append(CatalogIssue(filename, loc.line_of(path), dotted(path), issue_message(err)))
        raise CatalogError(issues) from None
    issues.extend(_references(catalog, loc, filename))
    if issues:
        raise CatalogError(sorted(issues, key=lambda i: i.line))
    return catalog


def issue_message(err: ErrorDetails | dict[str, Any]) -> str:
    msg = str(err["msg"])
    if err["type"] == "extra_forbidden":
        return "unknown field"
    if err["type"] == "missing":
        return "required field is missing"
    return msg.removeprefix("Value error, ")


def _references(c: Catalog, loc: Located, filename: str) -> Iterator[CatalogIssue]:
    """Cross-references a schema cannot express: unknown names and duplicates."""

    def issue(path: Path_, message: str) -> CatalogIssue:
        return CatalogIssue(filename, loc.line_of(path), dotted(path), message)

    for section in ("clusters", "regions", "gpu_models", "pools", "teams", "services", "jobs", "events"):
        seen: dict[str, int] = {}
        for i, item in enumerate(getattr(c, section)):
            if item.name in seen:
                yield issue((section, i, "name"), f"duplicate name {item.name!r} (first at index {seen[item.name]})")
            seen.setdefault(item.name, i)

    regions = set(c.region_names())
    models = {m.name for m in c.gpu_models}
    pools = {p.name: p for p in c.pools}
    teams = {t.name: t for t in c.teams}
    namespaces: dict[str, str] = {}

    for i, cl in enumerate(c.clusters):
        for j, r in enumerate(cl.regions):
            if r not in regions:
                yield issue(("clusters", i, "regions", j), f"unknown region {r!r}")
    for i, p in enumerate(c.pools):
        for r in p.nodes:
            if r not in regions:
                yield issue(("pools", i, "nodes", r), f"unknown region {r!r}")
        if p.gpus_per_node and p.gpu_model is None:
            yield issue(("pools", i, "gpu_model"), "a pool with GPUs needs a gpu_model")
        models_of: list[tuple[str | None, str | None]] = [(None, p.gpu_model), *p.gpu_model_by_region.items()]
        for where, m in models_of:
            if m is not None and m not in models:
                path: Path_ = ("pools", i, "gpu_model") if where is None else ("pools", i, "gpu_model_by_region", where)
                yield issue(path, f"unknown GPU model {m!r}")
        if p.mig and not p.gpus_per_node:
            yield issue(("pools", i, "mig"), "MIG needs GPUs on the node")
    for i, t in enumerate(c.teams):
        for j, ns in enumerate(t.namespaces):
            if ns in namespaces:
                yield issue(("teams", i, "namespaces", j), f"namespace {ns!r} already belongs to {namespaces[ns]!r}")
            namespaces.setdefault(ns, t.name)
        for ns in t.quota_gpus:
            if ns not in t.namespaces:
                yield issue(("teams", i, "quota_gpus", ns), f"namespace {ns!r} is not one of the team's")
        if t.sla_tier not in {x.name for x in c.prices.sla_tiers}:
            yield issue(("teams", i, "sla_tier"), f"unknown SLA tier {t.sla_tier!r} (prices.sla_tiers)")
        if t.billing not in {x.name for x in c.prices.billing_modes}:
            yield issue(("teams", i, "billing"), f"unknown billing mode {t.billing!r} (prices.billing_modes)")
    for i, s in enumerate(c.services):
        if s.team not in teams:
            yield issue(("services", i, "team"), f"unknown team {s.team!r}")
        elif s.namespace not in teams[s.team].namespaces:
            yield issue(("services", i, "namespace"), f"namespace {s.namespace!r} is not one of team {s.team!r}'s")
        if s.pool not in pools:
            yield issue(("services", i, "pool"), f"unknown pool {s.pool!r}")
        for j, r in enumerate(s.regions):
            if r not in regions:
                yield issue(("services", i, "regions", j), f"unknown region {r!r}")
            elif s.pool in pools and r not in pools[s.pool].nodes:
                yield issue(("services", i, "regions", j), f"pool {s.pool!r} has no nodes in {r!r}")
        for key in ("replicas", "base_rps"):
            for r in getattr(s, key):
                if r not in s.regions:
                    yield issue(("services", i, key, r), f"region {r!r} is not one of the service's regions")
        if s.fallback.mode == "cpu" and not s.fallback.deployment:
            yield issue(("services", i, "fallback", "deployment"), "a cpu fallback names its CPU deployment")
    for i, jb in enumerate(c.jobs):
        if jb.team not in teams:
            yield issue(("jobs", i, "team"), f"unknown team {jb.team!r}")
        elif jb.namespace not in teams[jb.team].namespaces:
            yield issue(("jobs", i, "namespace"), f"namespace {jb.namespace!r} is not one of team {jb.team!r}'s")
        if jb.pool not in pools:
            yield issue(("jobs", i, "pool"), f"unknown pool {jb.pool!r}")
        elif jb.region not in pools[jb.pool].nodes:
            yield issue(("jobs", i, "region"), f"pool {jb.pool!r} has no nodes in {jb.region!r}")
    for i, e in enumerate(c.events):
        if e.end <= e.start:
            yield issue(("events", i, "end"), "the event ends before it starts")
        for j, svc_name in enumerate(e.services):
            if svc_name not in {x.name for x in c.services}:
                yield issue(("events", i, "services", j), f"unknown service {svc_name!r}")
    for m in {p.model_in(r) for p in c.pools for r in p.nodes} - {None}:
        if m not in c.prices.gpu_hourly:
            yield issue(("prices", "gpu_hourly"), f"no hourly price for GPU model {m!r}")
