"""A cluster labelled as GKE labels it, with kube-state-metrics as it comes (no node label allowed): the
doctor names the allowlist flag and exits 1; with the flag, it exits 0 and the console's pools are the
catalog's, their GPU models read from GPU feature discovery's product names."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from console.catalog import load_catalog
from console.cli import main
from tests.e2e.conftest import Stack, built_rules, start_stack, wait_for
from tests.e2e.console_helpers import TwinTruth, cell, pools_view_on
from tests.fleetdoc import doc, gpus_per_pool

pytestmark = pytest.mark.e2e

GKE_POOL = "cloud.google.com/gke-nodepool"
# What the rules read: the node group, the region and GPU feature discovery's product, as Kubernetes names them.
NEEDED = [GKE_POOL, "topology.kubernetes.io/region", "nvidia.com/gpu.product"]


def _doctor(stack: Stack, catalog: Path) -> tuple[int, dict[str, dict[str, str]]]:
    r = CliRunner().invoke(
        main,
        [
            "doctor", "--catalog", str(catalog), "--prometheus", stack.prom_url, "--alertmanager", str(stack.am_url),
            "--kubeconfig", str(stack.kubeconfig), "--context", "twin", "--format", "json",
        ],
    )  # fmt: skip
    return r.exit_code, {c["name"]: c for c in json.loads(r.output)["checks"]}


def _scraped(stack: Stack, catalog: Path) -> tuple[int, dict[str, dict[str, str]]] | None:
    code, checks = _doctor(stack, catalog)
    ready = ("gpuops rules loaded", "kube-state-metrics series", "dcgm-exporter series", "OpenCost series")
    return (code, checks) if all(checks.get(n, {}).get("verdict") == "ok" for n in ready) else None


def _stack(workdir: Path, catalog_file: Path, allow: str) -> Any:
    workdir.mkdir()
    rules = built_rules(workdir, load_catalog(catalog_file))
    return start_stack(
        workdir, "--catalog", str(catalog_file), "--labels", "gke", "--ksm-node-labels", allow, "--warmup", "0",
        rule_files=rules,
    )  # fmt: skip


@pytest.fixture(scope="module")
def gke_catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = doc()
    d["node_labels"] = {"pool": GKE_POOL}
    path = tmp_path_factory.mktemp("gke") / "fleet.yaml"
    path.write_text(yaml.safe_dump(d, sort_keys=False))
    return path


def test_doctor_names_the_missing_allowlist_flag_on_a_default_kube_state_metrics(gke_catalog, tmp_path):
    gen = _stack(tmp_path / "stack", gke_catalog, "")
    stack = next(gen)
    try:
        code, checks = wait_for(lambda: _scraped(stack, gke_catalog), timeout=90, what="the exporters scraped")
    finally:
        gen.close()
    assert code == 1
    labels = checks["node labels exported"]
    assert labels["verdict"] == "miss", labels
    assert f"--metric-labels-allowlist=nodes=[{','.join(NEEDED)}]" in labels["fix"], labels
    # The nodes have the labels (the Kubernetes side passes): only the exporter hides them.
    pools = [p["name"] for p in doc()["pools"]]
    assert all(checks[f"pool {p}"]["verdict"] == "ok" for p in pools), checks
    misses = sorted(n for n, c in checks.items() if c["verdict"] != "ok")
    assert misses == ["node labels exported"], {n: checks[n] for n in misses}


async def test_with_the_allowlist_the_doctor_passes_and_the_consoles_pools_are_the_catalogs(gke_catalog, tmp_path):
    gen = _stack(tmp_path / "stack", gke_catalog, ",".join(NEEDED))
    stack = next(gen)
    try:
        code, checks = wait_for(lambda: _scraped(stack, gke_catalog), timeout=90, what="the exporters scraped")
        assert code == 0, {n: c for n, c in checks.items() if c["verdict"] != "ok"}
        catalog = load_catalog(gke_catalog)
        # The catalog's plan, read plainly: GPUs per pool and region.
        planned = {f"{p}/{r}": float(g) for (p, r), g in gpus_per_pool(cpu=True).items()}
        truth = {k: v[0] for k, v in TwinTruth(str(stack.kubeconfig), catalog).pools().items()}
        assert truth == planned
        async with pools_view_on(stack, catalog, planned, "the catalog's") as pools:
            # GPU feature discovery says Tesla-T4 in this region: the catalog's model name is shown.
            by_region = doc()["pools"][1]
            assert by_region["name"] == "infer-l4"
            assert cell(pools, "infer-l4/ap-southeast", "model") == by_region["gpu_model_by_region"]["ap-southeast"]
            assert cell(pools, "infer-l4/eu-west", "model") == by_region["gpu_model"]
    finally:
        gen.close()
