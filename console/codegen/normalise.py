"""grafanalib's JSON, made current: the one place where its older shapes are corrected.

grafanalib 0.7 still writes fields from Grafana's Angular era. Here they are removed or moved to where
current Grafana (and its JSON schema, `gpuops lint`) expects them:
- dashboard: `__inputs`, `rows`, `hideControls`, `sharedCrosshair`, `style`, `timepicker.time_options` go;
  `schemaVersion` is set to `SCHEMA_VERSION`;
- panels: `span`, `height`, `minSpan`, `editable`, `error`, `maxDataPoints` go; threshold steps keep
  `{value, color}` only (grafanalib adds `op`, `yaxis`, `line`, `index`, and writes "null" for no value);
- targets: the Graphite/legacy `target`, `metric`, `query`, `step`, `intervalFactor` go;
- gauge and bar gauge: `fieldOptions` (Grafana 6) becomes `options.reduceOptions` and `fieldConfig.defaults`;
- heatmap: the pre-9 `cards`, `color`, `xAxis`, `yAxis`, ... go (the kit passes the current `options`);
- table: the Angular `columns`, `styles`, `fontSize`, top-level `mappings`/`color` go;
- variables: the tag fields (`useTags`, `tagsQuery`, `tagValuesQuery`) go;
- every `null` goes: Grafana reads a missing field as its default, and the schema refuses `null` there.
"""

from __future__ import annotations

import json
from typing import Any, cast

from grafanalib._gen import DashboardEncoder

SCHEMA_VERSION = 41  # Grafana 12.0: v41 dropped timepicker.time_options
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}

_DASHBOARD_LEGACY = ("__inputs", "rows", "hideControls", "sharedCrosshair", "style", "gnetId", "version", "id")
_PANEL_LEGACY = ("span", "height", "minSpan", "editable", "error", "maxDataPoints", "thresholds", "thresholdType")
_TARGET_LEGACY = ("target", "metric", "query", "step", "intervalFactor")
_HEATMAP_LEGACY = (
    "cards", "color", "dataFormat", "heatmap", "hideZeroBuckets", "highlightCards", "legend", "reverseYBuckets",
    "tooltip", "xAxis", "yAxis", "xBucketNumber", "xBucketSize", "yBucketBound", "yBucketNumber", "yBucketSize",
)  # fmt: skip
_TABLE_LEGACY = ("columns", "styles", "fontSize", "mappings", "color")
_VARIABLE_LEGACY = ("useTags", "tagsQuery", "tagValuesQuery")
_EMPTY_DEFAULTS = {
    "transparent": False,
    "hideTimeOverride": False,
    "links": [],
    "transformations": [],
    "description": "",
}


def to_json(dashboard: Any) -> dict[str, Any]:
    """A grafanalib Dashboard as plain JSON data, as grafanalib writes it."""
    return cast("dict[str, Any]", json.loads(json.dumps(dashboard.to_json_data(), cls=DashboardEncoder)))


def _drop_nulls(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _drop_nulls(x) for k, x in v.items() if x is not None}
    if isinstance(v, list):
        return [_drop_nulls(x) for x in v]
    return v


def _steps(steps: Any) -> list[dict[str, Any]]:
    """Threshold steps as `{value, color}`; the first step's value is null (from minus infinity)."""
    out = []
    for i, s in enumerate(steps if isinstance(steps, list) else []):
        value = s.get("value")
        out.append({"color": s["color"], "value": None if i == 0 or value in (None, "null") else value})
    return out or [{"color": "green", "value": None}]


def _field_config(p: dict[str, Any]) -> dict[str, Any]:
    fc = p.setdefault("fieldConfig", {})
    fc.setdefault("defaults", {})
    fc.setdefault("overrides", [])
    th = fc["defaults"].setdefault("thresholds", {"mode": "absolute"})
    th["steps"] = _steps(th.get("steps"))
    th.setdefault("mode", "absolute")
    return cast("dict[str, Any]", fc)


def _gauge(p: dict[str, Any]) -> None:
    fc = p["fieldConfig"]
    d = fc["defaults"]
    calcs = d.pop("calcs", ["lastNotNull"])
    values = d.pop("values", False)
    for k in ("title", "limit", "override"):
        d.pop(k, None)
    if not d.get("links"):
        d.pop("links", None)
    opts = p.setdefault("options", {})
    opts["reduceOptions"] = {"calcs": calcs, "fields": "", "values": values}
    for k in ("showThresholdLabels", "showThresholdMarkers"):
        if k in fc:
            opts[k] = fc.pop(k)


def _bargauge(p: dict[str, Any]) -> None:
    opts = p.setdefault("options", {})
    fo = opts.pop("fieldOptions", {})
    opts["reduceOptions"] = {"calcs": fo.get("calcs", ["lastNotNull"]), "fields": "", "values": fo.get("values", False)}
    d = p["fieldConfig"]["defaults"]
    for k, v in fo.get("defaults", {}).items():
        if k in ("min", "max", "unit", "decimals"):
            d[k] = v
    for k in ("showThresholdLabels", "showThresholdMarkers"):
        opts.pop(k, None)
    opts.setdefault("showUnfilled", True)


def _target(t: dict[str, Any]) -> dict[str, Any]:
    for k in _TARGET_LEGACY:
        t.pop(k, None)
    if not t.get("interval"):
        t.pop("interval", None)
    if t.get("hide") is False:
        t.pop("hide")
    t.setdefault("datasource", DATASOURCE)
    return t


def _panel(p: dict[str, Any]) -> dict[str, Any]:
    if p["type"] == "row":
        return {k: p[k] for k in ("type", "title", "id", "gridPos", "collapsed")} | {"panels": p.get("panels", [])}
    for k in _PANEL_LEGACY:
        p.pop(k, None)
    for k, empty in _EMPTY_DEFAULTS.items():
        if p.get(k) == empty:
            p.pop(k)
    if p.get("repeatDirection") and not p.get("repeat"):
        p.pop("repeatDirection")
    p["targets"] = [_target(t) for t in p.get("targets", [])]
    fc = _field_config(p)
    if p["type"] == "gauge":
        _gauge(p)
    elif p["type"] == "bargauge":
        _bargauge(p)
    elif p["type"] == "heatmap":
        for k in _HEATMAP_LEGACY:
            p.pop(k, None)
    elif p["type"] == "table":
        for k in _TABLE_LEGACY:
            p.pop(k, None)
    if fc["defaults"].get("noValue") == "none":  # grafanalib's stat default: the text "none" for no data
        fc["defaults"].pop("noValue")
    return p


def _variable(v: dict[str, Any]) -> dict[str, Any]:
    for k in _VARIABLE_LEGACY:
        v.pop(k, None)
    current = v.pop("current", None) or {}
    current.pop("tags", None)
    if "text" in current and "value" in current:
        v["current"] = current
    if v.get("type") == "query":
        v["definition"] = v["query"]
    return v


def normalise(raw: dict[str, Any]) -> dict[str, Any]:
    """Current Grafana dashboard JSON from grafanalib's (`to_json`): see the module's notes for each change."""
    d = _drop_nulls(raw)
    for k in _DASHBOARD_LEGACY:
        d.pop(k, None)
    tp = d.get("timepicker", {})
    tp.pop("time_options", None)
    d["schemaVersion"] = SCHEMA_VERSION
    d["panels"] = [_panel(p) for p in d.get("panels", [])]
    d["templating"] = {"list": [_variable(v) for v in d.get("templating", {}).get("list", [])]}
    d.setdefault("annotations", {"list": []})
    return cast("dict[str, Any]", d)
