"""Compile a monitoring mixin (jsonnet) into Prometheus rule files.

Ours is `alerts/mixin.libsonnet` (the working directory's, else the one gpuops ships: console/content.py),
given its `_config` from the catalog and every named PromQL expression from `console.fleet.queries`; `--mixin`
compiles another team's, or a public one, through the same path.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

# gojsonnet: the same API as the C++ binding, measured 3-4x faster on this mixin (see the closing note).
import _gojsonnet as _jsonnet
import yaml

from console.atomic import PUBLISHED, write_atomic
from console.catalog.model import Catalog
from console.codegen.dashboards import BuiltDashboard, slug
from console.codegen.panels import demand_title
from console.content import ALERTS, alertmanager_template, local_or_shipped, mixin, shipped
from console.fleet import queries as q
from console.fleet.scope import for_rules, node_map

OUR_MIXIN = mixin(shipped(ALERTS))  # the one gpuops ships


def alerts_dir(alerts: Path | None) -> Path:
    return alerts if alerts is not None else local_or_shipped(ALERTS)


class MixinError(Exception):
    """A mixin that does not compile: the message is jsonnet's, with its file, line and column."""


@dataclass(frozen=True)
class RuleFiles:
    name: str
    rules: Path
    alerts: Path
    recording: int
    alerting: int


# The multi-window, multi-burn-rate pairs (Google's SRE workbook): 1h/5m page, 6h/30m page, 3d/6h ticket.
SLO_WINDOWS = ("5m", "30m", "1h", "6h", "3d")
EVENT_LEAD_S = 7 * 86400  # capacity is checked from a week before an event until its end


def catalog_team(catalog: Catalog, service: str) -> str:
    return next(s.team for s in catalog.services if s.name == service)


def gpuops_config(catalog: Catalog, dashboards: list[BuiltDashboard] | None = None) -> dict[str, Any]:
    """The mixin's `_config` from the catalog. `dashboards` are the built ones (`build_all`); without them
    they are built in memory, so alerts always link panels and variables that exist."""
    from console.codegen.dashboards import build_all, panel_urls, panel_variables

    built = dashboards if dashboards is not None else build_all(catalog)
    panels, variables = panel_urls(built, catalog.grafana.url), panel_variables(built)
    slos = []
    for s in catalog.services:
        le = f"{s.latency_slo_ms / 1000:g}"  # as the exporter writes `le`
        miss = {w: q.slo_miss_ratio(s.name, le, w) for w in SLO_WINDOWS}
        failed = {w: q.availability_miss_ratio(s.name, w) for w in SLO_WINDOWS}
        slos.append(
            {
                "service": s.name,
                "team": s.team,
                "le": le,
                "target": s.latency_slo_target,
                "miss": miss,
                "availability": {"target": s.availability_slo_target, "miss": failed},
            }
        )
    return {
        "exporters": [{"name": k, "selector": v} for k, v in catalog.monitoring.selectors().items() if v.strip()],
        "queries": q.named(),
        "clusterLabel": catalog.monitoring.cluster_label,
        "clusterDown": q.cluster_down(catalog.monitoring.cluster_label),
        "poolRecords": [{"record": name, "expr": q.POOLS[part]} for part, name in q.POOL_RECORDS.items()],
        "panels": panels,
        "panelVars": variables,
        "runbookBase": catalog.grafana.runbooks_url.rstrip("/"),
        "services": [{"service": s.name, "team": s.team} for s in catalog.services],
        "slos": slos,
        "budgets": [{"team": t.name, "monthly": t.monthly_budget} for t in catalog.teams],
        "storage": [
            {
                "pool": p.name,
                "ceiling": p.storage.ceiling_bytes_s,
                "ratio": q.storage_ceiling_ratio(p.name, p.storage.ceiling_bytes_s),
            }
            for p in catalog.pools
            if p.storage
        ],
        # The teams on a monthly package (per_job teams are projected hourly: a Job is priced once it ran).
        "packages": [
            {"team": t.name, "price": m.package_price, "included": m.included_gpu_hours}
            for t in catalog.teams
            if (m := catalog.prices.billing_mode(t.billing)).name == "monthly_package"
        ],
        "tiers": [{"team": t.name, "multiplier": catalog.prices.tier(t.sla_tier).multiplier} for t in catalog.teams],
        "namespaceGpuCost": q.namespace_gpu_cost_per_hour(catalog.mig_per_gpu()),
        "teamGpus": q.team_gpus(catalog.mig_per_gpu()),
        "capacity": [
            {
                "service": s.name,
                "team": s.team,
                # Requests a second its ready replicas serve at the service's target utilisation.
                "expr": q.service_capacity_rps(
                    s.namespace,
                    s.deployment,
                    s.regions,
                    s.capacity_per_replica_rps,
                ),
            }
            for s in catalog.services
        ],
        "events": [
            {
                "event": e.name,
                "multiplier": e.multiplier,
                "buffer": e.buffer,
                "services": [
                    {
                        "service": n,
                        "team": catalog_team(catalog, n),
                        "headroom": q.headroom_at_peak(n, e.multiplier),
                        "panel": f"gpuops-event-readiness/{slug(demand_title(n, e.name))}",
                    }
                    for n in e.services
                ],
                "window": q.event_window(e.start.timestamp(), e.end.timestamp(), EVENT_LEAD_S),
            }
            for e in catalog.events
        ],
    }


def compile_mixin(path: Path, jpath: tuple[Path, ...] = (), config: dict[str, Any] | None = None) -> dict[str, Any]:
    """`{"prometheusRules": {...}, "prometheusAlerts": {...}}`; a mixin without one gets no groups for it."""
    override = "{ _config+:: config }" if config is not None else "{}"
    snippet = f"""
        local config = std.parseJson(std.extVar('gpuops_config'));  // a local: parsed once
        local m = (import {json.dumps(str(path.resolve()))}) + {override};
        {{
          prometheusRules: if std.objectHasAll(m, 'prometheusRules') then m.prometheusRules else {{ groups: [] }},
          prometheusAlerts: if std.objectHasAll(m, 'prometheusAlerts') then m.prometheusAlerts else {{ groups: [] }},
        }}
    """
    try:
        out = _jsonnet.evaluate_snippet(
            "gpuops-build",
            snippet,
            jpathdir=[str(p) for p in jpath],
            ext_vars={"gpuops_config": json.dumps(config or {})},
        )
    except RuntimeError as e:
        raise MixinError(str(e).strip()) from None
    return cast("dict[str, Any]", json.loads(out))


def _count(doc: dict[str, Any], kind: str) -> int:
    return sum(1 for g in doc.get("groups", []) for r in g.get("rules", []) if kind in r)


def write_rules(doc: dict[str, Any], out_dir: Path, name: str) -> RuleFiles:
    """`<name>-rules.yaml` and `<name>-alerts.yaml`: sorted keys, written whole or not at all."""
    rules, alerts = doc["prometheusRules"], doc["prometheusAlerts"]
    paths = out_dir / f"{name}-rules.yaml", out_dir / f"{name}-alerts.yaml"
    for path, body in zip(paths, (rules, alerts), strict=True):
        write_atomic(path, yaml.safe_dump(body, sort_keys=True, allow_unicode=True, width=1000), mode=PUBLISHED)
    return RuleFiles(name, paths[0], paths[1], _count(rules, "record"), _count(alerts, "alert"))


def build_rules(
    catalog: Catalog,
    out_dir: Path,
    dashboards: list[BuiltDashboard] | None = None,
    speed: float = 1.0,
    alerts: Path | None = None,
) -> RuleFiles:
    """The rules of `catalog` from the mixin in `alerts` (default: ./alerts, else the shipped one); with
    `speed` > 1, for a twin whose clock runs that much faster: every alert's `for` shortened by the speed, so an
    alert waits the same simulated time it would on a real fleet."""
    source = mixin(alerts_dir(alerts))
    config = gpuops_config(catalog, dashboards)
    if speed != 1.0:
        config |= accelerated_for(speed, source)
    return write_rules(scoped(compile_mixin(source, config=config), catalog), out_dir, "gpuops")


# Alert groups that need every cluster's series (ClusterDown): a global view evaluates them.
GLOBAL_GROUPS = frozenset({"gpuops.clusters"})


@dataclass(frozen=True)
class SplitRules:
    """Built rules laid out for a global view that holds the records alone: each cluster runs `cluster` (the
    records and every alert of its own series), the global view `global_view` (the alerts of every cluster)."""

    cluster: tuple[Path, ...]
    global_view: tuple[Path, ...]


def split_for_global(built: RuleFiles) -> SplitRules:
    """`built`'s alerts in two files beside it: `<name>-cluster-alerts.yaml` and `<name>-global-alerts.yaml`."""
    doc = yaml.safe_load(built.alerts.read_text())
    groups = doc.get("groups", [])
    out = []
    for which, keep in (("cluster", False), ("global", True)):
        path = built.alerts.with_name(f"{built.name}-{which}-alerts.yaml")
        body = {"groups": [g for g in groups if (g["name"] in GLOBAL_GROUPS) is keep]}
        write_atomic(path, yaml.safe_dump(body, sort_keys=True, allow_unicode=True, width=1000), mode=PUBLISHED)
        out.append(path)
    return SplitRules((built.rules, out[0]), (out[1],))


def scoped(doc: dict[str, Any], catalog: Catalog) -> dict[str, Any]:
    """Every rule's expression read through the catalog's selectors, keeping its cluster label (scope.py):
    done to the compiled rules, so the named expressions and the mixin stay free of both."""
    rewrite = for_rules(catalog.monitoring, node_map(catalog))
    for part in doc.values():
        for group in part.get("groups", []):
            for rule in group.get("rules", []):
                rule["expr"] = rewrite(rule["expr"])
    return doc


_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def mixin_for(source: Path) -> dict[str, str]:
    """The mixin's `_config` durations that an alert waits or looks back over: each `for` (`regionDownFor: '2m'`)
    and each window (`idleWindow: '30m'`), as written there."""
    snippet = f"""
        local c = (import {json.dumps(str(source.resolve()))})._config;
        {{ [k]: c[k] for k in std.objectFieldsAll(c) if std.endsWith(k, 'For') || std.endsWith(k, 'Window') }}
    """
    return cast("dict[str, str]", json.loads(_jsonnet.evaluate_snippet("gpuops-for", snippet)))


MIN_WINDOW_S = 30  # a shortened window still holds several scrapes, or rate() and changes() read nothing


def accelerated_for(speed: float, source: Path) -> dict[str, str]:
    """`_config` overrides that divide each alert's `for` (at least 1s) and window (at least 30s) by `speed`."""
    out = {}
    for key, d in mixin_for(source).items():
        floor = MIN_WINDOW_S if key.endswith("Window") else 1
        out[key] = f"{max(floor, round(float(d[:-1]) * _UNIT_S[d[-1]] / speed))}s"
    return out


def alertmanager_config(catalog: Catalog, alerts: Path | None = None) -> dict[str, Any]:
    """The Alertmanager configuration, from `alertmanager.libsonnet` in `alerts` (as `build_rules`) and the
    catalog's teams."""
    teams = [
        {
            "name": t.name,
            "channel": t.slack_channel or f"#{t.name}-alerts",
            "pager": t.critical,
            "feishu": t.feishu_group,
        }
        for t in catalog.teams
    ]
    config = {"teams": teams, "alerting": catalog.alerting.model_dump()}
    try:
        out = _jsonnet.evaluate_file(
            str(alertmanager_template(alerts_dir(alerts))), tla_codes={"config": json.dumps(config)}
        )
    except RuntimeError as e:
        raise MixinError(str(e).strip()) from None
    return cast("dict[str, Any]", json.loads(out))


def expected_receivers(catalog: Catalog) -> dict[tuple[str, str], list[str]]:
    """What each team's alerts must reach, by (team, severity): the contract `gpuops lint` checks with amtool."""
    teams = [(t.name, t.critical) for t in catalog.teams] + [(catalog.alerting.platform_team, True)]
    out = {}
    for name, pager in teams:
        out[(name, "warning")] = [f"{name}-chat"]
        out[(name, "critical")] = [f"{name}-pagerduty", f"{name}-chat"] if pager else [f"{name}-chat"]
    return out


def build_alertmanager(catalog: Catalog, out_dir: Path, alerts: Path | None = None) -> Path:
    path = out_dir / "alertmanager.yaml"
    text = yaml.safe_dump(alertmanager_config(catalog, alerts), sort_keys=True, allow_unicode=True, width=1000)
    write_atomic(path, text, mode=PUBLISHED)
    return path
