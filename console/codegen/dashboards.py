"""Build the dashboards: each `dashboards/*.py` file's `build(catalog)`, made current JSON, written sorted.

A dashboard's uid comes from its file's name (`fleet_overview.py` -> `gpuops-fleet-overview`), so links and
bookmarks survive a new title. Its panels get ids in layout order and an anchor from their titles
(`Idle GPUs by pool` -> `idle-gpus-by-pool`); alerts link to a panel by uid and anchor (`panel_urls`).
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from console.atomic import PUBLISHED, write_atomic
from console.catalog.model import Catalog, Monitoring
from console.codegen.normalise import normalise, to_json
from console.content import DASHBOARDS, local_or_shipped
from console.fleet.queries import DEFAULT_NODES, NodeMap
from console.fleet.scope import for_dashboards, node_map
from console.runbooks.annotations import TAG as ANNOTATION_TAG

UID_PREFIX = "gpuops-"


class DashboardError(Exception):
    """A dashboard file that does not build: the message names the file."""


@dataclass(frozen=True)
class BuiltDashboard:
    uid: str
    title: str
    source: Path
    model: dict[str, Any]
    path: Path | None = None

    def panels(self) -> Iterator[dict[str, Any]]:
        """Every panel, rows' children included, rows themselves not."""
        for p in self.model.get("panels", []):
            if p["type"] == "row":
                yield from p.get("panels", [])
            else:
                yield p

    def variables(self) -> list[str]:
        """The dashboard's template variables a link can set (`var-<name>`), the data source's aside."""
        return [v["name"] for v in self.model.get("templating", {}).get("list", []) if v.get("type") != "datasource"]


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def uid_for(source: Path) -> str:
    uid = UID_PREFIX + slug(source.stem)
    if len(uid) > 40:  # Grafana's limit
        raise DashboardError(f"{source}: the uid {uid!r} from the file's name is over 40 characters")
    return uid


def _load_module(source: Path) -> Any:
    name = f"gpuops_dashboard_{slug(source.stem).replace('-', '_')}"
    spec = importlib.util.spec_from_file_location(name, source)
    if spec is None or spec.loader is None:
        raise DashboardError(f"{source}: not a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as e:  # a broken file names itself and its line
        raise DashboardError(f"{source}: {type(e).__name__}: {e}") from e
    finally:
        sys.modules.pop(name, None)
    if not callable(getattr(module, "build", None)):
        raise DashboardError(f"{source}: no build(catalog) function")
    return module


def build_one(source: Path, catalog: Catalog) -> BuiltDashboard:
    module = _load_module(source)
    try:
        raw = to_json(module.build(catalog).auto_panel_ids())
    except Exception as e:
        raise DashboardError(f"{source}: build(catalog) failed: {type(e).__name__}: {e}") from e
    model = scope_dashboard(normalise(raw), catalog.monitoring, node_map(catalog))
    uid = uid_for(source)
    model["uid"] = uid
    model["tags"] = sorted(set(model.get("tags", [])) | set(catalog.grafana.tags))
    # The other dashboards, as Grafana lists them by tag, and this one's own links.
    model["links"] = [
        {
            "title": "GPU dashboards",
            "type": "dashboards",
            "tags": list(catalog.grafana.tags),
            "asDropdown": True,
            "icon": "external link",
            "tooltip": "",
            "targetBlank": False,
            "includeVars": True,
            "keepTime": True,
        },
        *model.get("links", []),
    ]
    # When a runbook or a drill ran: their Grafana annotations (console/runbooks/annotations.py), by tag.
    model.setdefault("annotations", {}).setdefault("list", []).append(
        {
            "name": "Runbooks and drills",
            "datasource": {"type": "grafana", "uid": "-- Grafana --"},
            "enable": True,
            "hide": False,
            "iconColor": "purple",
            "target": {"type": "tags", "tags": [ANNOTATION_TAG], "matchAny": True, "limit": 100},
        }
    )
    _panel_ids(model, source)
    return BuiltDashboard(uid, model.get("title", uid), source, model)


_LABEL_VALUES = re.compile(r"^\s*label_values\((.*),\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)\s*$", re.S)


def scope_dashboard(model: dict[str, Any], monitoring: Monitoring, nodes: NodeMap = DEFAULT_NODES) -> dict[str, Any]:
    """The catalog's selectors in every query (`scope.for_dashboards`), and a `cluster` variable, first, that
    every series of a place is narrowed to: the dashboard files write neither."""
    rewrite = for_dashboards(monitoring, nodes)
    for panel in [q for p in model.get("panels", []) for q in (p, *p.get("panels", []))]:
        for t in panel.get("targets", []):
            if isinstance(t.get("expr"), str):
                t["expr"] = rewrite(t["expr"])
    variables = model.get("templating", {}).get("list", [])
    for v in variables:
        if v.get("type") != "query":
            continue
        text = v["query"]["query"] if isinstance(v.get("query"), dict) else v.get("query", "")
        if m := _LABEL_VALUES.match(text):  # only its selector is PromQL
            text = f"label_values({rewrite(m.group(1))}, {m.group(2)})"
        if isinstance(v.get("query"), dict):
            v["query"]["query"] = text
        else:
            v["query"] = text
        v["definition"] = text
    queries = [i for i, v in enumerate(variables) if v.get("type") == "query"]
    if queries:
        first = variables[queries[0]]
        cluster = json.loads(json.dumps(first)) | {
            "name": "cluster",
            "label": "Cluster",
            "query": f"label_values(gpuops:node_pool:info, {monitoring.cluster_label})",
            "definition": f"label_values(gpuops:node_pool:info, {monitoring.cluster_label})",
        }
        if isinstance(first.get("query"), dict):
            cluster["query"] = first["query"] | {"query": cluster["definition"]}
        variables.insert(queries[0], cluster)
    return model


def _panel_ids(model: dict[str, Any], source: Path) -> None:
    """Each panel's id from its title, so a link to a panel (an alert's dashboard_url, a bookmark) survives
    panels added or moved around it. Titles must be unique within a dashboard."""
    seen: dict[int, str] = {}
    every = [q for p in model.get("panels", []) for q in (p, *p.get("panels", []))]
    for p in every:
        anchor = ("row-" if p["type"] == "row" else "") + slug(p.get("title", ""))
        pid = zlib.crc32(anchor.encode()) % 1_000_000 + 1
        if pid in seen:
            what = "the same title as" if seen[pid] == anchor else "an id clash with"
            raise DashboardError(f"{source}: panel {p.get('title')!r} has {what} another panel: retitle one")
        seen[pid] = anchor
        p["id"] = pid


def sources(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.py") if not p.name.startswith("_"))


def build_all(catalog: Catalog, folder: Path | None = None) -> list[BuiltDashboard]:
    """Every dashboard file's build, from `folder` (default: ./dashboards, else the ones gpuops ships)."""
    built = [build_one(s, catalog) for s in sources(folder or local_or_shipped(DASHBOARDS))]
    uids: dict[str, Path] = {}
    for b in built:
        if b.uid in uids:
            raise DashboardError(f"{b.source}: uid {b.uid!r} is also {uids[b.uid]}'s")
        uids[b.uid] = b.source
    return built


def dumps(model: dict[str, Any]) -> str:
    """The file's bytes: sorted keys, two-space indent, a final newline. Two builds give the same bytes."""
    return json.dumps(model, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def write_dashboards(built: list[BuiltDashboard], out_dir: Path) -> list[BuiltDashboard]:
    """`<out_dir>/<uid>.json` for each; files of dashboards no longer built are removed."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for b in built:
        path = out_dir / f"{b.uid}.json"
        write_atomic(path, dumps(b.model), mode=PUBLISHED)
        written.append(BuiltDashboard(b.uid, b.title, b.source, b.model, path))
    keep = {f"{b.uid}.json" for b in built}
    for stale in out_dir.glob("*.json"):
        if stale.name not in keep:
            stale.unlink()
    return written


def read_built(out_dir: Path) -> list[BuiltDashboard]:
    """What `gpuops build` wrote, for lint, diff and publish."""
    out = []
    for path in sorted(out_dir.glob("*.json")):
        model = json.loads(path.read_text())
        out.append(BuiltDashboard(model.get("uid", path.stem), model.get("title", ""), path, model, path))
    return out


def panel_variables(built: list[BuiltDashboard]) -> dict[str, list[str]]:
    """`{uid: [variable, ...]}`: what an alert's dashboard_url may fill from its labels."""
    return {b.uid: b.variables() for b in built}


def panel_urls(built: list[BuiltDashboard], grafana_url: str) -> dict[str, str]:
    """`{"<uid>/<panel anchor>": "<grafana>/d/<uid>?viewPanel=<id>"}`: what alerts' dashboard_url refer to."""
    base = grafana_url.rstrip("/")
    return {f"{b.uid}/{slug(p['title'])}": f"{base}/d/{b.uid}?viewPanel={p['id']}" for b in built for p in b.panels()}
