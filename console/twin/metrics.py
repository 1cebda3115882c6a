"""The twin's `/metrics`: dcgm-exporter, kube-state-metrics, OpenCost and the services' own metrics,
in their exact names and labels, rendered in the Prometheus text format."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from console.catalog.model import GPU_RESOURCE, kube_resource_name
from console.quantity import parse_quantity
from console.twin import loadmodel as lm
from console.twin.faults import NVLINK_ERRORS_PER_S, THROTTLED_SHARE, Health
from console.twin.kueue import STOPPED, flavor_order
from console.twin.model import CLUSTER_QUEUES, Gpu, Node
from console.twin.resources import BY_PLURAL, Resource
from console.twin.sim import Twin
from console.twin.store import Store

# The dcgm-exporter fields the twin exports (all in ../shared/reference/dcgm-exporter-default-counters.csv).
DCGM_DEVICE = (
    ("DCGM_FI_DEV_GPU_UTIL", "gauge", "GPU utilization (in %)."),
    ("DCGM_FI_DEV_MEM_COPY_UTIL", "gauge", "Memory utilization (in %)."),
    ("DCGM_FI_DEV_FB_USED", "gauge", "Framebuffer memory used (in MiB)."),
    ("DCGM_FI_DEV_FB_FREE", "gauge", "Framebuffer memory free (in MiB)."),
    ("DCGM_FI_DEV_POWER_USAGE", "gauge", "Power draw (in W)."),
    ("DCGM_FI_DEV_GPU_TEMP", "gauge", "GPU temperature (in C)."),
    ("DCGM_FI_DEV_SM_CLOCK", "gauge", "SM clock frequency (in MHz)."),
    ("DCGM_FI_DEV_XID_ERRORS", "gauge", "Value of the last XID error encountered."),
    ("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", "counter", "Total energy consumption since boot (in mJ)."),
    ("DCGM_FI_PROF_GR_ENGINE_ACTIVE", "gauge", "Ratio of time the graphics engine is active."),
    # Health: what the GPU alerts read (faults thermal_throttle, ecc_failure, nvlink_errors make them move).
    (
        "DCGM_FI_DEV_CLOCK_THROTTLE_REASONS",
        "gauge",
        "Current clock throttle reasons (bitmask of DCGM_CLOCKS_THROTTLE_REASON_*).",
    ),
    ("DCGM_FI_DEV_THERMAL_VIOLATION", "counter", "Throttling duration due to thermal constraints (in ns)."),
    ("DCGM_FI_DEV_POWER_VIOLATION", "counter", "Throttling duration due to power constraints (in ns)."),
    ("DCGM_FI_DEV_PCIE_REPLAY_COUNTER", "counter", "Total number of PCIe retries."),
    ("DCGM_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT_TOTAL", "counter", "Total number of NVLink flow-control CRC errors."),
    ("DCGM_FI_DEV_NVLINK_REPLAY_ERROR_COUNT_TOTAL", "counter", "Total number of NVLink retries."),
    ("DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS", "counter", "Number of remapped rows for uncorrectable errors"),
    ("DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS", "counter", "Number of remapped rows for correctable errors"),
    ("DCGM_FI_DEV_ROW_REMAP_FAILURE", "gauge", "Whether remapping of rows has failed"),
)
# DCGM_CLOCKS_THROTTLE_REASON_* bits (dcgm_structs.h): what the bitmask reports.
THROTTLE_IDLE, THROTTLE_HW_SLOWDOWN, THROTTLE_SW_THERMAL, THROTTLE_HW_THERMAL = 0x1, 0x8, 0x20, 0x40
# On MIG GPUs dcgm-exporter reports these per instance (GPU_I_PROFILE, GPU_I_ID); the rest per device.
DRIVER = "550.54.15"
# The job each exporter's series carry, as a cluster's Prometheus scrapes them (the twin is one target, scraped
# with `honor_labels`, so these stay): what the catalog's `monitoring:` selectors read by default.
DCGM_JOB, KSM_JOB, OPENCOST_JOB = "dcgm-exporter", "kube-state-metrics", "opencost"
NODE_JOB = "node-exporter"  # its `instance` is the node's name, as kube-prometheus relabels it
KUEUE_JOB = "kueue"  # kueue-controller-manager's metrics service
# node-exporter's counters the twin exports: name, help, the device it is read on ("": the NFS mount), in
# NodeIO's order.
NODE_EXPORTER = (
    ("node_disk_read_bytes_total", "The total number of bytes read successfully.", "nvme0n1"),
    ("node_disk_written_bytes_total", "The total number of bytes written successfully.", "nvme0n1"),
    ("node_disk_io_time_seconds_total", "Total seconds spent doing I/Os.", "nvme0n1"),
    ("node_network_receive_bytes_total", "Network device statistic receive_bytes.", "eth0"),
    ("node_network_transmit_bytes_total", "Network device statistic transmit_bytes.", "eth0"),
    ("node_mountstats_nfs_total_read_bytes_total", "Number of bytes read from the NFS server, in total.", ""),
    ("node_mountstats_nfs_total_write_bytes_total", "Number of bytes written to the NFS server, in total.", ""),
)
KSM_VERSION = "v2.13.0"  # what the twin's kube-state-metrics series say they come from


def _labels(**kv: object) -> str:
    return "{" + ",".join(f'{k}="{_esc(v)}"' for k, v in kv.items() if v is not None and v != "") + "}"


def _esc(v: object) -> str:
    return str(v).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _head(name: str, kind: str, help_: str) -> str:
    return f"# HELP {name} {help_}\n# TYPE {name} {kind}\n"


def _job(chunks: Iterator[str], job: str) -> Iterator[str]:
    """Each sample line of `chunks` with the `job` label first."""
    for c in chunks:
        if c[0] == "#":
            yield c
        else:
            at = c.index("{") + 1
            yield f'{c[:at]}job="{job}"{"" if c[at] == "}" else ","}{c[at:]}'


def render(twin: Twin) -> str:
    with twin.lock:
        out = [*_dcgm(twin), *_ksm(twin), *_opencost(twin), *_kueue(twin), *_services(twin), *_node_exporter(twin)]
        out.append(_head("gpuops_twin_sim_time_seconds", "gauge", "The twin's simulated clock (Unix seconds)."))
        out.append(f"gpuops_twin_sim_time_seconds {twin.clock.now().timestamp():.3f}\n")
    return "".join(out)


class Frames:
    """`/metrics` as the backfill reads it, step after step (callers hold the twin's lock): the same lines, in
    two parts. What follows the load (devices, services) is rendered at every step; what only the
    Kubernetes objects decide (kube-state-metrics, OpenCost, Kueue), family by family, again only when the
    resources it reads change: batch Jobs come and go in a steady fleet's past, its nodes and deployments
    do not."""

    def __init__(self, twin: Twin) -> None:
        self.twin = twin
        self._keys: list[tuple[int, ...] | None] = [None] * len(OBJECT_PARTS)
        self._parts: list[str] = [""] * len(OBJECT_PARTS)

    def dynamic(self, only: frozenset[str] | None = None) -> str:
        """The load-driven lines; with `only`, of those DCGM and node-exporter families alone (the history keeps
        a few of DCGM's 21, and formatting the rest was most of its time)."""
        return "".join([*_dcgm(self.twin, only), *_services(self.twin, lag=0.0), *_node_exporter(self.twin, only, 0.0)])

    def object_parts(self) -> list[str]:
        """Each object-driven part's text: the same string object as before while what it reads is unchanged."""
        changed = self.twin.store.changed
        for i, (reads, render) in enumerate(OBJECT_PARTS):
            key = tuple(changed.get(r.qualified, 0) for r in reads)
            if key != self._keys[i]:
                self._keys[i], self._parts[i] = key, "".join(render(self.twin))
        return self._parts

    def objects(self) -> str:
        return "".join(self.object_parts())


def _gpu_base(node: Node, g: Gpu) -> dict[str, object]:
    return {
        "job": DCGM_JOB,
        "gpu": g.index,
        "UUID": g.uuid,
        "pci_bus_id": f"00000000:{0x10 + g.index:02X}:00.0",
        "device": f"nvidia{g.index}",
        "modelName": g.model,
        "Hostname": node.name,
        "DCGM_FI_DRIVER_VERSION": DRIVER,
    }


def _put(rows: dict[str, list[str]], lab: str, fields: tuple[tuple[str, float, str], ...]) -> None:
    """Each (family, value, format) as a sample line, for the families `rows` holds."""
    for name, v, spec in fields:
        if name in rows:
            rows[name].append(f"{name}{lab} {v:{spec}}\n")


SLOT_FIELDS = frozenset({"DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_FB_FREE", "DCGM_FI_PROF_GR_ENGINE_ACTIVE"})


def _mig_slots(twin: Twin, rows: dict[str, list[str]], g: Gpu, base: dict[str, object]) -> None:
    """A MIG GPU's memory and engine activity, per instance, as dcgm-exporter reports them."""
    per_slot_mem = g.memory_mib / g.mig_slots
    for slot, key in enumerate(g.slots):
        pod = twin.pods.get(key) if key else None
        lab = dict(base, GPU_I_PROFILE=g.mig_profile, GPU_I_ID=slot)
        if pod:
            lab.update(container="main", namespace=pod.namespace, pod=pod.name)
        u = twin.pod_util(pod) if pod else 0.0
        used = per_slot_mem * (0.6 + 0.3 * u / 100) if pod else per_slot_mem * 0.01
        _put(rows, _labels(**lab), (
            ("DCGM_FI_DEV_FB_USED", used, ".0f"),
            ("DCGM_FI_DEV_FB_FREE", per_slot_mem - used, ".0f"),
            ("DCGM_FI_PROF_GR_ENGINE_ACTIVE", u / 100, ".4f"),
        ))  # fmt: skip


def _whole_gpu(
    twin: Twin, rows: dict[str, list[str]], node: Node, g: Gpu, base: dict[str, object]
) -> tuple[float, str]:
    """A whole GPU's memory and engine activity, under its first holder's pod; (busy percent, its labels)."""
    util, mem = twin.gpu_readings(node, g)
    first = twin.pods.get(g.holders[0]) if g.holders else None
    lab = dict(base)
    if first:
        lab.update(container="main", namespace=first.namespace, pod=first.name)
    lab_dev = _labels(**lab)
    _put(rows, lab_dev, (
        ("DCGM_FI_DEV_FB_USED", mem, ".0f"),
        ("DCGM_FI_DEV_FB_FREE", g.memory_mib - mem, ".0f"),
        ("DCGM_FI_PROF_GR_ENGINE_ACTIVE", util / 100, ".4f"),
    ))  # fmt: skip
    return util, lab_dev


def _dcgm(twin: Twin, only: frozenset[str] | None = None) -> Iterator[str]:
    """dcgm-exporter's device families; with `only`, those alone."""
    rows: dict[str, list[str]] = {name: [] for name, _, _ in DCGM_DEVICE if only is None or name in only}
    slot_rows = not SLOT_FIELDS.isdisjoint(rows)
    effects = twin.faults.effects(twin.clock.now())
    for node in twin.nodes.values() if rows else ():
        if not node.ready or not node.gpus or node.name in effects.exporters_down:
            continue  # the exporter on a down node is not scraped; a stopped one reports nothing
        xid = effects.xid_by_node.get(node.name, 0)
        health = effects.health.get(node.name, Health())
        for g in node.gpus:
            base = _gpu_base(node, g)
            if g.mig_slots:
                if slot_rows:
                    _mig_slots(twin, rows, g, base)
                util, lab_dev = twin.mig_busy(g), _labels(**base)
            else:
                util, lab_dev = _whole_gpu(twin, rows, node, g, base)
            power = g.idle + (g.tdp - g.idle) * util / 100
            temp, clock = 32 + 45 * util / 100, 1980 if util > 1 else 210
            if health.throttled:
                temp, clock = max(temp, 88.0) + 5, clock // 2
            _put(rows, lab_dev, (
                ("DCGM_FI_DEV_GPU_UTIL", util, ".0f"),
                ("DCGM_FI_DEV_MEM_COPY_UTIL", util * 0.6, ".0f"),
                ("DCGM_FI_DEV_POWER_USAGE", power, ".3f"),
                ("DCGM_FI_DEV_GPU_TEMP", temp, ".0f"),
                ("DCGM_FI_DEV_SM_CLOCK", clock, ""),
            ))  # fmt: skip
            _health_rows(rows, lab_dev, health, util)
            _put(rows, lab_dev, (
                ("DCGM_FI_DEV_XID_ERRORS", xid, ""),
                ("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", g.energy_mj, ".0f"),
            ))  # fmt: skip
    for name, kind, help_ in DCGM_DEVICE:
        if name in rows:
            yield _head(name, kind, help_)
            yield from rows[name]


def _health_rows(rows: dict[str, list[str]], lab: str, h: Health, util: float) -> None:
    """One GPU's health fields; counters are integrals of the faults over the sim clock, so they only grow."""
    reasons = (THROTTLE_HW_SLOWDOWN | THROTTLE_SW_THERMAL | THROTTLE_HW_THERMAL) if h.throttled else 0
    reasons |= THROTTLE_IDLE if util < 1 else 0
    flits = h.link_errors_s * NVLINK_ERRORS_PER_S
    values = (
        ("DCGM_FI_DEV_CLOCK_THROTTLE_REASONS", reasons),
        ("DCGM_FI_DEV_THERMAL_VIOLATION", round(h.throttled_s * THROTTLED_SHARE * 1e9)),
        ("DCGM_FI_DEV_POWER_VIOLATION", 0),
        ("DCGM_FI_DEV_PCIE_REPLAY_COUNTER", round(flits / 4)),
        ("DCGM_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT_TOTAL", round(flits)),
        ("DCGM_FI_DEV_NVLINK_REPLAY_ERROR_COUNT_TOTAL", round(flits / 2)),
        ("DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS", h.uncorrectable_rows),
        ("DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS", 0),
        ("DCGM_FI_DEV_ROW_REMAP_FAILURE", int(h.remap_failure)),
    )
    _put(rows, lab, tuple((name, v, "") for name, v in values))


def _ksm(twin: Twin) -> Iterator[str]:
    """kube-state-metrics' families, object kind by object kind."""
    yield from _job(_ksm_nodes(twin.store, twin.ksm_node_labels), KSM_JOB)
    yield from _job(_ksm_pods(twin), KSM_JOB)
    yield from _job(_ksm_namespaces(twin.store), KSM_JOB)
    yield from _job(_ksm_deployments(twin.store), KSM_JOB)
    yield from _job(_ksm_hpas(twin.store), KSM_JOB)


# The object-driven parts of /metrics, each with the resources whose changes it follows.
OBJECT_PARTS: tuple[tuple[tuple[Resource, ...], Callable[[Twin], Iterator[str]]], ...] = (
    ((BY_PLURAL["nodes"],), lambda t: _job(_ksm_nodes(t.store, t.ksm_node_labels), KSM_JOB)),
    ((BY_PLURAL["pods"],), lambda t: _job(_ksm_pods(t), KSM_JOB)),
    ((BY_PLURAL["namespaces"], BY_PLURAL["resourcequotas"]), lambda t: _job(_ksm_namespaces(t.store), KSM_JOB)),
    ((BY_PLURAL["deployments"],), lambda t: _job(_ksm_deployments(t.store), KSM_JOB)),
    ((BY_PLURAL["horizontalpodautoscalers"],), lambda t: _job(_ksm_hpas(t.store), KSM_JOB)),
    ((BY_PLURAL["nodes"],), lambda t: _opencost(t)),
    ((CLUSTER_QUEUES, BY_PLURAL["workloads"]), lambda t: _kueue(t)),
)


def _ksm_nodes(store: Store, allowed: frozenset[str] | None = None) -> Iterator[str]:
    """`allowed`: the node labels kube-state-metrics' allowlist names (None: `nodes=[*]`; empty: none, its
    default since 2.0, when kube_node_labels carries the node's name alone)."""
    nodes = list(store.iter(BY_PLURAL["nodes"]))
    yield _head("kube_state_metrics_build_info", "gauge", "kube-state-metrics' version (its telemetry port).")
    yield f"kube_state_metrics_build_info{_labels(version=KSM_VERSION, goversion='go1.22.5')} 1\n"
    yield _head("kube_node_info", "gauge", "Information about a cluster node.")
    for n in nodes:
        yield f"kube_node_info{_labels(node=n['metadata']['name'], kubelet_version='v1.30.0-twin')} 1\n"
    yield _head("kube_node_labels", "gauge", "Kubernetes labels converted to Prometheus labels.")
    for n in nodes:
        lab = {
            "label_" + kube_resource_name(k): v
            for k, v in sorted(n["metadata"].get("labels", {}).items())
            if allowed is None or k in allowed
        }
        yield f"kube_node_labels{_labels(node=n['metadata']['name'], **lab)} 1\n"
    for fam, field, help_ in (
        ("kube_node_status_capacity", "capacity", "The capacity for different resources of a node."),
        (
            "kube_node_status_allocatable",
            "allocatable",
            "The allocatable for different resources of a node that are available for scheduling.",
        ),
    ):
        yield _head(fam, "gauge", help_)
        for n in nodes:
            name = n["metadata"]["name"]
            for res, qty in sorted(n["status"][field].items()):
                unit = {"cpu": "core", "memory": "byte"}.get(res, "integer")
                value = parse_quantity(qty)
                yield f"{fam}{_labels(node=name, resource=kube_resource_name(res), unit=unit)} {value}\n"
    yield _head("kube_node_status_condition", "gauge", "The condition of a cluster node.")
    for n in nodes:
        for c in n["status"].get("conditions", []):
            for st in ("true", "false", "unknown"):
                v = 1 if c["status"].lower() == st else 0
                yield f"kube_node_status_condition{_labels(node=n['metadata']['name'], condition=c['type'], status=st)} {v}\n"
    yield _head("kube_node_spec_unschedulable", "gauge", "Whether a node can schedule new pods.")
    for n in nodes:
        yield f"kube_node_spec_unschedulable{_labels(node=n['metadata']['name'])} {int(bool(n['spec'].get('unschedulable')))}\n"


def _ksm_pods(twin: Twin) -> Iterator[str]:
    store = twin.store
    pods = list(twin.pods.values())
    yield _head("kube_pod_info", "gauge", "Information about pod.")
    for p in pods:
        kind, owner = (
            ("ReplicaSet", p.deployment.split("/")[1])
            if p.deployment
            else ("Job", p.job.split("/")[1])
            if p.job
            else ("<none>", "<none>")
        )
        yield (
            f"kube_pod_info{_labels(namespace=p.namespace, pod=p.name, node=p.node or '', created_by_kind=kind, created_by_name=owner)} 1\n"
        )
    yield _head("kube_pod_labels", "gauge", "Kubernetes labels converted to Prometheus labels.")
    for o in store.iter(BY_PLURAL["pods"]):
        meta = o["metadata"]
        lab = {"label_" + kube_resource_name(k): v for k, v in sorted((meta.get("labels") or {}).items())}
        yield f"kube_pod_labels{_labels(namespace=meta['namespace'], pod=meta['name'], **lab)} 1\n"
    yield _head("kube_pod_status_phase", "gauge", "The pods current phase.")
    for p in pods:
        phase = "Running" if p.node else "Pending"
        for ph in ("Pending", "Running", "Succeeded", "Failed", "Unknown"):
            yield f"kube_pod_status_phase{_labels(namespace=p.namespace, pod=p.name, phase=ph)} {int(ph == phase)}\n"
    yield _head(
        "kube_pod_container_resource_requests", "gauge", "The number of requested request resource by a container."
    )
    for p in pods:
        for res, v in sorted(p.requests.items()):
            unit, value = (
                ("core", v / 1000) if res == "cpu" else ("byte", v * 1024 * 1024) if res == "memory" else ("integer", v)
            )
            req_lab = _labels(
                namespace=p.namespace,
                pod=p.name,
                container="main",
                node=p.node or "",
                resource=kube_resource_name(res),
                unit=unit,
            )
            yield f"kube_pod_container_resource_requests{req_lab} {value:g}\n"


def _ksm_namespaces(store: Store) -> Iterator[str]:
    yield _head("kube_namespace_labels", "gauge", "Kubernetes labels converted to Prometheus labels.")
    for ns in store.iter(BY_PLURAL["namespaces"]):
        lab = {"label_" + kube_resource_name(k): v for k, v in sorted(ns["metadata"].get("labels", {}).items())}
        yield f"kube_namespace_labels{_labels(namespace=ns['metadata']['name'], **lab)} 1\n"
    yield _head("kube_resourcequota", "gauge", "Information about resource quota.")
    for q in store.iter(BY_PLURAL["resourcequotas"]):
        ns, name = q["metadata"]["namespace"], q["metadata"]["name"]
        status = q.get("status") or {}
        for typ in ("hard", "used"):
            for res, qty in sorted((status.get(typ) or {}).items()):
                yield f"kube_resourcequota{_labels(namespace=ns, resourcequota=name, resource=res, type=typ)} {parse_quantity(qty):g}\n"


def _ksm_deployments(store: Store) -> Iterator[str]:
    deps = list(store.iter(BY_PLURAL["deployments"]))
    for fam, get, help_ in (
        (
            "kube_deployment_spec_replicas",
            lambda d: d["spec"].get("replicas", 0),
            "Number of desired pods for a deployment.",
        ),
        (
            "kube_deployment_status_replicas",
            lambda d: d.get("status", {}).get("replicas", 0),
            "The number of replicas per deployment.",
        ),
        (
            "kube_deployment_status_replicas_available",
            lambda d: d.get("status", {}).get("availableReplicas", 0),
            "The number of available replicas per deployment.",
        ),
        (
            "kube_deployment_status_replicas_ready",
            lambda d: d.get("status", {}).get("readyReplicas", 0),
            "The number of ready replicas per deployment.",
        ),
        (
            "kube_deployment_status_replicas_unavailable",
            lambda d: d.get("status", {}).get("unavailableReplicas", 0),
            "The number of unavailable replicas per deployment.",
        ),
    ):
        yield _head(fam, "gauge", help_)
        for d in deps:
            yield f"{fam}{_labels(namespace=d['metadata']['namespace'], deployment=d['metadata']['name'])} {get(d)}\n"
    yield _head("kube_deployment_labels", "gauge", "Kubernetes labels converted to Prometheus labels.")
    for d in deps:
        lab = {"label_" + kube_resource_name(k): v for k, v in sorted(d["metadata"].get("labels", {}).items())}
        yield f"kube_deployment_labels{_labels(namespace=d['metadata']['namespace'], deployment=d['metadata']['name'], **lab)} 1\n"


def _ksm_hpas(store: Store) -> Iterator[str]:
    hpas = list(store.iter(BY_PLURAL["horizontalpodautoscalers"]))
    for fam, get, help_ in (
        (
            "kube_horizontalpodautoscaler_spec_min_replicas",
            lambda h: h["spec"].get("minReplicas", 1),
            "Lower limit for the number of pods that can be set by the autoscaler, default 1.",
        ),
        (
            "kube_horizontalpodautoscaler_spec_max_replicas",
            lambda h: h["spec"].get("maxReplicas", 1),
            "Upper limit for the number of pods that can be set by the autoscaler; cannot be smaller than MinReplicas.",
        ),
        (
            "kube_horizontalpodautoscaler_status_current_replicas",
            lambda h: (h.get("status") or {}).get("currentReplicas", 0),
            "Current number of replicas of pods managed by this autoscaler.",
        ),
        (
            "kube_horizontalpodautoscaler_status_desired_replicas",
            lambda h: (h.get("status") or {}).get("desiredReplicas", 0),
            "Desired number of replicas of pods managed by this autoscaler.",
        ),
    ):
        yield _head(fam, "gauge", help_)
        for h in hpas:
            yield f"{fam}{_labels(namespace=h['metadata']['namespace'], horizontalpodautoscaler=h['metadata']['name'])} {get(h)}\n"


def _opencost(twin: Twin) -> Iterator[str]:
    return _job(_opencost_families(twin), OPENCOST_JOB)


def _opencost_families(twin: Twin) -> Iterator[str]:
    yield _head("node_gpu_hourly_cost", "gauge", "node_gpu_hourly_cost hourly cost per GPU")
    for n in twin.nodes.values():
        if n.gpus:
            lab = _labels(node=n.name, instance=n.name, instance_type=f"{n.pool}.{n.model}", region=n.region)
            yield f"node_gpu_hourly_cost{lab} {n.gpu_price:g}\n"
    yield _head("node_gpu_count", "gauge", "node_gpu_count count of gpu on this node")
    for n in twin.nodes.values():
        if n.gpus:
            yield f"node_gpu_count{_labels(node=n.name, instance=n.name, region=n.region)} {len(n.gpus)}\n"
    yield _head("node_cpu_hourly_cost", "gauge", "node_cpu_hourly_cost hourly cost for each cpu on this node")
    price = twin.catalog.prices.cpu_core_hourly
    for n in twin.nodes.values():
        yield f"node_cpu_hourly_cost{_labels(node=n.name, instance=n.name, region=n.region)} {price:g}\n"


def _kueue(twin: Twin) -> Iterator[str]:
    return _job(_kueue_families(twin), KUEUE_JOB)


def _kueue_families(twin: Twin) -> Iterator[str]:
    """Kueue's controller metrics, read from its objects' status as Kueue computes them (console/twin/kueue.py)."""
    cqs = sorted(twin.store.iter(CLUSTER_QUEUES), key=lambda o: o["metadata"]["name"])
    if not cqs:
        return
    rows = []
    for cq in cqs:
        name, spec, st = cq["metadata"]["name"], cq["spec"], cq.get("status") or {}
        active = spec.get("stopPolicy") not in STOPPED
        usage = {f["name"]: f["resources"][0] for f in st.get("flavorsUsage", [])}
        rows.append((name, spec.get("cohort", ""), active, st, usage, flavor_order(cq)))
    yield _head(
        "kueue_pending_workloads", "gauge", "The number of pending workloads, per 'cluster_queue' and 'status'."
    )
    for name, _, active, st, _, _ in rows:
        for status in ("active", "inadmissible"):
            n = st.get("pendingWorkloads", 0) if (status == "active") == active else 0
            yield f"kueue_pending_workloads{_labels(cluster_queue=name, status=status)} {n}\n"
    yield _head(
        "kueue_admitted_active_workloads",
        "gauge",
        "The number of admitted Workloads that are active, per 'cluster_queue'.",
    )
    for name, _, _, st, _, _ in rows:
        yield f"kueue_admitted_active_workloads{_labels(cluster_queue=name)} {st.get('admittedWorkloads', 0)}\n"
    yield _head(
        "kueue_admitted_workloads_total", "counter", "The total number of admitted workloads per 'cluster_queue'."
    )
    for name, *_ in rows:
        yield f"kueue_admitted_workloads_total{_labels(cluster_queue=name)} {twin.kueue.admitted_total.get(name, 0)}\n"
    yield _head("kueue_evicted_workloads_total", "counter", "The number of evicted workloads per 'cluster_queue'.")
    for name, *_ in rows:
        n = twin.kueue.evicted_total.get(name, 0)
        yield f"kueue_evicted_workloads_total{_labels(cluster_queue=name, reason='ClusterQueueStopped')} {n}\n"
    yield _head(
        "kueue_cluster_queue_status",
        "gauge",
        "Reports 'cluster_queue' with its 'status' (pending, active or terminating).",
    )
    for name, _, active, *_ in rows:
        for status in ("pending", "active", "terminating"):
            on = int(status == ("active" if active else "pending"))
            yield f"kueue_cluster_queue_status{_labels(cluster_queue=name, status=status)} {on}\n"
    quota = (
        (
            "kueue_cluster_queue_nominal_quota",
            "Reports the cluster_queue's resource nominal quota within all the flavors",
        ),
        (
            "kueue_cluster_queue_borrowing_limit",
            "Reports the cluster_queue's resource borrowing limit within all the flavors",
        ),
        (
            "kueue_cluster_queue_resource_usage",
            "Reports the cluster_queue's total resource usage within all the flavors",
        ),
    )
    for fam, help_ in quota:
        yield _head(fam, "gauge", help_)
        for name, cohort, _, _, usage, flavors in rows:
            for flavor, nominal, limit in flavors:
                if fam.endswith("borrowing_limit") and limit is None:
                    continue
                value = {"nominal_quota": nominal, "borrowing_limit": limit}.get(fam.rsplit("queue_", 1)[1])
                if value is None:
                    value = parse_quantity(usage.get(flavor, {}).get("total", "0"))
                lab = _labels(cohort=cohort, cluster_queue=name, flavor=flavor, resource=GPU_RESOURCE)
                yield f"{fam}{lab} {value:g}\n"


def _node_exporter(twin: Twin, only: frozenset[str] | None = None, lag: float | None = None) -> Iterator[str]:
    """Each ready node's disk, network and (on a pool with an NFS store) NFS mount counters."""
    lag = twin.since_tick() if lag is None else lag
    nodes = [n for n in twin.nodes.values() if n.ready and not n.lost]
    exports = {p.name: p.storage.kind for p in twin.catalog.pools if p.storage}
    values = {n.name: n.io.at(lag) for n in nodes}
    for k, (name, help_, device) in enumerate(NODE_EXPORTER):
        if only is not None and name not in only:
            continue
        yield _head(name, "counter", help_)
        for n in nodes:
            if device:
                lab = _labels(job=NODE_JOB, instance=n.name, device=device)
            elif exports.get(n.pool) == "nfs":
                lab = _labels(job=NODE_JOB, instance=n.name, export=f"{n.pool}-{n.region}.store:/media", protocol="tcp")
            else:
                continue
            yield f"{name}{lab} {values[n.name][k]:.3f}\n"


def _services(twin: Twin, lag: float | None = None) -> Iterator[str]:
    srs = list(twin.services.values())
    lag = twin.since_tick() if lag is None else lag
    # Six decimals: at 0.1 request/s, three would move a p95 by tenths of a percent from scrape to scrape.
    totals = {id(sr): sr.totals(lag) for sr in srs}
    yield _head("service_requests_total", "counter", "Requests handled by a service, by result code.")
    for sr in srs:
        ok, err, _, _, _ = totals[id(sr)]
        yield f"service_requests_total{_labels(service=sr.service.name, region=sr.region, code='200')} {ok:.6f}\n"
        yield f"service_requests_total{_labels(service=sr.service.name, region=sr.region, code='503')} {err:.6f}\n"
    yield _head("service_request_duration_seconds", "histogram", "Request latency of a service.")
    for sr in srs:
        ok, _, buckets, dsum, _ = totals[id(sr)]
        base = {"service": sr.service.name, "region": sr.region}
        for le, v in zip(lm.LATENCY_BUCKETS, buckets, strict=True):
            yield f"service_request_duration_seconds_bucket{_labels(**base, le=f'{le:g}')} {v:.6f}\n"
        yield f"service_request_duration_seconds_bucket{_labels(**base, le='+Inf')} {ok:.6f}\n"
        yield f"service_request_duration_seconds_sum{_labels(**base)} {dsum:.6f}\n"
        yield f"service_request_duration_seconds_count{_labels(**base)} {ok:.6f}\n"
    yield _head("service_generated_tokens_total", "counter", "Tokens generated by an LLM service.")
    for sr in srs:
        if sr.service.tokens_per_request:
            tokens = totals[id(sr)][4]
            yield f"service_generated_tokens_total{_labels(service=sr.service.name, region=sr.region)} {tokens:.1f}\n"
    yield _head("service_mode", "gauge", "The serving mode of a service (1 for the current one).")
    for sr in srs:
        for mode in ("normal", "rules", "cpu"):
            yield f"service_mode{_labels(service=sr.service.name, region=sr.region, mode=mode)} {int(sr.mode == mode)}\n"
    yield _head("service_traffic_weight", "gauge", "The traffic weight routed to a service's region.")
    for sr in srs:
        yield f"service_traffic_weight{_labels(service=sr.service.name, region=sr.region)} {sr.weight:g}\n"
