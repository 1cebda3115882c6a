"""The twin's Kubernetes API through the official client, as the console and runbooks reach a cluster."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from console.twin.kubeconfig import write_kubeconfig
from console.twin.server import TwinServer
from console.twin.sim import Twin
from tests.fleetdoc import doc, gpu_model, named, node_count, quota, whole_gpu_requests


@pytest.fixture(scope="module")
def served(catalog, tmp_path_factory):
    twin = Twin(
        catalog,
        speed=0,
        start=datetime(2026, 12, 1, 12, tzinfo=UTC),
        warmup_s=30,
        deny=["patch deployments/scale team-research", "create leases team-media"],
    )
    server = TwinServer(twin)
    server.start()
    kc = tmp_path_factory.mktemp("kube") / "kubeconfig.yaml"
    write_kubeconfig(kc, {"twin": server.url})
    from kubernetes import config

    api = config.new_client_from_config(config_file=str(kc), context="twin")
    yield twin, api
    api.close()
    server.stop()


def test_nodes_carry_pool_region_model_and_gpus(served, catalog):
    _twin, api = served
    nodes = client.CoreV1Api(api).list_node().items
    assert len(nodes) == node_count()
    by_name = {n.metadata.name: n for n in nodes}
    # Every pool and region of fleet.yaml (read plainly): its nodes, labels, GPU model and GPUs.
    for pool in doc()["pools"]:
        for region, count in pool["nodes"].items():
            mine = [n for name, n in by_name.items() if name.startswith(f"{pool['name']}-{region}-")]
            assert len(mine) == count, (pool["name"], region)
            for n in mine:
                labels, alloc = n.metadata.labels, n.status.allocatable
                assert labels["gpuops.io/pool"] == pool["name"] and labels["topology.kubernetes.io/region"] == region
                if not pool.get("gpus_per_node"):
                    assert alloc.get("nvidia.com/gpu", "0") == "0" and "nvidia.com/gpu.product" not in labels
                elif mig := pool.get("mig"):
                    resource = f"nvidia.com/mig-{mig['profile']}"
                    assert alloc[resource] == str(pool["gpus_per_node"] * mig["instances_per_gpu"])
                else:
                    assert labels["nvidia.com/gpu.product"] == gpu_model(pool, region)
                    assert alloc["nvidia.com/gpu"] == str(pool["gpus_per_node"])


def test_quota_status_counts_pod_requests(served):
    _twin, api = served
    q = client.CoreV1Api(api).read_namespaced_resource_quota("gpu-quota", "team-llm")
    assert q.spec.hard["requests.nvidia.com/gpu"] == str(quota("team-llm"))
    # The namespace's whole-GPU replicas in fleet.yaml (a MIG slice is another resource).
    assert q.status.used["requests.nvidia.com/gpu"] == str(whole_gpu_requests("team-llm"))
    pods = client.CoreV1Api(api).list_namespaced_pod("team-llm", label_selector="gpuops.io/service=llm-chat").items
    assert len(pods) == sum(named("services", "llm-chat")["replicas"].values()) and all(p.spec.node_name for p in pods)


def test_scale_subresource_and_dry_run(served):
    twin, api = served
    apps = client.AppsV1Api(api)
    before = apps.read_namespaced_deployment("tts-dub-eu-west", "team-media")
    dry = apps.patch_namespaced_deployment_scale(
        "tts-dub-eu-west", "team-media", {"spec": {"replicas": 9}}, dry_run="All"
    )
    assert dry.spec.replicas == 9
    after_dry = apps.read_namespaced_deployment("tts-dub-eu-west", "team-media")
    assert after_dry.spec.replicas == before.spec.replicas
    assert after_dry.metadata.resource_version == before.metadata.resource_version
    apps.patch_namespaced_deployment_scale("tts-dub-eu-west", "team-media", {"spec": {"replicas": 6}})
    assert apps.read_namespaced_deployment_scale("tts-dub-eu-west", "team-media").spec.replicas == 6
    with twin.lock:
        twin.tick()
    pods = client.CoreV1Api(api).list_namespaced_pod("team-media", label_selector="app=tts-dub-eu-west").items
    assert len(pods) == 6


def test_stale_resource_version_is_a_409_status(served):
    _, api = served
    apps = client.AppsV1Api(api)
    dep = apps.read_namespaced_deployment("asr-subtitles-us-east", "team-media")
    stale = dep.metadata.resource_version
    dep.spec.replicas = 5
    apps.replace_namespaced_deployment("asr-subtitles-us-east", "team-media", dep)
    dep.metadata.resource_version = stale
    dep.spec.replicas = 7
    with pytest.raises(ApiException) as e:
        apps.replace_namespaced_deployment("asr-subtitles-us-east", "team-media", dep)
    assert e.value.status == 409
    body = json.loads(e.value.body)
    assert body["kind"] == "Status" and body["reason"] == "Conflict" and body["code"] == 409


def test_not_found_and_invalid_are_status_bodies(served):
    _, api = served
    apps = client.AppsV1Api(api)
    with pytest.raises(ApiException) as e:
        apps.read_namespaced_deployment("nope", "team-llm")
    assert e.value.status == 404 and json.loads(e.value.body)["reason"] == "NotFound"
    with pytest.raises(ApiException) as e:
        apps.patch_namespaced_deployment_scale("llm-chat-us-east", "team-llm", {"spec": {"replicas": -1}})
    body = json.loads(e.value.body)
    assert e.value.status == 422 and body["reason"] == "Invalid" and "spec.replicas" in body["message"]


def test_access_review_and_refusal_follow_the_deny_list(served):
    _, api = served
    auth = client.AuthorizationV1Api(api)

    def review(verb: str, resource: str, sub: str, ns: str) -> bool:
        body = client.V1SelfSubjectAccessReview(
            spec=client.V1SelfSubjectAccessReviewSpec(
                resource_attributes=client.V1ResourceAttributes(
                    verb=verb, group="apps", resource=resource, subresource=sub, namespace=ns
                )
            )
        )
        return auth.create_self_subject_access_review(body).status.allowed

    assert review("patch", "deployments", "scale", "team-llm") is True
    assert review("patch", "deployments", "scale", "team-research") is False
    coord = client.CoordinationV1Api(api)
    lease = client.V1Lease(
        metadata=client.V1ObjectMeta(name="runbook-tts"),
        spec=client.V1LeaseSpec(holder_identity="alice", lease_duration_seconds=60),
    )
    with pytest.raises(ApiException) as e:
        coord.create_namespaced_lease("team-media", lease)
    assert e.value.status == 403 and json.loads(e.value.body)["reason"] == "Forbidden"
    made = coord.create_namespaced_lease("team-llm", lease)
    assert made.spec.holder_identity == "alice"
    with pytest.raises(ApiException) as e:
        coord.create_namespaced_lease("team-llm", lease)
    assert e.value.status == 409 and json.loads(e.value.body)["reason"] == "AlreadyExists"


def test_config_map_patch_and_hpa(served):
    twin, api = served
    core = client.CoreV1Api(api)
    core.patch_namespaced_config_map("llm-chat-routing", "team-llm", {"data": {"mode": "rules"}})
    assert core.read_namespaced_config_map("llm-chat-routing", "team-llm").data["mode"] == "rules"
    assert twin.routing(next(s for s in twin.catalog.services if s.name == "llm-chat"))[0] == "rules"
    core.patch_namespaced_config_map("llm-chat-routing", "team-llm", {"data": {"mode": "normal"}})
    hpas = client.AutoscalingV2Api(api).list_namespaced_horizontal_pod_autoscaler("team-creative").items
    assert {h.spec.scale_target_ref.name for h in hpas} == {
        "diffusion-covers-us-east",
        "diffusion-covers-eu-west",
        "diffusion-covers-ap-southeast",
    }
