"""The twin's simulation: load model, warm-up, modes, routing, faults and metrics names."""

from __future__ import annotations

import csv
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from console.twin import loadmodel as lm
from console.twin.metrics import DCGM_DEVICE, render
from console.twin.sim import DEPLOYMENTS, Twin
from console.twin.store import ApiError
from tests.fleetdoc import doc

SHARED = Path(__file__).resolve().parent.parent.parent / "shared"
NOON = datetime(2026, 12, 1, 12, tzinfo=UTC)


def test_route_moves_load_and_conserves_it():
    demand = {"a": 10.0, "b": 5.0, "c": 5.0}
    default = {"a": 50.0, "b": 25.0, "c": 25.0}
    assert lm.route(demand, default, default) == pytest.approx(demand)
    moved = lm.route(demand, {"a": 0.0, "b": 25.0, "c": 25.0}, default)
    assert moved["a"] == 0 and sum(moved.values()) == pytest.approx(20.0)
    assert moved["b"] == pytest.approx(10.0)


def test_latency_rises_with_load_and_overload_errors():
    light, busy = lm.serve(1, 10, 0.5), lm.serve(9, 10, 0.5)
    assert light.p95_s < busy.p95_s and light.error_rps == busy.error_rps == 0
    over = lm.serve(20, 10, 0.5)
    assert over.served_rps == 10 and over.error_rps == 10 and over.p95_s > busy.p95_s
    fr = lm.bucket_fractions(1.0)
    assert fr == sorted(fr) and fr[lm.LATENCY_BUCKETS.index(1.0)] == pytest.approx(0.95, abs=1e-3)


def test_event_factor_ramps_inside_its_window():
    start, end = NOON, NOON + timedelta(hours=4)
    assert lm.event_factor(start - timedelta(seconds=1), start, end, 3) == 1
    assert lm.event_factor(start + timedelta(hours=1), start, end, 3) == 3
    assert 1 < lm.event_factor(start + timedelta(minutes=5), start, end, 3) < 3


def _twin(catalog, **kw) -> Twin:
    return Twin(catalog, speed=0, start=NOON, warmup_s=60, **kw)


def _step(twin: Twin, seconds: float) -> None:
    with twin.lock:
        twin.clock.advance(seconds)
        twin.tick()


def _svc(twin: Twin, name: str, region: str):
    return twin.services[(name, region)]


def test_the_first_replicas_serve_at_once_and_a_new_one_only_after_warm_up(catalog):
    twin = _twin(catalog)
    sr = _svc(twin, "tts-dub", "us-east")
    # The fleet the twin starts with has been running: no warm-up of its own (a start used to fail every
    # request for the warm-up's length).
    assert sr.last.error_rps == 0 and sr.last.served_rps > 0
    _step(twin, 61)
    assert sr.last.error_rps == 0 and sr.last.served_rps > 0
    util_before = sr.gpu_util
    twin.store.update(DEPLOYMENTS, "team-media", "tts-dub-us-east", lambda o: o["spec"].__setitem__("replicas", 12))
    _step(twin, 1)
    assert sr.gpu_util == pytest.approx(util_before, rel=0.1)  # new replicas still warming
    _step(twin, 61)
    assert sr.gpu_util < util_before * 0.7


def test_rules_mode_cuts_the_llms_gpu_load(catalog):
    from console.twin.sim import CONFIGMAPS

    twin = _twin(catalog)
    _step(twin, 61)
    sr = _svc(twin, "llm-chat", "us-east")
    normal = sr.gpu_util
    twin.store.update(CONFIGMAPS, "team-llm", "llm-chat-routing", lambda o: o["data"].__setitem__("mode", "rules"))
    _step(twin, 1)
    assert sr.mode == "rules" and sr.gpu_util < normal * 0.3


def test_traffic_weights_move_load_between_regions(catalog):
    from console.twin.sim import CONFIGMAPS

    twin = _twin(catalog)
    _step(twin, 61)
    east, west = _svc(twin, "llm-chat", "us-east"), _svc(twin, "llm-chat", "eu-west")
    total = east.last.demand_rps + west.last.demand_rps + _svc(twin, "llm-chat", "ap-southeast").last.demand_rps
    twin.store.update(
        CONFIGMAPS, "team-llm", "llm-chat-routing", lambda o: o["data"].__setitem__("weight.eu-west", "0")
    )
    _step(twin, 1)
    assert west.last.demand_rps == 0
    after = east.last.demand_rps + _svc(twin, "llm-chat", "ap-southeast").last.demand_rps
    assert after == pytest.approx(total, rel=0.05)


def test_faults_region_outage_spike_and_validation(catalog):
    twin = _twin(catalog)
    _step(twin, 61)
    base = _svc(twin, "asr-subtitles", "eu-west").last.demand_rps
    twin.add_fault({"kind": "region_outage", "target": {"region": "eu-west"}, "duration_s": 120})
    sr = _svc(twin, "asr-subtitles", "eu-west")
    assert sr.last.served_rps == 0 and sr.last.error_rps > 0
    assert not twin.nodes["infer-l4-eu-west-000"].ready
    assert "infer-l4-eu-west-000" not in render(twin).split("DCGM_FI_DEV_GPU_TEMP", 2)[2].split("# HELP", 1)[0]
    _step(twin, 121)  # the outage ends by itself
    assert twin.nodes["infer-l4-eu-west-000"].ready
    twin.add_fault(
        {
            "kind": "traffic_spike",
            "target": {"service": "asr-subtitles", "region": "eu-west"},
            "multiplier": 3,
            "duration_s": 60,
        }
    )
    assert _svc(twin, "asr-subtitles", "eu-west").last.demand_rps == pytest.approx(3 * base, rel=0.1)
    with pytest.raises(ApiError) as e:
        twin.add_fault({"kind": "node_loss", "target": {"node": "no-such-node"}})
    assert e.value.code == 422
    with pytest.raises(ApiError) as e:
        twin.add_fault({"kind": "traffic_spike", "target": {"service": "embedding-batch", "region": "ap-southeast"}})
    assert e.value.code == 422 and "does not run in" in e.value.message
    assert all(f.target.get("service") != "embedding-batch" for f in twin.faults.faults.values())
    twin.add_fault({"kind": "xid_storm", "target": {"node": "train-h100-us-east-001"}, "xid": 79})
    assert 'DCGM_FI_DEV_XID_ERRORS{job="dcgm-exporter",gpu="0"' in render(twin)
    assert any(
        line.endswith(" 79") and "train-h100-us-east-001" in line
        for line in render(twin).splitlines()
        if line.startswith("DCGM_FI_DEV_XID_ERRORS")
    )


def test_node_loss_moves_its_pods(catalog):
    twin = _twin(catalog)
    victim = next(p for p in twin.pods.values() if p.owner[:2] == ("service", "tts-dub") and p.node).node
    held = [p.key for p in twin.pods.values() if p.node == victim]
    twin.add_fault({"kind": "node_loss", "target": {"node": victim}, "duration_s": 300})
    assert not any(p.node == victim for p in twin.pods.values())
    assert all(k not in twin.pods for k in held)


def test_metric_names_are_dcgm_exporters_own():
    ref = SHARED / "reference" / "dcgm-exporter-default-counters.csv"
    # Commented rows are the exporter's optional fields, on with a counters file of one's own (-f).
    names = {
        row[0].strip().lstrip("# ") for row in csv.reader(ref.open()) if row and row[0].startswith(("DCGM", "# DCGM"))
    }
    # A DCGM field the exporter reads by name though its sample file does not list it (dcgm_fields.h, id 112).
    names.add("DCGM_FI_DEV_CLOCK_THROTTLE_REASONS")
    assert {n for n, _, _ in DCGM_DEVICE} <= names


def test_exposition_passes_promtool_except_upstream_names(catalog):
    text = render(_twin(catalog))
    out = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
    # promtool lints style too; these complaints are about the exporters' own upstream names, kept as they are.
    upstream = (
        "label names should be written in 'snake_case'",
        'counter metrics should have "_total" suffix',
        'should not have "_count" suffix',
        "metric name should not include type 'counter'",  # DCGM_FI_DEV_PCIE_REPLAY_COUNTER
    )
    problems = [
        line for line in (out.stdout + out.stderr).splitlines() if line and not any(u in line for u in upstream)
    ]
    assert problems == []
    assert "DCGM_FI_DEV_GPU_UTIL{" in text and 'GPU_I_PROFILE="3g.40gb"' in text
    for t in doc()["teams"]:
        for ns, hard in t["quota_gpus"].items():
            line = f'kube_resourcequota{{job="kube-state-metrics",namespace="{ns}",resourcequota="gpu-quota",resource="requests.nvidia.com/gpu",type="hard"}} {hard}'
            assert line in text


def test_a_pod_name_taken_already_gets_another_suffix(catalog):
    # Five hex digits collide within a few hundred pods: like generateName, the twin draws again.
    twin = _twin(catalog)
    seq = twin._pod_seq
    first = twin._new_pod_name("team-llm", "llm-chat-us-east")
    twin._pod_seq = seq  # the same draw again, now that a pod holds that name
    twin.pods[f"team-llm/{first}"] = next(iter(twin.pods.values()))
    second = twin._new_pod_name("team-llm", "llm-chat-us-east")
    assert second != first and second.startswith("llm-chat-us-east-") and twin._pod_seq == seq + 2


def test_scale_down_removes_the_youngest_unready_pods_and_keeps_the_ready_ones(catalog):
    twin = _twin(catalog)
    _step(twin, 61)
    ns, dep = "team-media", "tts-dub-eu-west"
    base = next(o for o in twin.store.iter(DEPLOYMENTS) if o["metadata"]["name"] == dep)["spec"]["replicas"]
    old = {p.name for p in twin.pods.values() if p.deployment == f"{ns}/{dep}"}
    assert len(old) == base and all(p.ready_marked for p in twin.pods.values() if p.name in old)
    twin.store.update(DEPLOYMENTS, ns, dep, lambda o: o["spec"].__setitem__("replicas", base + 4))
    _step(twin, 1)
    assert len([p for p in twin.pods.values() if p.deployment == f"{ns}/{dep}"]) == base + 4
    twin.store.update(DEPLOYMENTS, ns, dep, lambda o: o["spec"].__setitem__("replicas", base))  # the rollback
    _step(twin, 1)
    left = [p for p in twin.pods.values() if p.deployment == f"{ns}/{dep}"]
    assert {p.name for p in left} == old and all(p.ready_marked for p in left)


def _reading(twin: Twin, name: str, node: str, gpu: str = "0") -> float | None:
    for line in render(twin).splitlines():
        if line.startswith(name + "{") and f'Hostname="{node}"' in line and f'gpu="{gpu}",' in line:
            return float(line.rsplit(" ", 1)[1])
    return None


def test_the_xid_gauge_keeps_the_last_xid_until_the_exporter_restarts(catalog):
    twin = _twin(catalog)
    node = "train-h100-us-east-001"
    twin.add_fault({"kind": "xid_storm", "target": {"node": node}, "xid": 79, "duration_s": 60})
    assert _reading(twin, "DCGM_FI_DEV_XID_ERRORS", node) == 79
    twin.clock.advance(120)
    assert _reading(twin, "DCGM_FI_DEV_XID_ERRORS", node) == 79  # the storm is over; the gauge keeps it
    twin.add_fault({"kind": "exporter_down", "target": {"node": node}, "duration_s": 30})
    assert _reading(twin, "DCGM_FI_DEV_XID_ERRORS", node) is None  # a stopped exporter reports nothing
    twin.clock.advance(60)
    assert _reading(twin, "DCGM_FI_DEV_XID_ERRORS", node) == 0  # restarted: it has seen no XID since


def test_health_faults_move_the_exporters_own_health_fields(catalog):
    twin = _twin(catalog)
    node = "train-h100-us-east-001"
    twin.add_fault({"kind": "thermal_throttle", "target": {"node": node}, "duration_s": 100})
    twin.add_fault({"kind": "ecc_failure", "target": {"node": node}, "duration_s": 100})
    twin.add_fault({"kind": "nvlink_errors", "target": {"node": node}, "duration_s": 100})
    twin.clock.advance(50)
    # Bits 0x8 (HW slowdown), 0x20 (SW thermal), 0x40 (HW thermal) of the throttle-reasons mask.
    assert int(_reading(twin, "DCGM_FI_DEV_CLOCK_THROTTLE_REASONS", node) or 0) & 0x68 == 0x68
    assert _reading(twin, "DCGM_FI_DEV_THERMAL_VIOLATION", node) == pytest.approx(50 * 0.6e9, rel=0.05)
    assert _reading(twin, "DCGM_FI_DEV_ROW_REMAP_FAILURE", node) == 1
    assert _reading(twin, "DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS", node) == 1
    flits = _reading(twin, "DCGM_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT_TOTAL", node)
    twin.clock.advance(100)
    # Over: gauges clear; counters keep what they counted and stop growing.
    assert int(_reading(twin, "DCGM_FI_DEV_CLOCK_THROTTLE_REASONS", node) or 0) & 0x68 == 0
    assert _reading(twin, "DCGM_FI_DEV_ROW_REMAP_FAILURE", node) == 0
    assert _reading(twin, "DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS", node) == 1
    after = _reading(twin, "DCGM_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT_TOTAL", node)
    assert flits is not None and after is not None and 0 < flits < after
    twin.clock.advance(100)
    assert _reading(twin, "DCGM_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT_TOTAL", node) == after
    # Another node's GPUs report none of it.
    assert _reading(twin, "DCGM_FI_DEV_THERMAL_VIOLATION", "train-h100-us-east-002") == 0
