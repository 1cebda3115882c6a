"""kubectl against the twin with the kubeconfig the twin writes, and Prometheus seeing the change."""

from __future__ import annotations

import json
import os
import subprocess

from console.sources.prometheus import PrometheusSource
from tests.e2e.conftest import wait_for


def kubectl(stack, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KUBECONFIG": str(stack.kubeconfig)}
    return subprocess.run(["kubectl", *args], capture_output=True, text=True, env=env, timeout=60)


def test_kubectl_get_nodes_and_quota(stack, catalog):
    r = kubectl(stack, "get", "nodes")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert lines[0].split()[:2] == ["NAME", "STATUS"]
    assert len(lines) - 1 == sum(n for p in catalog.pools for n in p.nodes.values())
    assert any(line.startswith("train-h100-us-east-000 ") and " Ready " in line for line in lines)
    r = kubectl(stack, "-n", "team-llm", "get", "resourcequota")
    assert r.returncode == 0, r.stderr
    assert "gpu-quota" in r.stdout and "requests.nvidia.com/gpu: 17/40" in r.stdout


def test_kubectl_scale_changes_deployment_and_prometheus_sees_it(stack):
    r = kubectl(stack, "-n", "team-creative", "scale", "deployment/diffusion-covers-eu-west", "--replicas=8")
    assert r.returncode == 0, r.stderr
    assert "scaled" in r.stdout
    dep = json.loads(
        kubectl(stack, "-n", "team-creative", "get", "deployment", "diffusion-covers-eu-west", "-o", "json").stdout
    )
    assert dep["spec"]["replicas"] == 8
    p = PrometheusSource(stack.prom_url)
    q = 'kube_deployment_spec_replicas{namespace="team-creative",deployment="diffusion-covers-eu-west"}'
    wait_for(lambda: [s.value for s in p.query(q)] == [8.0], what="Prometheus to see 8 replicas")


def test_kubectl_dry_run_changes_nothing(stack):
    before = json.loads(
        kubectl(stack, "-n", "team-search", "get", "deployment", "embedding-batch-us-east", "-o", "json").stdout
    )
    r = kubectl(
        stack,
        "-n",
        "team-search",
        "patch",
        "deployment",
        "embedding-batch-us-east",
        "--dry-run=server",
        "--type=merge",
        "-p",
        '{"spec":{"replicas":1}}',
    )
    assert r.returncode == 0, r.stderr
    after = json.loads(
        kubectl(stack, "-n", "team-search", "get", "deployment", "embedding-batch-us-east", "-o", "json").stdout
    )
    assert after["spec"]["replicas"] == before["spec"]["replicas"] == 6
