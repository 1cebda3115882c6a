"""kubectl against the twin with the kubeconfig the twin writes, and Prometheus seeing the change."""

from __future__ import annotations

import json
import os
import subprocess

from console.sources.prometheus import PrometheusSource
from tests.e2e.conftest import wait_for
from tests.fleetdoc import doc, named, node_count, whole_gpu_requests


def kubectl(stack, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KUBECONFIG": str(stack.kubeconfig)}
    return subprocess.run(["kubectl", *args], capture_output=True, text=True, env=env, timeout=60)


def test_kubectl_get_nodes_and_quota(stack, catalog):
    r = kubectl(stack, "get", "nodes")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert lines[0].split()[:2] == ["NAME", "STATUS"]
    assert len(lines) - 1 == node_count()
    assert all(line.split()[1] == "Ready" for line in lines[1:]), "every node Ready"
    queued = {q["namespace"] for q in doc().get("queues", {}).get("local_queues", [])}

    def queued_gpus(ns: str) -> int:
        """GPUs the pods of Kueue's admitted Jobs hold in the namespace: they come and go as batch runs."""
        r = kubectl(stack, "-n", ns, "get", "pods", "-l", "kueue.x-k8s.io/queue-name", "-o", "json")
        pods = json.loads(r.stdout)["items"]
        return sum(int(p["spec"]["containers"][0]["resources"]["requests"]["nvidia.com/gpu"]) for p in pods)

    for t in doc()["teams"]:
        for ns, hard in t["quota_gpus"].items():

            def shown(ns: str = ns, hard: int = hard) -> bool:
                extra = queued_gpus(ns) if ns in queued else 0
                r = kubectl(stack, "-n", ns, "get", "resourcequota")
                assert r.returncode == 0, r.stderr
                used = whole_gpu_requests(ns) + extra
                return "gpu-quota" in r.stdout and f"requests.nvidia.com/gpu: {used}/{hard}" in r.stdout

            # Read twice over where batch moves it: a Job admitted between the two reads is not a fault.
            wait_for(shown, timeout=20, what=f"the quota of {ns} as its pods request it")


def test_kubectl_scale_changes_deployment_and_prometheus_sees_it(stack):
    r = kubectl(stack, "-n", "team-creative", "scale", "deployment/diffusion-covers-eu-west", "--replicas=8")
    assert r.returncode == 0, r.stderr
    assert "scaled" in r.stdout
    dep = json.loads(
        kubectl(stack, "-n", "team-creative", "get", "deployment", "diffusion-covers-eu-west", "-o", "json").stdout
    )
    assert dep["spec"]["replicas"] == 8
    try:
        p = PrometheusSource(stack.prom_url)
        q = 'kube_deployment_spec_replicas{namespace="team-creative",deployment="diffusion-covers-eu-west"}'
        wait_for(lambda: [s.value for s in p.query(q)] == [8.0], what="Prometheus to see 8 replicas")
    finally:
        # The stack is shared by the session: put the catalog's replicas back for the tests after this one.
        was = named("services", "diffusion-covers")["replicas"]["eu-west"]
        kubectl(stack, "-n", "team-creative", "scale", "deployment/diffusion-covers-eu-west", f"--replicas={was}")


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
    assert (
        after["spec"]["replicas"]
        == before["spec"]["replicas"]
        == named("services", "embedding-batch")["replicas"]["us-east"]
    )
