"""The demo catalog read with plain YAML, for expected figures that do not come from the code under test.

`console.catalog` parses, validates and defaults `fleet.yaml`; a test that takes its expected numbers from
there can only agree with itself. These helpers read the same file with `yaml.safe_load` and do the
arithmetic a person would do by hand.
"""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
FLEET = ROOT / "fleet.yaml"


@cache
def _read(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def doc(path: Path = FLEET) -> dict[str, Any]:
    """A fresh copy each call: tests edit it to write variants of the catalog."""
    return copy.deepcopy(_read(path))


def named(section: str, name: str, path: Path = FLEET) -> dict[str, Any]:
    return next(x for x in _read(path)[section] if x["name"] == name)


def line_of(path: Path, text: str, after: str | None = None) -> int:
    """The 1-based line of the first line containing `text` (after the first line containing `after`)."""
    lines = path.read_text().splitlines()
    start = next(i for i, ln in enumerate(lines) if after in ln) if after else 0
    return next(i for i, ln in enumerate(lines) if i >= start and text in ln) + 1


def replica_rps(service: dict[str, Any]) -> float:
    """Requests a second one replica serves, as fleet.yaml's comments state it: its GPUs (at least one: a
    MIG slice serves as a GPU does) over the GPU-seconds a request takes, at the target utilisation
    (70 % unless the service sets its own)."""
    gpus = max(service["gpus_per_replica"], 1.0)
    return gpus / service["gpu_seconds_per_request"] * service.get("target_utilisation", 0.7)


def gpu_model(pool: dict[str, Any], region: str) -> str:
    return (pool.get("gpu_model_by_region") or {}).get(region, pool["gpu_model"])


def node_count(path: Path = FLEET) -> int:
    return sum(n for p in _read(path)["pools"] for n in p["nodes"].values())


def gpus_per_pool(path: Path = FLEET, cpu: bool = False) -> dict[tuple[str, str], int]:
    """Whole GPUs per pool and region: nodes x GPUs per node, for the pools that have GPUs (`cpu`: and 0 for
    each pool without, as the Pools view lists them)."""
    return {
        (p["name"], region): n * p.get("gpus_per_node", 0)
        for p in _read(path)["pools"]
        if cpu or p.get("gpus_per_node")
        for region, n in p["nodes"].items()
    }


def whole_gpu_requests(namespace: str, path: Path = FLEET) -> int:
    """What `requests.nvidia.com/gpu` counts in a namespace: whole-GPU replicas of services on pools without
    MIG (a MIG slice is another resource), plus its jobs' pods."""
    d = _read(path)
    pools = {p["name"]: p for p in d["pools"]}
    total = 0.0
    for s in d["services"]:
        if s["namespace"] == namespace and not pools[s["pool"]].get("mig"):
            total += sum(s["replicas"].values()) * s["gpus_per_replica"]
    for j in d.get("jobs", []):
        if j["namespace"] == namespace:
            total += j["pods"] * j["gpus_per_pod"]
    return int(total)


def quota(namespace: str, path: Path = FLEET) -> int:
    return next(t["quota_gpus"][namespace] for t in _read(path)["teams"] if namespace in t.get("quota_gpus", {}))


def dashboard_queries(dashboards: list[dict[str, Any]]) -> list[str]:
    """Every Prometheus query in dashboards' JSON, walked plainly: each panel target's `expr` (rows' panels
    included) and each query variable's query."""

    def panels(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [x for p in items for x in (p, *panels(p.get("panels", [])))]

    out = []
    for d in dashboards:
        d = d.get("dashboard", d)
        out += [t["expr"] for p in panels(d.get("panels", [])) for t in p.get("targets", []) if "expr" in t]
        for v in d.get("templating", {}).get("list", []):
            if v.get("type") == "query":
                q = v.get("query", "")
                out.append(q.get("query", "") if isinstance(q, dict) else q)
    return out


def dashboard_files(folder: Path) -> list[dict[str, Any]]:
    import json

    return [json.loads(f.read_text()) for f in sorted(folder.glob("*.json"))]
