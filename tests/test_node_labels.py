"""Pools by the node labels clusters already have: the catalog's `node_labels:` and pools' `match:` reach the
built rules (run by the real promtool on series labelled as Karpenter and GPU feature discovery label them),
and the twin labels its nodes, and places its pods, by each convention."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from console.catalog.load import load_catalog
from console.codegen.mixin import build_rules
from console.twin.resources import BY_PLURAL
from console.twin.sim import Twin
from tests.fleetdoc import doc, named

KARPENTER = "karpenter.sh/nodepool"


def _catalog(tmp_path: Path, d: dict[str, Any]):
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "fleet.yaml"
    path.write_text(yaml.safe_dump(d))
    return load_catalog(path)


def _promtool(tmp_path: Path, d: dict[str, Any], nodes: list[dict[str, str]], want: list[dict[str, str]]) -> str:
    """promtool's verdict on `gpuops:node_pool:info` for kube-state-metrics series of `nodes`."""
    built = build_rules(_catalog(tmp_path, d), tmp_path / "rules")
    series = [
        {
            "series": "kube_node_labels{"
            + ", ".join(['job="kube-state-metrics"', *(f'{k}="{v}"' for k, v in n.items())])
            + "}",
            "values": "1x5",
        }
        for n in nodes
    ]
    exp = [
        {"labels": "gpuops:node_pool:info{" + ", ".join(f'{k}="{v}"' for k, v in sorted(w.items())) + "}", "value": 1}
        for w in want
    ]
    test = {
        "rule_files": [str(built.rules)],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": series,
                "promql_expr_test": [{"expr": "gpuops:node_pool:info", "eval_time": "3m", "exp_samples": exp}],
            }
        ],
    }
    (tmp_path / "test.yaml").write_text(yaml.safe_dump(test))
    promtool = shutil.which("promtool")
    assert promtool, "promtool (Debian's prometheus package) is needed: ./dev installs it"
    r = subprocess.run([promtool, "test", "rules", str(tmp_path / "test.yaml")], capture_output=True, text=True)
    return r.stdout + r.stderr if r.returncode else "ok"


def _node(name: str, region: str, product: str | None = None, **labels: str) -> dict[str, str]:
    out = {"node": name, "label_topology_kubernetes_io_region": region}
    out |= {"label_" + k.replace(".", "_").replace("/", "_").replace("-", "_"): v for k, v in labels.items()}
    if product:
        out["label_nvidia_com_gpu_product"] = product
    return out


def test_karpenter_nodepools_and_gpu_products_place_nodes_in_the_catalogs_pools(tmp_path):
    d = doc()
    d["node_labels"] = {"pool": KARPENTER}
    h100 = named("pools", "train-h100")["gpu_model"]
    t4 = named("pools", "batch-t4")["gpu_model"]
    nodes = [
        # GPU feature discovery's spelling of the model, with the form factor and memory after it.
        _node("n1", "eu-west", f"NVIDIA-{h100}-HBM3", **{KARPENTER: "train-h100"}),
        _node("n2", "us-east", f"Tesla-{t4}", **{KARPENTER: "batch-t4"}),
        _node("n3", "us-east", None, **{KARPENTER: "system"}),
    ]
    want = [
        {"node": "n1", "pool": "train-h100", "region": "eu-west", "model": h100},
        {"node": "n2", "pool": "batch-t4", "region": "us-east", "model": t4},
        {"node": "n3", "pool": "system", "region": "us-east"},
    ]
    assert _promtool(tmp_path, d, nodes, want) == "ok"
    # The same series read with the default label: no node is in a pool, and promtool says so.
    assert "gpuops:node_pool:info" in _promtool(tmp_path / "x", doc(), nodes, want)


def test_pools_sharing_a_nodepool_are_told_apart_by_their_match(tmp_path):
    d = doc()
    d["node_labels"] = {"pool": KARPENTER}
    models = {p["name"]: p.get("gpu_model") for p in d["pools"]}
    # One Karpenter NodePool of mixed GPUs: the catalog's pools are its GPU products.
    for p in d["pools"]:
        if p["name"] in ("infer-l4", "diffusion-mixed"):
            p["match"] = {KARPENTER: "shared-gpu", "nvidia.com/gpu.product": f"NVIDIA-{p['gpu_model']}"}
    nodes = [
        _node("a", "eu-west", f"NVIDIA-{models['infer-l4']}", **{KARPENTER: "shared-gpu"}),
        _node("b", "eu-west", f"NVIDIA-{models['diffusion-mixed']}", **{KARPENTER: "shared-gpu"}),
        _node("c", "eu-west", f"NVIDIA-{models['train-h100']}", **{KARPENTER: "train-h100"}),
        _node("d", "eu-west", "NVIDIA-B200", **{KARPENTER: "shared-gpu"}),  # in no pool of the catalog
    ]
    want = [
        {"node": "a", "pool": "infer-l4", "region": "eu-west", "model": models["infer-l4"]},
        {"node": "b", "pool": "diffusion-mixed", "region": "eu-west", "model": models["diffusion-mixed"]},
        {"node": "c", "pool": "train-h100", "region": "eu-west", "model": models["train-h100"]},
    ]
    assert _promtool(tmp_path, d, nodes, want) == "ok"


def test_a_label_key_that_kubernetes_would_refuse_is_an_error_at_its_line(tmp_path):
    from console.catalog.load import CatalogError

    d = doc()
    d["node_labels"] = {"pool": "not a label"}
    with pytest.raises(CatalogError) as e:
        _catalog(tmp_path, d)
    assert "node_labels.pool" in str(e.value) and "fleet.yaml:" in str(e.value)
    d = doc()
    d["pools"][0]["match"] = {KARPENTER: 'x"} or vector(1) #'}
    with pytest.raises(CatalogError) as e:
        _catalog(tmp_path, d)
    assert "pools[0].match" in str(e.value) or "pools.0.match" in str(e.value), str(e.value)


@pytest.mark.parametrize(
    ("convention", "label"),
    [("gke", "cloud.google.com/gke-nodepool"), ("eks", "eks.amazonaws.com/nodegroup"), ("karpenter", KARPENTER)],
)
def test_the_twin_labels_nodes_and_places_pods_by_the_convention(catalog, convention, label):
    twin = Twin(catalog, speed=0, labels=convention, ksm_node_labels=())
    nodes = {n["metadata"]["name"]: n["metadata"]["labels"] for n in twin.store.iter(BY_PLURAL["nodes"])}
    plain = doc()
    for p in plain["pools"]:
        mine = {n: lab for n, lab in nodes.items() if lab.get(label) == p["name"]}
        assert len(mine) == sum(p["nodes"].values()), p["name"]
        for lab in mine.values():
            assert "gpuops.io/pool" not in lab
            if p.get("gpu_model"):
                assert lab["nvidia.com/gpu.product"].startswith(("NVIDIA-", "Tesla-")), lab
                assert lab["nvidia.com/gpu.count"] == str(p["gpus_per_node"])
    # Every running pod sits on a node of the pool its deployment's node selector names.
    placed = 0
    for pod in twin.store.iter(BY_PLURAL["pods"]):
        sel, node = pod["spec"].get("nodeSelector") or {}, pod["spec"].get("nodeName")
        if node and label in sel:
            assert nodes[node][label] == sel[label], pod["metadata"]["name"]
            placed += 1
    assert placed > 20
    # kube-state-metrics with no allowlist: kube_node_labels names the node and nothing else.
    from console.twin import metrics

    lines = [ln for ln in metrics.render(twin).splitlines() if ln.startswith("kube_node_labels{")]
    assert lines and all("label_" not in ln for ln in lines), lines[:2]


def test_no_rule_panel_or_console_query_reads_the_default_pool_label_when_the_catalog_names_another(tmp_path):
    """The placement is written once for the default label and swapped in by the rewriter: a query that built its
    own would keep reading gpuops.io/pool on a cluster that has no such label. Checked on the text, not the code."""
    from console.codegen.dashboards import build_all
    from console.fleet import queries as q
    from console.fleet.scope import for_catalog

    d = doc()
    d["node_labels"] = {"pool": KARPENTER}
    cat = _catalog(tmp_path, d)
    built = build_rules(cat, tmp_path / "rules")
    texts = [built.rules.read_text(), built.alerts.read_text()]
    texts += [str(b.model) for b in build_all(cat)]
    rewrite = for_catalog(cat)
    texts += [rewrite(v) for v in q.SNAPSHOT.values()]
    texts += [rewrite(v) for v in q.PANEL_QUERIES.values()]
    assert all("label_gpuops_io_pool" not in t for t in texts)
    assert sum(t.count("label_karpenter_sh_nodepool") for t in texts) > 20
