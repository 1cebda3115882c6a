"""`gpuops catalog discover`: a catalog drafted from the twin's Kubernetes objects gives back the original's
pools, teams and services (the original read with plain YAML), loads and builds, and every value it could not
know is a placeholder that `catalog check` names by line."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from console.catalog.load import parse_catalog
from console.cli import main
from console.codegen.mixin import build_rules
from console.discover import Objects, draft
from console.twin.resources import BY_PLURAL
from console.twin.sim import Twin
from tests.fleetdoc import doc


def _objects(twin: Twin) -> Objects:
    def listed(kind: str) -> list[dict]:
        return list(twin.store.iter(BY_PLURAL[kind]))

    return Objects(
        listed("nodes"), listed("namespaces"), listed("resourcequotas"), listed("deployments"), listed("jobs"),
        listed("horizontalpodautoscalers"),
    )  # fmt: skip


def _pools(pools: list[dict]) -> dict[str, tuple]:
    return {
        p["name"]: (
            {r: n for r, n in p["nodes"].items() if n},
            p.get("gpus_per_node", 0),
            p.get("gpu_model"),
            p.get("gpu_model_by_region", {}),
            (p.get("mig") or {}).get("profile"),
            (p.get("mig") or {}).get("instances_per_gpu"),
        )
        for p in pools
    }


@pytest.mark.parametrize("convention", ["gpuops", "karpenter"])
def test_a_draft_of_the_twin_has_the_originals_pools_teams_and_services(catalog, convention, tmp_path):
    text = draft("twin", _objects(Twin(catalog, speed=0, labels=convention)))
    got = parse_catalog(text, "draft.yaml")  # loads: every placeholder is a valid value
    original = doc()
    assert _pools([p.model_dump() for p in got.pools]) == _pools(original["pools"])
    assert got.node_labels.pool == {"gpuops": "gpuops.io/pool", "karpenter": "karpenter.sh/nodepool"}[convention]
    assert {t.name: (t.namespaces, t.quota_gpus) for t in got.teams} == {
        t["name"]: (t["namespaces"], {k: float(v) for k, v in t.get("quota_gpus", {}).items()})
        for t in original["teams"]
        if any(ns in {s["namespace"] for s in original["services"]} | set(t.get("quota_gpus", {}))
               for ns in t["namespaces"])
    }  # fmt: skip
    gpu_services = {s["name"]: s for s in original["services"] if s["gpus_per_replica"]}
    assert {s.name: (s.regions, s.replicas, s.gpus_per_replica, s.pool) for s in got.services} == {
        n: (sorted(s["regions"]), s["replicas"], float(s["gpus_per_replica"]), s["pool"])
        for n, s in gpu_services.items()
    }
    cpu_fallback = {
        s["name"]: s["fallback"]["deployment"] for s in gpu_services.values() if s["fallback"]["mode"] == "cpu"
    }
    assert {s.name: s.fallback.deployment for s in got.services if s.fallback.mode == "cpu"} == cpu_fallback
    assert {j.name: (j.pods, j.gpus_per_pod, j.pool) for j in got.jobs} == {
        j["name"]: (j["pods"], float(j["gpus_per_pod"]), j["pool"]) for j in original["jobs"]
    }
    built = build_rules(got, tmp_path / "rules")
    assert built.rules.exists() and built.alerts.exists()


def test_catalog_check_names_each_placeholder_by_line_and_strict_refuses_them(catalog, tmp_path: Path):
    path = tmp_path / "draft.yaml"
    path.write_text(draft("twin", _objects(Twin(catalog, speed=0))))
    r = CliRunner().invoke(main, ["catalog", "check", str(path)])
    assert r.exit_code == 0, r.output
    lines = path.read_text().splitlines()
    flagged = [i + 1 for i, ln in enumerate(lines) if "# placeholder:" in ln]
    assert flagged
    for n in flagged:
        assert f"{path}:{n}: " in r.output, (n, lines[n - 1])
    assert "teams[0].monthly_budget" in r.output and "prices.currency" in r.output
    r = CliRunner().invoke(main, ["catalog", "check", "--strict", str(path)])
    assert r.exit_code == 1 and f"{len(flagged)} placeholder" in r.output, r.output
