"""Every PromQL string the console, the dashboards and the rules read, once, by name.

A refresh sends a fixed handful of requests whatever the fleet's size: aggregates `by (pool, region)`, joined
to the node labels in Prometheus, never one query per GPU or per node. Several named expressions travel in
one request as a union, each tagged with the label `gpuops_q` (see `tagged`). Per-node readings are read only
for the pool an operator drills into (`pool_nodes`), per-GPU readings for the one node (`gpu_detail`).
"""

from __future__ import annotations

import re

IDLE_BUSY_PCT = 5.0  # a GPU that holds a pod and is busier than this is not idle
GPU_RESOURCES = "nvidia_com_gpu|nvidia_com_mig_.+|alibabacloud_com_gpu_milli"
TAG = "gpuops_q"

# --- which pool, region and GPU model each node is in: kube-state-metrics' node labels -------------------
# `{sel}` narrows it to one pool (see `pool_nodes`); the whole fleet otherwise.
_NODE_POOL = (
    "max by (node, pool, region, model) ("
    'label_replace(label_replace(label_replace(kube_node_labels{sel}, "pool", "$1", "label_gpuops_io_pool", "(.+)"),'
    ' "region", "$1", "label_topology_kubernetes_io_region", "(.+)"),'
    ' "model", "$1", "label_nvidia_com_gpu_product", "(.+)"))'
)
# The same, keyed by dcgm-exporter's host label.
_HOST_POOL = f'label_replace({_NODE_POOL}, "Hostname", "$1", "node", "(.+)")'


def _dcgm(expr: str) -> str:
    """A dcgm-exporter expression with `hostname` (older exporters) copied into `Hostname`."""
    return f'label_replace({expr}, "Hostname", "$1", "hostname", "(.+)")'


# --- what a pool's nodes hold, as (aggregation, expression, the label it joins on) -------------------------
NODE_READY = 'kube_node_status_condition{condition="Ready", status="true"}'
NODE_UNSCHEDULABLE = "kube_node_spec_unschedulable"
NODE_GPU_ALLOCATABLE = f'kube_node_status_allocatable{{resource=~"{GPU_RESOURCES}"}}'
NODE_GPU_REQUESTED = f'kube_pod_container_resource_requests{{resource=~"{GPU_RESOURCES}", node!=""}}'
GPU_BUSY_PCT = "DCGM_FI_DEV_GPU_UTIL"
# Whole GPUs that hold a pod and are under the idle threshold.
GPU_IDLE = f'DCGM_FI_DEV_GPU_UTIL{{pod!=""}} < {IDLE_BUSY_PCT:g}'
# Idle MIG instances, each as its share of its GPU.
MIG_IDLE_SHARE = (
    f'(DCGM_FI_PROF_GR_ENGINE_ACTIVE{{GPU_I_ID!="", pod!=""}} < {IDLE_BUSY_PCT / 100:g}) * 0'
    " + on (Hostname, hostname, gpu) group_left ()"
    ' (1 / count by (Hostname, hostname, gpu) (DCGM_FI_PROF_GR_ENGINE_ACTIVE{GPU_I_ID!=""}))'
)
GPU_FB_USED = "DCGM_FI_DEV_FB_USED"
GPU_FB_FREE = "DCGM_FI_DEV_FB_FREE"
GPU_POWER = "DCGM_FI_DEV_POWER_USAGE"
GPU_TEMP = "DCGM_FI_DEV_GPU_TEMP"
GPU_XID = "DCGM_FI_DEV_XID_ERRORS"

# name: (aggregation, expression, "node" for kube-state-metrics or "Hostname" for dcgm-exporter, extra group)
POOL_PARTS: dict[str, tuple[str, str, str, str]] = {
    "ready": ("sum", NODE_READY, "node", ""),
    "unschedulable": ("sum", NODE_UNSCHEDULABLE, "node", ""),
    "allocatable": ("sum", NODE_GPU_ALLOCATABLE, "node", "resource"),
    "requested": ("sum", NODE_GPU_REQUESTED, "node", "resource"),
    "gpus": ("count", GPU_BUSY_PCT, "Hostname", ""),
    "busy_sum": ("sum", GPU_BUSY_PCT, "Hostname", ""),
    "idle_gpus": ("count", GPU_IDLE, "Hostname", ""),
    "idle_mig": ("sum", MIG_IDLE_SHARE, "Hostname", ""),
    "fb_used": ("sum", GPU_FB_USED, "Hostname", ""),
    "fb_free": ("sum", GPU_FB_FREE, "Hostname", ""),
    "power": ("sum", GPU_POWER, "Hostname", ""),
    "temp_max": ("max", GPU_TEMP, "Hostname", ""),
    "xid_max": ("max", GPU_XID, "Hostname", ""),
}


def _parts(by: str, sel: str = "") -> dict[str, str]:
    """Every part aggregated `by` pool (`"pool, region"`) or by node (`"node"`), joined to the node labels.

    Each part is first reduced per node, then joined: the join sees one series per node, not one per GPU."""
    out = {"nodes": f"count by ({by}, model) ({_NODE_POOL.format(sel=sel)})"}
    for name, (agg, expr, on, extra) in POOL_PARTS.items():
        group = ", ".join(x for x in (by, extra) if x)
        outer = "max" if agg == "max" else "sum"  # counts per node add up
        if on == "Hostname":
            # Grouped by node: dcgm's host is the node; report it under the name `node`.
            labels = "pool, region" if by != "node" else "node"
            per_node = _dcgm(f"{agg} by (Hostname, hostname) ({expr})")
            joined = f"{per_node} * on (Hostname) group_left ({labels}) {_HOST_POOL.format(sel=sel)}"
        else:
            labels = "pool, region" if by != "node" else ""
            per_node = f"{agg} by ({', '.join(x for x in ('node', extra) if x)}) ({expr})"
            joined = f"{per_node} * on (node) group_left ({labels}) {_NODE_POOL.format(sel=sel)}"
        out[name] = f"{outer} by ({group}) ({joined})"
    return out


POOLS = _parts("pool, region")
# Three requests, so Prometheus evaluates them side by side (one query runs on one core).
POOLS_INVENTORY = {k: v for k, v in POOLS.items() if k == "nodes" or POOL_PARTS[k][2] == "node"}
POOLS_BUSY = {k: POOLS[k] for k in ("gpus", "busy_sum", "idle_gpus", "idle_mig")}
POOLS_READINGS = {k: v for k, v in POOLS.items() if k not in POOLS_INVENTORY and k not in POOLS_BUSY}


def pool_nodes(pool: str, region: str) -> str:
    """The same readings per node, for one pool and region only (the drill-down), in one request."""
    sel = f'{{label_gpuops_io_pool="{label_value(pool)}", label_topology_kubernetes_io_region="{label_value(region)}"}}'
    return tagged(_parts("node", sel))


# --- quotas and deployments -----------------------------------------------------------------------------
QUOTAS = 'kube_resourcequota{resource=~"requests.nvidia.com/.+|requests.cpu|requests.memory"}'
DEPLOYMENT_REPLICAS = "kube_deployment_spec_replicas"
DEPLOYMENT_AVAILABLE = "kube_deployment_status_replicas_available"

# --- services' own metrics ------------------------------------------------------------------------------
SERVICE_RPS = "sum by (service, region) (rate(service_requests_total[1m]))"
SERVICE_ERROR_RPS = 'sum by (service, region) (rate(service_requests_total{code=~"5.."}[1m]))'
SERVICE_RPS_BY_CODE = "sum by (service, region, code) (rate(service_requests_total[1m]))"
SERVICE_P95_SECONDS = (
    "histogram_quantile(0.95, sum by (service, region, le) (rate(service_request_duration_seconds_bucket[1m])))"
)
# Busy of the GPUs (and MIG instances) that a service's pods hold, by the pods' catalog labels.
SERVICE_GPU_BUSY = (
    "avg by (service, region) (label_replace(label_replace("
    '(DCGM_FI_DEV_GPU_UTIL{pod!=""} or 100 * DCGM_FI_PROF_GR_ENGINE_ACTIVE{GPU_I_ID!="", pod!=""})'
    " * on (namespace, pod) group_left (label_gpuops_io_service, label_gpuops_io_region)"
    ' kube_pod_labels{label_gpuops_io_service!=""},'
    ' "service", "$1", "label_gpuops_io_service", "(.+)"), "region", "$1", "label_gpuops_io_region", "(.+)"))'
)
SERVICE_MODE = "service_mode == 1"
SERVICE_WEIGHT = "service_traffic_weight"

# --- alerting expressions the console's own tests and the rules share ----------------------------------
REGION_NODES_READY = f"sum by (region) ({NODE_READY} * on (node) group_left (region) {_NODE_POOL.format(sel='')})"
REGION_DOWN = f"{REGION_NODES_READY} == 0"
GPU_XID_NONZERO = "max by (Hostname, hostname, gpu) (DCGM_FI_DEV_XID_ERRORS) > 0"


def tagged(parts: dict[str, str]) -> str:
    """One request for several named expressions: each result carries `gpuops_q="<name>"`."""
    return " or ".join(f'label_replace({expr}, "{TAG}", "{name}", "", "")' for name, expr in parts.items())


SERVICES = {
    "replicas": DEPLOYMENT_REPLICAS,
    "available": DEPLOYMENT_AVAILABLE,
    "rps": SERVICE_RPS_BY_CODE,
    "p95": SERVICE_P95_SECONDS,
    "gpu_busy": SERVICE_GPU_BUSY,
    "mode": SERVICE_MODE,
    "weight": SERVICE_WEIGHT,
}

# The requests of one refresh, whatever the fleet's size.
SNAPSHOT = {
    "pools_inventory": tagged(POOLS_INVENTORY),
    "pools_busy": tagged(POOLS_BUSY),
    "pools_readings": tagged(POOLS_READINGS),
    "quotas": QUOTAS,
    "services": tagged(SERVICES),
}

# --- recorded by the rules (alerts/mixin.libsonnet), by these names -------------------------------------
NODE_POOL_INFO = _NODE_POOL.format(sel="")
POOL_GPU_BUSY_AVG = f"{POOLS['busy_sum']} / {POOLS['gpus']}"
POOL_GPUS_IDLE = (
    f'sum by (pool, region) (label_replace({POOLS["idle_gpus"]}, "part", "gpus", "", "")'
    f' or label_replace({POOLS["idle_mig"]}, "part", "mig", "", ""))'
)
POOL_GPU_MEMORY_RATIO = f"{POOLS['fb_used']} / ({POOLS['fb_used']} + {POOLS['fb_free']})"
NAMESPACE_GPU_REQUESTS = f"sum by (namespace, resource) ({NODE_GPU_REQUESTED})"
QUOTA_USED_RATIO = (
    'sum by (namespace, resource) (kube_resourcequota{type="used"})'
    ' / sum by (namespace, resource) (kube_resourcequota{type="hard"} > 0)'
)
NAMESPACE_TEAM = (
    'max by (namespace, team) (label_replace(kube_namespace_labels, "team", "$1", "label_gpuops_io_team", "(.+)"))'
)
QUOTA_USED_RATIO_BY_TEAM = f"({QUOTA_USED_RATIO} * on (namespace) group_left (team) {NAMESPACE_TEAM})"
SERVICE_ERROR_RATIO = f"{SERVICE_ERROR_RPS} / {SERVICE_RPS}"

# The share of a service's requests slower than its latency SLO over a window (`{service}`, `{le}`, `{window}`
# filled per service by `slo_miss_ratio`): what the burn-rate alerts compare with the error budget.
SLO_MISS_RATIO = (
    "1 - (sum by (service, region)"
    ' (rate(service_request_duration_seconds_bucket{{service="{service}", le="{le}"}}[{window}]))'
    ' / sum by (service, region) (rate(service_request_duration_seconds_count{{service="{service}"}}[{window}])))'
)


def slo_miss_ratio(service: str, le: str, window: str) -> str:
    return SLO_MISS_RATIO.format(service=label_value(service), le=label_value(le), window=label_value(window))


# --- capacity: what a service's ready replicas can serve (`{namespace}`, `{deployment}`, `{regions}`,
# `{per_replica}` filled per service by `service_capacity_rps`) ------------------------------------------
SERVICE_CAPACITY_RPS = (
    "{per_replica} * sum by (region) (label_replace("
    'kube_deployment_status_replicas_available{{namespace="{namespace}", deployment=~"{deployment}-({regions})"}},'
    ' "region", "$1", "deployment", "{deployment}-(.+)"))'
)


def service_capacity_rps(namespace: str, deployment: str, regions: list[str], per_replica: float) -> str:
    return SERVICE_CAPACITY_RPS.format(
        namespace=label_value(namespace),
        deployment=label_value(deployment),
        regions="|".join(label_value(r) for r in regions),
        per_replica=f"{per_replica:g}",
    )


# An event's window opens `lead` seconds before its start: `{start}`, `{end}`, `{lead}` in Unix seconds.
EVENT_WINDOW = "vector(1) and on () (vector(time()) > {opens}) and on () (vector(time()) < {end})"


def event_window(start: float, end: float, lead_s: float) -> str:
    return EVENT_WINDOW.format(opens=f"{start - lead_s:.0f}", end=f"{end:.0f}")


# --- cost: what each namespace's and team's GPU requests cost an hour, at the nodes' OpenCost prices -------
NAMESPACE_GPU_COST_PER_HOUR = (
    'sum by (namespace) (kube_pod_container_resource_requests{resource="nvidia_com_gpu", node!=""}'
    " * on (node) group_left () max by (node) (node_gpu_hourly_cost))"
)
TEAM_GPU_COST_PER_HOUR = (
    f"sum by (team) (gpuops:namespace:gpu_cost_per_hour:sum * on (namespace) group_left (team) {NAMESPACE_TEAM})"
)
# The month's cost at the current rate, as a share of the team's monthly budget (a recorded series).
TEAM_BUDGET_PROJECTED_RATIO = (
    "gpuops:team:gpu_cost_per_hour:sum * 24 * scalar(days_in_month()) / on (team) gpuops:team_budget:monthly"
)

# --- what the alerts compare with their thresholds ------------------------------------------------------
NAMESPACE_GPUS_IDLE = f"count by (namespace) ({GPU_IDLE}) * on (namespace) group_left (team) {NAMESPACE_TEAM}"
GPU_MEMORY_USED_RATIO = (
    "max by (Hostname, gpu, GPU_I_ID, namespace, pod)"
    " (DCGM_FI_DEV_FB_USED / (DCGM_FI_DEV_FB_USED + DCGM_FI_DEV_FB_FREE))"
    f" * on (namespace) group_left (team) {NAMESPACE_TEAM}"
)
_NODE_GPUS_REPORTED = 'label_replace(count by (Hostname) (DCGM_FI_DEV_GPU_UTIL), "node", "$1", "Hostname", "(.+)")'
_NODE_GPU_CAPACITY = 'sum by (node) (kube_node_status_capacity{resource="nvidia_com_gpu"})'
# GPUs a node has that its exporter no longer reports (0 reported when the exporter is gone).
# Carries the node's pool and region, so a region that is down can inhibit its nodes' alerts.
NODE_GPUS_MISSING = (
    f"({_NODE_GPU_CAPACITY} - on (node) (sum by (node) ({_NODE_GPUS_REPORTED}) or {_NODE_GPU_CAPACITY} * 0))"
    f" * on (node) group_left (pool, region) {_NODE_POOL.format(sel='')}"
)
SERVICE_NOT_NORMAL = (
    'max by (service, region, mode) (service_mode{mode!="normal"} == 1)'
    " * on (service) group_left (team) gpuops:service_team:info"
)


def named() -> dict[str, str]:
    """Every named PromQL expression of this module: what the mixin and the dashboards refer to."""
    return {k: v for k, v in globals().items() if k.isupper() and isinstance(v, str) and not k.startswith("_")}


# --- per GPU, for one node only (the drill-down) -------------------------------------------------------
_GPU = "Hostname, hostname, gpu"
_INSTANCE = f"{_GPU}, GPU_I_ID"
# `{sel:METRIC|MATCHERS}` stands for METRIC's series on the node (either spelling of the host label).
GPU_DETAIL = {
    "util": f"max by ({_GPU}, UUID, modelName, pod, namespace) ({{sel:DCGM_FI_DEV_GPU_UTIL}})",
    "mig_active": f"max by ({_INSTANCE}, GPU_I_PROFILE, pod, namespace)"
    ' ({sel:DCGM_FI_PROF_GR_ENGINE_ACTIVE|GPU_I_ID!=""})',
    "fb_used": f"max by ({_INSTANCE}) ({{sel:DCGM_FI_DEV_FB_USED}})",
    "fb_free": f"max by ({_INSTANCE}) ({{sel:DCGM_FI_DEV_FB_FREE}})",
    "power": f"max by ({_GPU}) ({{sel:DCGM_FI_DEV_POWER_USAGE}})",
    "temp": f"max by ({_GPU}) ({{sel:DCGM_FI_DEV_GPU_TEMP}})",
    "xid": f"max by ({_GPU}) ({{sel:DCGM_FI_DEV_XID_ERRORS}})",
}
_SEL = re.compile(r"\{sel:(\w+)(?:\|([^}]*))?\}")


def gpu_detail(node: str) -> str:
    """The per-GPU readings of one node, in one request. The node name is checked, never pasted raw."""
    node = label_value(node)

    def on_node(m: re.Match[str]) -> str:
        metric, extra = m.group(1), f"{m.group(2)}, " if m.group(2) else ""
        return f'{metric}{{{extra}Hostname="{node}"}} or {metric}{{{extra}hostname="{node}"}}'

    parts = {name: _SEL.sub(on_node, expr) for name, expr in GPU_DETAIL.items()}
    return tagged(parts)


_LABEL_VALUE = re.compile(r"^[A-Za-z0-9_.:/-]{1,253}$")


def label_value(v: str) -> str:
    """A value safe to put between quotes in a matcher: refused, never escaped into something else."""
    if not _LABEL_VALUE.match(v):
        raise ValueError(f"{v!r} is not allowed in a label matcher")
    return v
