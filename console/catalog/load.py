"""Load `fleet.yaml` into a `Catalog`, reporting every problem with file, line and field."""

from __future__ import annotations

from collections.abc import Container, Iterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from console.catalog.model import Catalog, Team
from console.catalog.yamlpos import CatalogIssue, FileRefused, Located, Path_, dotted, parse_located, read_text


class CatalogError(Exception):
    def __init__(self, issues: list[CatalogIssue]):
        self.issues = issues
        super().__init__("\n".join(str(i) for i in issues))


def load_catalog(path: str | Path) -> Catalog:
    p = Path(path)
    try:
        text = read_text(p)
    except OSError as e:
        raise CatalogError([CatalogIssue(str(p), 0, "(file)", f"cannot read: {e.strerror or e}")]) from e
    except FileRefused as e:  # binary or huge: refused before YAML sees it
        raise CatalogError([CatalogIssue(str(p), e.line, "(file)", str(e))]) from None
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


def dump_catalog(catalog: Catalog, header: str = "") -> str:
    """The catalog as YAML that `parse_catalog` reads back equal (defaults left out), under `header`'s
    comment lines: a copy a program made, such as the history's past events added (`gpuops twin --history`)."""
    import yaml

    comment = "".join(f"# {line}\n" for line in header.splitlines())
    return comment + yaml.safe_dump(
        catalog.model_dump(mode="json", exclude_defaults=True, by_alias=True), sort_keys=False
    )


PLACEHOLDER = "# placeholder:"


def placeholders(path: str | Path) -> list[CatalogIssue]:
    """Each value marked `# placeholder: why` (what `gpuops catalog discover` could not know), by its line
    and field; the file is taken to load (`load_catalog` first)."""
    p = Path(path)
    text = read_text(p)
    marked = {i + 1: ln.split(PLACEHOLDER, 1)[1].strip() for i, ln in enumerate(text.splitlines()) if PLACEHOLDER in ln}
    if not marked:
        return []
    loc = parse_located(text, str(p))
    # The deepest field on each marked line: `monthly_budget`, not its team.
    at: dict[int, Path_] = {}
    for path_, line in loc.lines.items():
        if line in marked and len(path_) >= len(at.get(line, ())):
            at[line] = path_
    return [
        CatalogIssue(str(p), line, dotted(at.get(line, ())), f"placeholder, replace it: {why}")
        for line, why in sorted(marked.items())
    ]


def issue_message(err: ErrorDetails | dict[str, Any]) -> str:
    msg = str(err["msg"])
    if err["type"] == "extra_forbidden":
        return "unknown field"
    if err["type"] == "missing":
        return "required field is missing"
    return msg.removeprefix("Value error, ")


# A cross-reference problem: where in the file, and what is wrong.
Problem = tuple[Path_, str]


def _references(c: Catalog, loc: Located, filename: str) -> Iterator[CatalogIssue]:
    """Cross-references a schema cannot express: unknown names and duplicates, section by section."""
    for check in (_duplicates, _clusters, _pools, _teams, _services, _jobs, _queues, _events, _prices):
        for path, message in check(c):
            yield CatalogIssue(filename, loc.line_of(path), dotted(path), message)


def _duplicates(c: Catalog) -> Iterator[Problem]:
    for section in ("clusters", "regions", "gpu_models", "pools", "teams", "services", "jobs", "events"):
        seen: dict[str, int] = {}
        for i, item in enumerate(getattr(c, section)):
            if item.name in seen:
                yield (section, i, "name"), f"duplicate name {item.name!r} (first at index {seen[item.name]})"
            seen.setdefault(item.name, i)


def _clusters(c: Catalog) -> Iterator[Problem]:
    regions = set(c.region_names())
    for i, cl in enumerate(c.clusters):
        for j, r in enumerate(cl.regions):
            if r not in regions:
                yield ("clusters", i, "regions", j), f"unknown region {r!r}"
    # The console sums what it reads cluster by cluster: a region read from two clusters would count twice.
    read_from: dict[str, str] = {}
    read = {x.name for x in c.read_clusters()}
    for i, cl in enumerate(c.clusters):
        if cl.name not in read:
            continue
        for j, r in enumerate(cl.regions):
            if r in read_from:
                where = "with a global view, every cluster" if c.global_view else "a cluster with its own Prometheus"
                yield (
                    ("clusters", i, "regions", j),
                    (
                        f"region {r!r} is already in cluster {read_from[r]!r} ({where} is read on its own: "
                        "a region in two would count twice)"
                    ),
                )
            read_from.setdefault(r, cl.name)
    if c.global_view is not None and c.global_view.holds == "records":
        # Node and GPU series stay in each cluster: its pools' drill-downs and node checks read them there.
        for i, cl in enumerate(c.clusters):
            if not cl.prometheus:
                yield (
                    ("clusters", i, "prometheus"),
                    "a global view that holds the records alone (global.holds: records) needs each cluster's own "
                    "Prometheus, where its node and GPU series are read",
                )


def _pools(c: Catalog) -> Iterator[Problem]:
    regions = set(c.region_names())
    models = {m.name for m in c.gpu_models}
    for i, p in enumerate(c.pools):
        for r in p.nodes:
            if r not in regions:
                yield ("pools", i, "nodes", r), f"unknown region {r!r}"
        if p.gpus_per_node and p.gpu_model is None:
            yield ("pools", i, "gpu_model"), "a pool with GPUs needs a gpu_model"
        models_of: list[tuple[str | None, str | None]] = [(None, p.gpu_model), *p.gpu_model_by_region.items()]
        for where, m in models_of:
            if m is not None and m not in models:
                path: Path_ = ("pools", i, "gpu_model") if where is None else ("pools", i, "gpu_model_by_region", where)
                yield path, f"unknown GPU model {m!r}"
        if p.mig and not p.gpus_per_node:
            yield ("pools", i, "mig"), "MIG needs GPUs on the node"


def _teams(c: Catalog) -> Iterator[Problem]:
    namespaces: dict[str, str] = {}
    tiers, billing = {x.name for x in c.prices.sla_tiers}, {x.name for x in c.prices.billing_modes}
    for i, t in enumerate(c.teams):
        for j, ns in enumerate(t.namespaces):
            if ns in namespaces:
                yield ("teams", i, "namespaces", j), f"namespace {ns!r} already belongs to {namespaces[ns]!r}"
            namespaces.setdefault(ns, t.name)
        for ns in t.quota_gpus:
            if ns not in t.namespaces:
                yield ("teams", i, "quota_gpus", ns), f"namespace {ns!r} is not one of the team's"
        if t.sla_tier not in tiers:
            yield ("teams", i, "sla_tier"), f"unknown SLA tier {t.sla_tier!r} (prices.sla_tiers)"
        if t.billing not in billing:
            yield ("teams", i, "billing"), f"unknown billing mode {t.billing!r} (prices.billing_modes)"


def _owner(
    teams: dict[str, Team], pools: Container[str], where: Path_, team: str, ns: str, pool: str
) -> Iterator[Problem]:
    """A service's or a job's team, namespace and pool."""
    if team not in teams:
        yield (*where, "team"), f"unknown team {team!r}"
    elif ns not in teams[team].namespaces:
        yield (*where, "namespace"), f"namespace {ns!r} is not one of team {team!r}'s"
    if pool not in pools:
        yield (*where, "pool"), f"unknown pool {pool!r}"


def _services(c: Catalog) -> Iterator[Problem]:
    regions = set(c.region_names())
    pools = {p.name: p for p in c.pools}
    teams = {t.name: t for t in c.teams}
    for i, s in enumerate(c.services):
        yield from _owner(teams, pools, ("services", i), s.team, s.namespace, s.pool)
        for j, r in enumerate(s.regions):
            if r not in regions:
                yield ("services", i, "regions", j), f"unknown region {r!r}"
            elif s.pool in pools and r not in pools[s.pool].nodes:
                yield ("services", i, "regions", j), f"pool {s.pool!r} has no nodes in {r!r}"
        for key in ("replicas", "base_rps"):
            for r in getattr(s, key):
                if r not in s.regions:
                    yield ("services", i, key, r), f"region {r!r} is not one of the service's regions"
        if s.fallback.mode == "cpu" and not s.fallback.deployment:
            yield ("services", i, "fallback", "deployment"), "a cpu fallback names its CPU deployment"
        if s.storage_io and s.pool in pools and pools[s.pool].storage is None:
            yield ("services", i, "storage_io"), f"pool {s.pool!r} has no storage: give it one (kind, ceiling_mb_s)"


def _jobs(c: Catalog) -> Iterator[Problem]:
    pools = {p.name: p for p in c.pools}
    teams = {t.name: t for t in c.teams}
    for i, jb in enumerate(c.jobs):
        yield from _owner(teams, pools, ("jobs", i), jb.team, jb.namespace, jb.pool)
        if jb.pool in pools and jb.region not in pools[jb.pool].nodes:
            yield ("jobs", i, "region"), f"pool {jb.pool!r} has no nodes in {jb.region!r}"


def _queues(c: Catalog) -> Iterator[Problem]:
    if c.queues is None:
        return
    pools = {p.name: p for p in c.pools}
    q = c.queues
    for section in ("flavors", "cluster_queues"):
        seen: set[str] = set()
        for i, item in enumerate(getattr(q, section)):
            if item.name in seen:
                yield ("queues", section, i, "name"), f"duplicate name {item.name!r}"
            seen.add(item.name)
    for i, f in enumerate(q.flavors):
        pool = pools.get(f.pool)
        if pool is None:
            yield ("queues", "flavors", i, "pool"), f"unknown pool {f.pool!r}"
        elif not pool.gpus_per_node:
            yield ("queues", "flavors", i, "pool"), f"pool {f.pool!r} has no GPUs to queue for"
        elif f.region not in pool.nodes:
            yield ("queues", "flavors", i, "region"), f"pool {f.pool!r} has no nodes in {f.region!r}"
    flavors, cqs = {f.name for f in q.flavors}, {x.name for x in q.cluster_queues}
    for i, cq in enumerate(q.cluster_queues):
        for name in cq.quota:
            if name not in flavors:
                yield ("queues", "cluster_queues", i, "quota", name), f"unknown flavor {name!r}"
    local: set[tuple[str, str]] = set()
    for i, lq in enumerate(q.local_queues):
        if c.team_of_namespace(lq.namespace) is None:
            yield ("queues", "local_queues", i, "namespace"), f"namespace {lq.namespace!r} belongs to no team"
        if lq.cluster_queue not in cqs:
            yield ("queues", "local_queues", i, "cluster_queue"), f"unknown cluster queue {lq.cluster_queue!r}"
        if (lq.namespace, lq.name) in local:
            yield ("queues", "local_queues", i, "name"), f"duplicate local queue {lq.name!r} in {lq.namespace!r}"
        local.add((lq.namespace, lq.name))


def _events(c: Catalog) -> Iterator[Problem]:
    services = {x.name for x in c.services}
    for i, e in enumerate(c.events):
        if e.end <= e.start:
            yield ("events", i, "end"), "the event ends before it starts"
        for j, svc_name in enumerate(e.services):
            if svc_name not in services:
                yield ("events", i, "services", j), f"unknown service {svc_name!r}"


def _prices(c: Catalog) -> Iterator[Problem]:
    for m in sorted({m for p in c.pools for r in p.nodes if (m := p.model_in(r)) is not None}):
        if m not in c.prices.gpu_hourly:
            yield ("prices", "gpu_hourly"), f"no hourly price for GPU model {m!r}"
