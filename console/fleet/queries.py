"""Every PromQL string the console, the dashboards and the rules read, once, by name.

A refresh sends a fixed handful of requests whatever the fleet's size: aggregates `by (pool, region)`, joined
to the node labels in Prometheus, never one query per GPU or per node. Several named expressions travel in
one request as a union, each tagged with the label `gpuops_q` (see `tagged`). Per-node readings are read only
for the pool an operator drills into (`pool_nodes`), per-GPU readings for the one node (`gpu_detail`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache

from console.catalog.model import kube_resource_name

IDLE_BUSY_PCT = 5.0  # a GPU that holds a pod and is busier than this is not idle
GPU_RESOURCES = "nvidia_com_gpu|nvidia_com_mig_.+|alibabacloud_com_gpu_milli"
TAG = "gpuops_q"

# --- which pool, region and GPU model each node is in: kube-state-metrics' node labels -------------------
# kube-state-metrics exports only the node labels its allowlist names (`--metric-labels-allowlist`).


@dataclass(frozen=True)
class NodeMap:
    """Which node labels place a node in its pool, region and GPU model (the catalog's `node_labels:` and each
    pool's `match:`). The module's expressions are written for the default; `scope.py` puts a catalog's in."""

    pool: str = "gpuops.io/pool"
    region: str = "topology.kubernetes.io/region"
    model: str = "nvidia.com/gpu.product"
    # Each pool with the node labels that select it, when some pool is not named by the `pool` label.
    pools: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()
    # The catalog's GPU model names: GPU feature discovery's products (`NVIDIA-H100-80GB-HBM3`) read as these.
    models: tuple[str, ...] = ()

    def labels(self) -> list[str]:
        """Every node label read, as `kube_node_labels` must carry them."""
        keys = [k for _, sel in self.pools for k, _ in sel] if self.pools else [self.pool]
        return list(dict.fromkeys([*keys, self.region, self.model]))


def ksm_label(node_label: str) -> str:
    """kube-state-metrics' name for a node label: `gpuops.io/pool` -> `label_gpuops_io_pool`."""
    return "label_" + kube_resource_name(node_label)


def _literal(text: str) -> str:
    """`text` as a regular expression that matches it alone (RE2, inside a PromQL string)."""
    return "".join(c if c.isalnum() or c in "-_ " else "\\\\" + c for c in text)


DEFAULT_NODES = NodeMap()


def node_pool(m: NodeMap = DEFAULT_NODES, only: tuple[str, str] | None = None) -> str:
    """One series per node with its `pool`, `region` and `model`; `only` (pool, region) narrows it to those."""
    region, model = ksm_label(m.region), ksm_label(m.model)
    where = [f'{region}="{label_value(only[1])}"'] if only else []
    if m.pools:
        # Each pool by its own matchers; a node that no pool selects is in none.
        branches = []
        for name, sel in m.pools:
            if only is None or name == only[0]:
                matchers = ", ".join([*(f'{ksm_label(k)}="{label_value(v)}"' for k, v in sel), *where])
                branches.append(f'label_replace(kube_node_labels{{{matchers}}}, "pool", "{label_value(name)}", "", "")')
        placed = " or ".join(branches) or 'kube_node_labels{node="-"}'
    else:
        pool = ksm_label(m.pool)
        matchers = ", ".join([f'{pool}="{label_value(only[0])}"', *where]) if only else ""
        placed = f'label_replace(kube_node_labels{{{matchers}}}, "pool", "$1", "{pool}", "(.+)")'.replace("{}", "")
    expr = f'label_replace({placed}, "region", "$1", "{region}", "(.+)")'
    expr = f'label_replace({expr}, "model", "$1", "{model}", "(.+)")'
    # GPU feature discovery's product (`NVIDIA-A100-80GB-PCIe`) read as the catalog's model name it begins with,
    # the longest first (an A100-80GB when the catalog has one, else an A100). Only a product's spelling (with
    # its NVIDIA- or Tesla- prefix) is rewritten: a model already named as the catalog names it stays.
    names = sorted((n for n in m.models if '"' not in n and "\\" not in n), key=len, reverse=True)
    if names:
        product = f"(?i:nvidia|tesla)[-_ ]({'|'.join(_literal(n) for n in names)})(?:[-_ ].*)?"
        expr = f'label_replace({expr}, "model", "$1", "model", "{product}")'
    return f"max by (node, pool, region, model) ({expr})"


_NODE_POOL = node_pool()


# The same, keyed by dcgm-exporter's host label.
def _host_pool(node_pool_expr: str) -> str:
    return f'label_replace({node_pool_expr}, "Hostname", "$1", "node", "(.+)")'


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

# node-exporter, per node: its disks' busy share and its network bytes a second (a pool's store, NFS or an
# object store, is reached over the network: the storage throughput). Virtual and loop devices are not the node's.
NODE_DISK_BUSY = 'rate(node_disk_io_time_seconds_total{device!~"dm-.+|loop.+|sr.+|md.+"}[1m])'
_NIC = 'device!~"lo|veth.+|cali.+|flannel.+|cni.+|docker.+|tunl.+"'
NODE_NET_BYTES = (
    f"rate(node_network_receive_bytes_total{{{_NIC}}}[1m]) + rate(node_network_transmit_bytes_total{{{_NIC}}}[1m])"
)


def _instance_node(agg: str, expr: str) -> str:
    """A node-exporter expression per node: its instance is the node (kube-prometheus relabels it so), named
    `node` as Kubernetes names it."""
    return f'{agg} by (node) (label_replace({expr}, "node", "$1", "instance", "(.+)"))'


# name: (aggregation, expression, "node" for kube-state-metrics, "Hostname" for dcgm-exporter or "instance" for
# node-exporter, extra group)
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
    "io_bytes": ("sum", NODE_NET_BYTES, "instance", ""),
    "disk_busy": ("max", NODE_DISK_BUSY, "instance", ""),
}


def _parts(by: str, placed: str = _NODE_POOL) -> dict[str, str]:
    """Every part aggregated `by` pool (`"pool, region"`) or by node (`"node"`), joined to the nodes `placed`.

    Each part is first reduced per node, then joined: the join sees one series per node, not one per GPU."""
    out = {"nodes": f"count by ({by}, model) ({placed})"}
    for name, (agg, expr, on, extra) in POOL_PARTS.items():
        group = ", ".join(x for x in (by, extra) if x)
        outer = "max" if agg == "max" else "sum"  # counts per node add up
        if on == "Hostname":
            # Grouped by node: dcgm's host is the node; report it under the name `node`.
            labels = "pool, region" if by != "node" else "node"
            per_node = _dcgm(f"{agg} by (Hostname, hostname) ({expr})")
            joined = f"{per_node} * on (Hostname) group_left ({labels}) {_host_pool(placed)}"
        elif on == "instance":
            labels = "pool, region" if by != "node" else ""
            per_node = _instance_node(agg, expr)
            joined = f"{per_node} * on (node) group_left ({labels}) {placed}"
        else:
            labels = "pool, region" if by != "node" else ""
            per_node = f"{agg} by ({', '.join(x for x in ('node', extra) if x)}) ({expr})"
            joined = f"{per_node} * on (node) group_left ({labels}) {placed}"
        out[name] = f"{outer} by ({group}) ({joined})"
    return out


POOLS = _parts("pool, region")
# Three requests, so Prometheus evaluates them side by side (one query runs on one core).
POOLS_INVENTORY = {k: v for k, v in POOLS.items() if k == "nodes" or POOL_PARTS[k][2] == "node"}
POOLS_BUSY = {k: POOLS[k] for k in ("gpus", "busy_sum", "idle_gpus", "idle_mig")}
POOLS_READINGS = {k: v for k, v in POOLS.items() if k not in POOLS_INVENTORY and k not in POOLS_BUSY}
# Every part as the rules record it (alerts/rules/fleet.libsonnet records each by this name, from POOLS): where
# they run, a refresh reads a few series a pool instead of every GPU's and node's.
POOL_RECORDS = {
    "nodes": "gpuops:pool_region:nodes:count",
    "ready": "gpuops:pool_region:nodes_ready:sum",
    "unschedulable": "gpuops:pool_region:nodes_unschedulable:sum",
    "allocatable": "gpuops:pool_region:gpus_allocatable:sum",
    "requested": "gpuops:pool_region:gpus_requested:sum",
    "gpus": "gpuops:pool_region:gpus:count",
    "busy_sum": "gpuops:pool_region:gpu_busy:sum",
    "idle_gpus": "gpuops:pool_region:gpus_idle:count",
    "idle_mig": "gpuops:pool_region:mig_idle:sum",
    "fb_used": "gpuops:pool_region:gpu_memory_used:sum",
    "fb_free": "gpuops:pool_region:gpu_memory_free:sum",
    "power": "gpuops:pool_region:gpu_power:watts",
    "temp_max": "gpuops:pool_region:gpu_temp:max",
    "xid_max": "gpuops:pool_region:gpu_xid:max",
    "io_bytes": "gpuops:pool_region:storage_bytes:rate1m",
    "disk_busy": "gpuops:pool_region:disk_busy:max",
}


def pool_nodes(pool: str, region: str, m: NodeMap = DEFAULT_NODES) -> str:
    """The same readings per node, for one pool and region only (the pools view's opened pool), in one request."""
    return tagged(_parts("node", node_pool(m, (pool, region))))


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
# Busy of the GPUs and MIG instances that pods hold, in percent.
_HELD_GPU_BUSY_PCT = '(DCGM_FI_DEV_GPU_UTIL{pod!=""} or 100 * DCGM_FI_PROF_GR_ENGINE_ACTIVE{GPU_I_ID!="", pod!=""})'
SERVICE_GPU_BUSY = (
    "avg by (service, region) (label_replace(label_replace("
    f"{_HELD_GPU_BUSY_PCT}"
    " * on (namespace, pod) group_left (label_gpuops_io_service, label_gpuops_io_region)"
    ' kube_pod_labels{label_gpuops_io_service!=""},'
    ' "service", "$1", "label_gpuops_io_service", "(.+)"), "region", "$1", "label_gpuops_io_region", "(.+)"))'
)
SERVICE_MODE = "service_mode == 1"
SERVICE_WEIGHT = "service_traffic_weight"

# --- alerting expressions the console's own tests and the rules share ----------------------------------
REGION_NODES_READY = f"sum by (region) ({NODE_READY} * on (node) group_left (region) {_NODE_POOL})"
REGION_DOWN = f"{REGION_NODES_READY} == 0"
# XIDs an application causes (a bad kernel, an out-of-bounds access, a killed process): the job's fault, not
# the GPU's, and no reason to drain a node.
APP_XIDS = (13, 31, 43, 45)
# The gauge keeps the last XID until the exporter restarts, so "non-zero" says nothing about now: a GPU whose
# XID changed to a hardware one within the window. `__WINDOW__` is filled by the mixin from its `_config`.
WINDOW = "__WINDOW__"
GPU_XID_NEW = (
    "max by (Hostname, hostname, gpu) (DCGM_FI_DEV_XID_ERRORS"
    + "".join(f" != {x}" for x in APP_XIDS)
    + f" > 0 and changes(DCGM_FI_DEV_XID_ERRORS[{WINDOW}]) > 0)"
)


# The share of the time a GPU's clocks were slowed for heat over the window (the counter is in ns).
GPU_THERMAL_THROTTLED_SHARE = f"max by (Hostname, hostname, gpu) (rate(DCGM_FI_DEV_THERMAL_VIOLATION[{WINDOW}])) / 1e9"
# The hardware's own protection slowing the clocks: HW_SLOWDOWN (0x8), HW_THERMAL (0x40) or HW_POWER_BRAKE (0x80)
# set in the throttle-reasons bitmask (PromQL has no bit operators: bit n is floor(x / 2^n) % 2).
GPU_HW_SLOWDOWN = (
    "max by (Hostname, hostname, gpu) ("
    + " or ".join(f"floor(DCGM_FI_DEV_CLOCK_THROTTLE_REASONS / {bit}) % 2 == 1" for bit in (8, 64, 128))
    + ")"
)
# A row the GPU could not remap after an uncorrectable error: its memory is unsafe until a reset.
GPU_ROW_REMAP_FAILURE = "max by (Hostname, hostname, gpu) (DCGM_FI_DEV_ROW_REMAP_FAILURE) > 0"
# Rows remapped for uncorrectable errors within the window: the work on that GPU was hit, and a reset is due.
GPU_UNCORRECTABLE_ROWS = (
    f"max by (Hostname, hostname, gpu) (increase(DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS[{WINDOW}]))"
)
# NVLink CRC errors and retries and PCIe replays within the window: a link going bad (a cable, a riser).
_LINK_COUNTERS = {
    "crc": "DCGM_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT_TOTAL",
    "replay": "DCGM_FI_DEV_NVLINK_REPLAY_ERROR_COUNT_TOTAL",
    "pcie": "DCGM_FI_DEV_PCIE_REPLAY_COUNTER",
}
# Each counter's increase tagged apart first: increase() drops the metric name, and three untagged series of
# one GPU would collide.
GPU_LINK_ERRORS = (
    "sum by (Hostname, hostname, gpu) ("
    + " or ".join(
        f'label_replace(increase({m}[{WINDOW}]), "counter", "{k}", "", "")' for k, m in _LINK_COUNTERS.items()
    )
    + ")"
)
# No GPU reported at all: every dcgm-exporter is gone, or no longer scraped.
GPU_EXPORTER_ABSENT = "absent(DCGM_FI_DEV_GPU_UTIL)"


def cluster_down(label: str) -> str:
    """A cluster lost to a view of several clusters (the series there carry `label`): every scrape its
    Prometheus makes fails (`up` 0 on each target, still written on), or its Prometheus stopped writing (its
    `up` was there within the window and is gone). A Prometheus of one cluster lacks `label` on its own
    series: this never fires there, where RegionDown and the exporters' alerts say what is wrong."""
    up = f'up{{{label}!=""}}'
    return (
        f"max by ({label}) ({up}) == 0"
        f" or count by ({label}) (max_over_time({up}[{WINDOW}])) unless on ({label}) count by ({label}) ({up})"
    )


CLUSTER_DOWN = cluster_down("cluster")  # the mixin's default; `gpuops build` passes the catalog's label


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

# --- Kueue's batch queues: its controller's own metrics, per ClusterQueue (and flavor) ------------------
QUEUE_PENDING = "sum by (cluster_queue) (kueue_pending_workloads)"
QUEUE_ADMITTED = "sum by (cluster_queue) (kueue_admitted_active_workloads)"
QUEUE_GPUS_USED = 'sum by (cluster_queue, flavor) (kueue_cluster_queue_resource_usage{resource="nvidia.com/gpu"})'
QUEUE_GPUS_NOMINAL = 'sum by (cluster_queue, flavor) (kueue_cluster_queue_nominal_quota{resource="nvidia.com/gpu"})'
# What a queue holds beyond its own quota, lent by the rest of its cohort.
QUEUE_GPUS_BORROWED = f"sum by (cluster_queue) (clamp_min({QUEUE_GPUS_USED} - {QUEUE_GPUS_NOMINAL}, 0))"
QUEUE_ADMISSIONS = "sum by (cluster_queue) (increase(kueue_admitted_workloads_total[{window}]))"
QUEUES = {
    "queue_pending": QUEUE_PENDING,
    "queue_admitted": QUEUE_ADMITTED,
    "queue_used": QUEUE_GPUS_USED,
    "queue_nominal": QUEUE_GPUS_NOMINAL,
}

# The requests of one refresh, whatever the fleet's size. The queues travel with the quotas: both are what
# the teams may take.
SNAPSHOT = {
    "pools_inventory": tagged(POOLS_INVENTORY),
    "pools_busy": tagged(POOLS_BUSY),
    "pools_readings": tagged(POOLS_READINGS),
    "quotas": tagged({"quota": QUOTAS, **QUEUES}),
    "services": tagged(SERVICES),
}

# The same refresh where the rules run (their series reach this Prometheus): the pools in one request of
# recorded series, the services' two joins over every GPU and bucket by their records (alerts/rules/fleet.libsonnet).
SERVICE_RECORDS = {
    "p95": "gpuops:service_region:latency_p95:seconds",
    "gpu_busy": "gpuops:service_region:gpu_busy:avg",
}
SNAPSHOT_RECORDED = {
    "pools": tagged(POOL_RECORDS),
    "quotas": SNAPSHOT["quotas"],
    "services": tagged(SERVICES | SERVICE_RECORDS),
}

# --- what a global view that holds the records alone is sent ---------------------------------------------
# A global view fed every raw series of every cluster ingests 10,000 GPUs' readings and answers slowly
# (bench/clusters_scale.py). Fed only the records, `up` (its ClusterDown) and the few raw series the refresh
# reads beside them (deployments, quotas, queues, request counters: one series per object, not per GPU), it
# answers the refresh as fast as a cluster does; node and GPU series stay in each cluster's Prometheus, where
# the drill-downs and the runbooks' node checks read them (GlobalView.holds = "records").
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_NAME = re.compile(r"(?<![\w:.])([A-Za-z_:][A-Za-z0-9_:]*)(\s*\()?")
_KEYWORDS = frozenset(
    {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left", "group_right"}
    | {"inf", "nan", "start", "end"}
)


def metric_names(promql: str) -> set[str]:
    """The metric names a PromQL expression reads (not its functions, keywords or label names). A selector by
    `__name__` alone names none."""
    text = _STRING.sub('""', promql)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = _GROUPING.sub(" ", text)
    return {m.group(1) for m in _NAME.finditer(text) if not m.group(2) and m.group(1).lower() not in _KEYWORDS}


RECORD_PREFIX = "gpuops:"


@cache  # derived from the module's constants: parsed once, not on every runbook check
def records_only_series() -> frozenset[str]:
    """The raw metric names a records-only global view needs besides the records: `up` and what the
    refresh's recorded reads join."""
    names = set().union(*(metric_names(e) for e in SNAPSHOT_RECORDED.values())) | {"up"}
    return frozenset(n for n in names if not n.startswith(RECORD_PREFIX))


def records_only_keep() -> str:
    """The remote write's keep pattern for a records-only global view (a RE2 over `__name__`)."""
    return "|".join([re.escape(RECORD_PREFIX) + ".+", *sorted(records_only_series())])


def reads_only_forwarded(promql: str) -> bool:
    """Whether a records-only global view holds every series `promql` reads."""
    kept = records_only_series()
    return all(n.startswith(RECORD_PREFIX) or n in kept for n in metric_names(promql))


# --- recorded by the rules (alerts/mixin.libsonnet), by these names -------------------------------------
NODE_POOL_INFO = _NODE_POOL
POOL_GPU_BUSY_AVG = f"{POOLS['busy_sum']} / {POOLS['gpus']}"
POOL_GPUS_IDLE = (
    f'sum by (pool, region) (label_replace({POOLS["idle_gpus"]}, "part", "gpus", "", "")'
    f' or label_replace({POOLS["idle_mig"]}, "part", "mig", "", ""))'
)
POOL_GPU_MEMORY_RATIO = f"{POOLS['fb_used']} / ({POOLS['fb_used']} + {POOLS['fb_free']})"


def storage_ceiling_ratio(pool: str, ceiling_bytes: float) -> str:
    """A pool's storage traffic over its store's ceiling from the catalog: a constant, not a join, so that each
    cluster's series keep their own labels."""
    return f'gpuops:pool_region:storage_bytes:rate1m{{pool="{label_value(pool)}"}} / {ceiling_bytes:g}'


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
    ' (rate(service_request_duration_seconds_bucket{{service="{service}", le=~"{le}"}}[{window}]))'
    ' / sum by (service, region) (rate(service_request_duration_seconds_count{{service="{service}"}}[{window}])))'
)


def le_pattern(le: str) -> str:
    """Both spellings of a bucket bound: the exporter's (`6`, Go's and `%g`) and Prometheus 3's, which
    normalises a whole number to `6.0` on ingestion. `[.]` keeps the regex free of escapes."""
    return f"{le}|{le}[.]0" if le.lstrip("-").isdigit() else le.replace(".", "[.]").replace("+", "[+]")


# The share of a service's requests that failed (5xx) over `{window}`: what the availability SLO spends.
AVAILABILITY_MISS_RATIO = (
    'sum by (service, region) (rate(service_requests_total{{service="{service}", code=~"5.."}}[{window}]))'
    ' / sum by (service, region) (rate(service_requests_total{{service="{service}"}}[{window}]))'
)


def availability_miss_ratio(service: str, window: str) -> str:
    return AVAILABILITY_MISS_RATIO.format(service=label_value(service), window=label_value(window))


def slo_miss_ratio(service: str, le: str, window: str) -> str:
    return SLO_MISS_RATIO.format(
        service=label_value(service), le=le_pattern(label_value(le)), window=label_value(window)
    )


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


# --- cost: GPUs held as shares of a GPU, and what they cost --------------------------------------------
# A whole GPU counts 1, a MIG instance 1 / its GPU's instances (the catalog's pools say how many), a
# gpu-milli request (the Alibaba trace's shared GPUs) its thousandths.
def gpu_shares(metric: str, mig_per_gpu: Mapping[str, int], matchers: str = "") -> str:
    """`metric` (requests or allocatable) over every GPU resource, in GPUs; MIG resources by their
    kube-state-metrics name, e.g. {"nvidia_com_mig_3g_40gb": 2}."""
    m = f", {matchers}" if matchers else ""
    parts = [
        f'{metric}{{resource="nvidia_com_gpu"{m}}}',
        f'{metric}{{resource="alibabacloud_com_gpu_milli"{m}}} / 1000',
    ]
    parts += [f'{metric}{{resource="{label_value(r)}"{m}}} / {n:d}' for r, n in sorted(mig_per_gpu.items())]
    return f"({' or '.join(parts)})"


# `{requests}` / `{allocatable}`: `gpu_shares` of the pods' requests (on a node) / the nodes' allocatable.
POD_GPUS = (
    "sum by (namespace, pod, pool, region, model) (sum by (namespace, pod, node) ({requests})"
    f" * on (node) group_left (pool, region, model) {_NODE_POOL})"
)
POOL_GPUS_ALLOCATABLE_SHARES = (
    "sum by (pool, region, model) (sum by (node) ({allocatable})"
    f" * on (node) group_left (pool, region, model) {_NODE_POOL})"
)
# How busy each pod's GPUs were, in percent (dcgm-exporter labels the GPU, or MIG instance, with its pod).
POD_GPU_BUSY_PCT = f"avg by (namespace, pod) ({_HELD_GPU_BUSY_PCT})"
# The most of its whole GPU's memory a pod used over `{window}` (MIG instances are already a slice).
POD_GPU_MEMORY_PEAK_RATIO = (
    'max by (namespace, pod) (max_over_time((DCGM_FI_DEV_FB_USED{{pod!="", GPU_I_ID=""}}'
    " / (DCGM_FI_DEV_FB_USED + DCGM_FI_DEV_FB_FREE))[{window}:]))"
)
# Which service and region a pod served, and which Job owned it, over `{window}` (pods gone since included).
POD_SERVICE = (
    "max by (namespace, pod, label_gpuops_io_service, label_gpuops_io_region)"
    ' (max_over_time(kube_pod_labels{{label_gpuops_io_service!=""}}[{window}]))'
)
POD_JOB = 'max by (namespace, pod, created_by_name) (max_over_time(kube_pod_info{{created_by_kind="Job"}}[{window}]))'
# Whether Prometheus has samples of the fleet in the `{window}` before a time: where its history starts.
HISTORY_PROBE = "count(count_over_time(kube_node_info[{window}]))"


def history_probe(window: str) -> str:
    return HISTORY_PROBE.format(window=label_value(window))


QUOTA_GPUS_HARD = 'kube_resourcequota{type="hard", resource=~"requests.nvidia.com/.+"}'


def pod_gpus(mig_per_gpu: Mapping[str, int]) -> str:
    return POD_GPUS.format(requests=gpu_shares("kube_pod_container_resource_requests", mig_per_gpu, 'node!=""'))


def pool_gpus_allocatable(mig_per_gpu: Mapping[str, int]) -> str:
    return POOL_GPUS_ALLOCATABLE_SHARES.format(allocatable=gpu_shares("kube_node_status_allocatable", mig_per_gpu))


def pod_gpu_memory_peak(window: str) -> str:
    return POD_GPU_MEMORY_PEAK_RATIO.format(window=label_value(window))


def pod_service(window: str) -> str:
    return POD_SERVICE.format(window=label_value(window))


def pod_job(window: str) -> str:
    return POD_JOB.format(window=label_value(window))


# What each namespace's GPUs cost an hour at the nodes' OpenCost list prices, and each team's at its SLA
# tier (`gpuops:team_price:multiplier`, recorded from the catalog).
NAMESPACE_GPU_COST_PER_HOUR_SHARES = (
    "sum by (namespace) (sum by (namespace, node) ({requests})"
    " * on (node) group_left () max by (node) (node_gpu_hourly_cost))"
)
NAMESPACE_GPU_COST_PER_HOUR = NAMESPACE_GPU_COST_PER_HOUR_SHARES.format(
    requests=gpu_shares("kube_pod_container_resource_requests", {}, 'node!=""')
)


def namespace_gpu_cost_per_hour(mig_per_gpu: Mapping[str, int]) -> str:
    return NAMESPACE_GPU_COST_PER_HOUR_SHARES.format(
        requests=gpu_shares("kube_pod_container_resource_requests", mig_per_gpu, 'node!=""')
    )


TEAM_GPU_COST_PER_HOUR = (
    f"sum by (team) (gpuops:namespace:gpu_cost_per_hour:sum * on (namespace) group_left (team) {NAMESPACE_TEAM})"
    " * on (team) group_left () gpuops:team_price:multiplier"
)
# --- the month's projected cost, as the cost report projects it --------------------------------------
# Each hour of the month so far at the team's recorded cost rate of that hour, each hour Prometheus holds
# nothing for (before its history began) and each hour left at the rate now: on a fresh Prometheus that is the
# rate x the month. A monthly package: its price, plus the projected GPU-hours beyond those it includes at
# the hourly price. Prometheus has no "since the month began" range, so the rate is recorded with the month
# it was in as a label (`count_values` makes the number a label): 31 days of it, summed per month, keep this
# month's. A per-step month test inside the subquery measured 17x dearer (2.19 s to 0.13 s).
# Hourly steps: a step's error is an hour of the rate in 744, and half-hour steps over 31 days are more than
# promtool's test engine lets one query load (10,000 samples).
THIS_MONTH = 'count_values("month", month())'


def with_month(series: str) -> str:
    """`series` with a `month` label: the month its sample was taken in."""
    return f"{series} * on () group_left (month) {THIS_MONTH}"


def _this_month(over_time: str, by_month: str, now: str) -> str:
    # 0 for a series with no hourly step yet (a Prometheus younger than an hour): the month is all ahead.
    return f"max without (month) ({over_time}({by_month}[31d:1h]) and on (month) {THIS_MONTH}) or {now} * 0"


def month_to_date(by_month: str, now: str) -> str:
    """The month-to-date total of a per-hour rate recorded `with_month` (as `now`): its hourly steps this
    month."""
    return _this_month("sum_over_time", by_month, now)


def hours_measured(by_month: str, now: str) -> str:
    """The hours of this month a series recorded `with_month` (as `now`) has a sample for."""
    return _this_month("count_over_time", by_month, now)


def team_gpus(mig_per_gpu: Mapping[str, int]) -> str:
    """The GPUs each team's pods hold (MIG instances as shares of a GPU): what a package's hours count."""
    shares = gpu_shares("kube_pod_container_resource_requests", mig_per_gpu, 'node!=""')
    return f"sum by (team) (sum by (namespace) ({shares}) * on (namespace) group_left (team) {NAMESPACE_TEAM})"


TEAM_GPUS = team_gpus({})
TEAM_COST_BY_MONTH = with_month("gpuops:team:gpu_cost_per_hour:sum")
TEAM_GPUS_BY_MONTH = with_month("gpuops:team:gpus:sum")
TEAM_COST_MONTH_TO_DATE = month_to_date("gpuops:team_month:gpu_cost_per_hour:sum", "gpuops:team:gpu_cost_per_hour:sum")
TEAM_GPU_HOURS_MONTH_TO_DATE = month_to_date("gpuops:team_month:gpus:sum", "gpuops:team:gpus:sum")
TEAM_HOURS_MEASURED = hours_measured("gpuops:team_month:gpu_cost_per_hour:sum", "gpuops:team:gpu_cost_per_hour:sum")


# Each team's projected month, every team in one rule: hourly, at its recorded cost (list x tier); a team on a
# monthly package (its `gpuops:team_package:*` series) its price, plus the GPU-hours beyond those included at
# its average price per GPU-hour, or its price alone while it holds nothing.
_HOURS_NOT_MEASURED = "(scalar(days_in_month() * 24) - gpuops:team:hours_measured:month_to_date)"
_HOURLY = f"(gpuops:team:gpu_cost:month_to_date + gpuops:team:gpu_cost_per_hour:sum * {_HOURS_NOT_MEASURED})"
_GPU_HOURS = f"(gpuops:team:gpu_hours:month_to_date + gpuops:team:gpus:sum * {_HOURS_NOT_MEASURED})"
TEAM_PROJECTED_COST = (
    f"{_HOURLY} unless on (team) gpuops:team_package:price"
    f" or gpuops:team_package:price + clamp_min(1 - gpuops:team_package:included_hours / {_GPU_HOURS}, 0) * {_HOURLY}"
    " or gpuops:team_package:price"
)
# The month's projected cost as a share of the team's monthly budget (a recorded series).
TEAM_BUDGET_PROJECTED_RATIO = "gpuops:team:gpu_cost:projected / on (team) gpuops:team_budget:monthly"

# --- what the alerts compare with their thresholds ------------------------------------------------------
# GPUs holding a pod whose busy averaged under the idle threshold over the window: idle for all of it, not
# at one instant.
NAMESPACE_GPUS_IDLE = (
    f'count by (namespace) (avg_over_time(DCGM_FI_DEV_GPU_UTIL{{pod!=""}}[{WINDOW}]) < {IDLE_BUSY_PCT:g})'
    f" * on (namespace) group_left (team) {NAMESPACE_TEAM}"
)
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
    f" * on (node) group_left (pool, region) {_NODE_POOL}"
)
# A service's error ratio in a region, with its team: overload (demand over what its replicas serve) or an
# outage; the threshold is the mixin's `errorRatio`.
SERVICE_ERROR_RATIO_BY_TEAM = (
    "gpuops:service_region:errors:ratio_rate1m * on (service) group_left (team) gpuops:service_team:info"
)
SERVICE_NOT_NORMAL = (
    'max by (service, region, mode) (service_mode{mode!="normal"} == 1)'
    " * on (service) group_left (team) gpuops:service_team:info"
)


# --- more recorded series, for the dashboards (read by `gpuops:` names, see alerts/mixin.libsonnet) --------
TEAM_GPU_REQUESTS = (
    f"sum by (team) (gpuops:namespace_resource:gpu_requests:sum * on (namespace) group_left (team) {NAMESPACE_TEAM})"
)
# 0 normal, 1 degraded (rules model), 2 CPU fallback: one series per service and region for a state timeline.
SERVICE_MODE_CODE = (
    'sum by (service, region) (service_mode{mode="rules"}) + 2 * sum by (service, region) (service_mode{mode="cpu"})'
)
_DEPLOYMENT_SERVICE = (
    'label_replace(label_replace(kube_deployment_labels{label_gpuops_io_service!=""},'
    ' "service", "$1", "label_gpuops_io_service", "(.+)"), "region", "$1", "label_gpuops_io_region", "(.+)")'
)
SERVICE_REPLICAS_AVAILABLE = (
    f"sum by (service, region) ({DEPLOYMENT_AVAILABLE} * on (namespace, deployment)"
    f" group_left (service, region) {_DEPLOYMENT_SERVICE})"
)
SERVICE_REPLICAS_DESIRED = (
    f"sum by (service, region) ({DEPLOYMENT_REPLICAS} * on (namespace, deployment)"
    f" group_left (service, region) {_DEPLOYMENT_SERVICE})"
)

# --- an event's expected peak: the last day's peak times the catalog's multiplier (`{service}`, `{multiplier}`)
# and the headroom it would leave; the capacity alert and the readiness dashboard read the same expression.
EXPECTED_PEAK_RPS = 'max_over_time(gpuops:service_region:requests:rate1m{{service="{service}"}}[1d]) * {multiplier}'
HEADROOM_AT_PEAK = '1 - ({peak}) / gpuops:service_region:capacity_rps{{service="{service}"}}'


def expected_peak_rps(service: str, multiplier: float) -> str:
    return EXPECTED_PEAK_RPS.format(service=label_value(service), multiplier=f"{multiplier:g}")


def headroom_at_peak(service: str, multiplier: float) -> str:
    return HEADROOM_AT_PEAK.format(peak=expected_peak_rps(service, multiplier), service=label_value(service))


# --- readiness: request-rate history over `{window}` (a range query's step, in wall time: on a fast twin a
# recording rule's 1m rate would span hours of simulated time), and generated tokens per request served
# (a failed request generates none: counting them would make an overloaded service's requests look cheap) --
SERVICE_RPS_HISTORY = "sum by (service, region) (rate(service_requests_total[{window}]))"
SERVICE_TOKENS_PER_REQUEST = (
    "sum by (service, region) (rate(service_generated_tokens_total[{window}]))"
    ' / sum by (service, region) (rate(service_requests_total{{code!~"5.."}}[{window}]))'
)


def service_rps_history(window_s: float) -> str:
    return SERVICE_RPS_HISTORY.format(window=f"{max(1, round(window_s * 1000))}ms")


def service_tokens_per_request(window_s: float) -> str:
    return SERVICE_TOKENS_PER_REQUEST.format(window=f"{max(1, round(window_s * 1000))}ms")


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


# --- the dashboards' panels: recorded series narrowed by Grafana's variables ---------------------------
# `$region`, `$pool`, `$node`, `$team`, `$service` are multi-value variables with an All of `.*`, so every
# matcher on them is a regex match. `gpuops lint` substitutes them before it sends a query to Prometheus.
_POOL_VARS = 'region=~"$region", pool=~"$pool"'
_SERVICE_VARS = 'service=~"$service", region=~"$region"'
_NODE_INFO = f'gpuops:node_pool:info{{{_POOL_VARS}, node=~"$node"}}'


def _per_node(agg: str, expr: str, by: str = "node") -> str:
    """A dcgm-exporter reading per `by` on the selected pool's nodes, named by `node` as Kubernetes names it."""
    return (
        f'{agg} by ({by}) (label_replace({_dcgm(expr)}, "node", "$1", "Hostname", "(.+)")'
        f" * on (node) group_left () {_NODE_INFO})"
    )


PANEL_QUERIES: dict[str, str] = {
    # fleet overview
    "fleet_gpus": f"sum(gpuops:pool_region:gpus:count{{{_POOL_VARS}}})",
    "fleet_gpus_idle": f"sum(gpuops:pool_region:gpus_idle:sum{{{_POOL_VARS}}}) or vector(0)",
    "fleet_busy": f"avg(gpuops:pool_region:gpu_busy:avg{{{_POOL_VARS}}})",
    "fleet_cost_per_hour": "sum(gpuops:team:gpu_cost_per_hour:sum)",
    "alerts_firing": 'count(ALERTS{alertstate="firing"}) or vector(0)',
    "pool_busy": f"gpuops:pool_region:gpu_busy:avg{{{_POOL_VARS}}}",
    "pool_memory": f"gpuops:pool_region:gpu_memory_used:ratio{{{_POOL_VARS}}}",
    "pool_power": f"gpuops:pool_region:gpu_power:watts{{{_POOL_VARS}}}",
    "pool_idle": f"gpuops:pool_region:gpus_idle:sum{{{_POOL_VARS}}}",
    "pool_allocatable": f"sum by (pool, region) (gpuops:pool_region:gpus_allocatable:sum{{{_POOL_VARS}}})",
    "pool_requested": f"sum by (pool, region) (gpuops:pool_region:gpus_requested:sum{{{_POOL_VARS}}})",
    "pool_allocated_ratio": (
        f"sum by (pool, region) (gpuops:pool_region:gpus_requested:sum{{{_POOL_VARS}}})"
        f" / sum by (pool, region) (gpuops:pool_region:gpus_allocatable:sum{{{_POOL_VARS}}})"
    ),
    "region_nodes_ready": 'gpuops:region:nodes_ready:sum{region=~"$region"}',
    "regions_down": 'count(gpuops:region:nodes_ready:sum{region=~"$region"} == 0) or vector(0)',
    # pool detail
    "node_busy": _per_node("avg", GPU_BUSY_PCT),
    "node_temp_max": _per_node("max", GPU_TEMP),
    "node_xid_max": _per_node("max", GPU_XID),
    "node_power": _per_node("sum", GPU_POWER),
    "gpu_busy": _per_node("max", GPU_BUSY_PCT, "node, gpu"),
    "gpu_memory": (
        f"{_per_node('max', GPU_FB_USED, 'node, gpu, GPU_I_ID')}"
        f" / ({_per_node('max', GPU_FB_USED, 'node, gpu, GPU_I_ID')}"
        f" + {_per_node('max', GPU_FB_FREE, 'node, gpu, GPU_I_ID')})"
    ),
    "gpu_temp": _per_node("max", GPU_TEMP, "node, gpu"),
    "gpu_xid": _per_node("max", GPU_XID, "node, gpu"),
    "mig_active": _per_node("max", 'DCGM_FI_PROF_GR_ENGINE_ACTIVE{GPU_I_ID!=""}', "node, gpu, GPU_I_PROFILE, GPU_I_ID"),
    "node_gpus_missing": f'gpuops:node:gpus_missing:sum{{{_POOL_VARS}, node=~"$node"}}',
    # storage IO: what StorageSaturated reads, per pool and per node
    "pool_storage_ratio": f"gpuops:pool_region:storage_ceiling:ratio{{{_POOL_VARS}}}",
    "pool_storage_bytes": f"gpuops:pool_region:storage_bytes:rate1m{{{_POOL_VARS}}}",
    "pool_storage_ceiling": 'gpuops:store:ceiling_bytes{pool=~"$pool"}',
    "node_disk_busy": f"{_instance_node('max', NODE_DISK_BUSY)} * on (node) group_left () {_NODE_INFO}",
    "node_network_bytes": f"{_instance_node('sum', NODE_NET_BYTES)} * on (node) group_left () {_NODE_INFO}",
    # GPU health: what the GpuThermalThrottling, GpuLinkErrors and row-remap alerts read, per GPU
    "gpu_thermal_throttled": _per_node(
        "max", "rate(DCGM_FI_DEV_THERMAL_VIOLATION[$__rate_interval]) / 1e9", "node, gpu"
    ),
    "gpu_nvlink_crc": _per_node("max", f"rate({_LINK_COUNTERS['crc']}[$__rate_interval])", "node, gpu"),
    "gpu_nvlink_replay": _per_node("max", f"rate({_LINK_COUNTERS['replay']}[$__rate_interval])", "node, gpu"),
    "gpu_pcie_replay": _per_node("max", f"rate({_LINK_COUNTERS['pcie']}[$__rate_interval])", "node, gpu"),
    "gpu_uncorrectable_rows": _per_node("max", "DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS", "node, gpu"),
    "gpu_row_remap_failure": _per_node("max", "DCGM_FI_DEV_ROW_REMAP_FAILURE", "node, gpu"),
    # services
    "service_rps": f"gpuops:service_region:requests:rate1m{{{_SERVICE_VARS}}}",
    "service_p95": f"gpuops:service_region:latency_p95:seconds{{{_SERVICE_VARS}}}",
    "service_slo": 'gpuops:service:latency_slo:seconds{service=~"$service"}',
    "service_errors": f"gpuops:service_region:errors:ratio_rate1m{{{_SERVICE_VARS}}}",
    "service_slo_miss_1h": f"gpuops:service_region:latency_slo_miss:ratio_rate1h{{{_SERVICE_VARS}}}",
    "service_slo_miss_6h": f"gpuops:service_region:latency_slo_miss:ratio_rate6h{{{_SERVICE_VARS}}}",
    "service_replicas_available": f"gpuops:service_region:replicas_available:sum{{{_SERVICE_VARS}}}",
    "service_replicas_desired": f"gpuops:service_region:replicas_desired:sum{{{_SERVICE_VARS}}}",
    "service_mode": f"gpuops:service_region:mode:code{{{_SERVICE_VARS}}}",
    "service_weight": f"service_traffic_weight{{{_SERVICE_VARS}}}",
    "service_gpu_busy": f"gpuops:service_region:gpu_busy:avg{{{_SERVICE_VARS}}}",
    "service_capacity": f"gpuops:service_region:capacity_rps{{{_SERVICE_VARS}}}",
    "service_latency_buckets": (
        f"sum by (le) (rate(service_request_duration_seconds_bucket{{{_SERVICE_VARS}}}[$__rate_interval]))"
    ),
    # teams
    "team_gpus": 'gpuops:team:gpu_requests:sum{team=~"$team"}',
    # GPU-hours over the dashboard's range: the average GPUs requested times the range's hours.
    "team_gpu_hours": (
        'sum by (team) (avg_over_time(gpuops:team:gpu_requests:sum{team=~"$team"}[$__range])) * $__range_s / 3600'
    ),
    "team_cost_per_hour": 'gpuops:team:gpu_cost_per_hour:sum{team=~"$team"}',
    "team_budget": 'gpuops:team_budget:monthly{team=~"$team"}',
    "team_budget_projected": 'gpuops:team:budget_projected:ratio{team=~"$team"}',
    "namespace_quota_used": (
        'gpuops:namespace_resource:quota_used:ratio{namespace=~"$namespace"}'
        ' * on (namespace) group_left (team) gpuops:namespace_team:info{team=~"$team"}'
    ),
    "namespace_gpus": (
        'sum by (namespace, team) (gpuops:namespace_resource:gpu_requests:sum{namespace=~"$namespace"}'
        ' * on (namespace) group_left (team) gpuops:namespace_team:info{team=~"$team"})'
    ),
}

# --- the variables' option lists (Grafana's label_values(SELECTOR, LABEL)) --------------------------------
VARIABLE_QUERIES: dict[str, str] = {
    "region": "label_values(gpuops:node_pool:info, region)",
    "pool": 'label_values(gpuops:node_pool:info{region=~"$region"}, pool)',
    "node": 'label_values(gpuops:node_pool:info{region=~"$region", pool=~"$pool"}, node)',
    # Every team with a budget, not only those with a service: a team of batch work alone (research) too.
    "team": "label_values(gpuops:team_budget:monthly, team)",
    "namespace": 'label_values(gpuops:namespace_team:info{team=~"$team"}, namespace)',
    "service": 'label_values(gpuops:service_team:info{team=~"$team"}, service)',
}


def in_regions(expr: str) -> str:
    """An expression by region narrowed to the dashboard's `$region` (for those that cannot take a matcher)."""
    return f'({expr}) and on (region) gpuops:region:nodes_ready:sum{{region=~"$region"}}'


def for_service(panel_query: str, service: str) -> str:
    """A panel query narrowed to one service: its `$service` variable replaced by the checked name."""
    return panel_query.replace("$service", label_value(service))


def event_countdown_seconds(start: float) -> str:
    """Seconds to an event's start (0 once it began)."""
    return f"clamp_min(vector({start:.0f} - time()), 0)"


# --- what runbooks check and wait for: `{service}`, `{region}`, `{namespace}`, `{node}`, `{window}` are
# filled by `runbook_query` from validated parameters, each value checked, never pasted raw -----------------
RUNBOOK_QUERIES: dict[str, str] = {
    # A region with no series serves nothing: a lost cluster's series stop altogether (its source has drained).
    "service_rps": (
        'sum(gpuops:service_region:requests:rate1m{{service="{service}", region=~"{region}"}}) or vector(0)'
    ),
    "service_total_rps": 'sum(gpuops:service_region:requests:rate1m{{service="{service}"}})',
    "service_p95_seconds": 'max(gpuops:service_region:latency_p95:seconds{{service="{service}", region=~"{region}"}})',
    "service_slo_seconds": 'max(gpuops:service:latency_slo:seconds{{service="{service}"}})',
    # p95 over the SLO: under 1 means the latency objective holds.
    "service_p95_over_slo": (
        'max(gpuops:service_region:latency_p95:seconds{{service="{service}", region=~"{region}"}})'
        ' / scalar(max(gpuops:service:latency_slo:seconds{{service="{service}"}}))'
    ),
    "service_error_ratio": (
        'max(gpuops:service_region:errors:ratio_rate1m{{service=~"{service}", region=~"{region}"}})'
    ),
    "service_gpu_busy": 'avg(gpuops:service_region:gpu_busy:avg{{service="{service}", region=~"{region}"}})',
    "service_ready_replicas": (
        'sum(gpuops:service_region:replicas_available:sum{{service="{service}", region=~"{region}"}})'
    ),
    # Replicas wanted but not ready, over every deployment of the services named (`a|b`) in the regions.
    "service_replicas_unready": (
        'sum(gpuops:service_region:replicas_desired:sum{{service=~"{service}", region=~"{region}"}})'
        ' - sum(gpuops:service_region:replicas_available:sum{{service=~"{service}", region=~"{region}"}})'
    ),
    "service_cpu_ready_replicas": (
        "sum(kube_deployment_status_replicas_available * on (namespace, deployment) group_left"
        ' kube_deployment_labels{{label_gpuops_io_service="{service}", label_gpuops_io_region=~"{region}",'
        ' label_gpuops_io_fallback="cpu"}}) or vector(0)'
    ),
    # The same over a window the caller picks: a drill's probes read over a window scaled to the twin's speed.
    "service_error_ratio_over": (
        'sum(rate(service_requests_total{{code=~"5..", service="{service}", region=~"{region}"}}[{window}]))'
        ' / sum(rate(service_requests_total{{service="{service}", region=~"{region}"}}[{window}]))'
    ),
    # The least headroom of the regions serving a service: 1 - its requests over what its ready replicas serve at
    # their target utilisation. Under 0 a region runs past its target, and its latency climbs.
    "service_min_headroom": (
        'min(1 - gpuops:service_region:requests:rate1m{{service="{service}", region=~"{region}"}}'
        ' / on (service, region) gpuops:service_region:capacity_rps{{service="{service}", region=~"{region}"}})'
    ),
    "service_mode_code": 'max(gpuops:service_region:mode:code{{service="{service}", region=~"{region}"}})',
    "service_weight": 'sum(service_traffic_weight{{service="{service}", region="{region}"}})',
    # What the service's ready replicas in `{region}` serve at their target utilisation.
    "region_capacity_rps": 'sum(gpuops:service_region:capacity_rps{{service="{service}", region="{region}"}})',
    "region_nodes_ready": 'min(gpuops:region:nodes_ready:sum{{region=~"{region}"}})',
    # GPUs that held a pod and stayed under the idle threshold for the whole window, in one namespace.
    "namespace_idle_gpus": (
        f'count(max_over_time(DCGM_FI_DEV_GPU_UTIL{{{{pod!="", namespace="{{namespace}}"}}}}[{{window}}])'
        f" < {IDLE_BUSY_PCT:g}) or vector(0)"
    ),
    # Per pod: its GPUs that stayed under the idle threshold for the whole window (what reclaim-idle frees).
    "idle_gpus_by_pod": (
        f'count by (namespace, pod) (max_over_time(DCGM_FI_DEV_GPU_UTIL{{{{pod!=""}}}}[{{window}}])'
        f" < {IDLE_BUSY_PCT:g})"
    ),
    "node_xid": (
        'max(DCGM_FI_DEV_XID_ERRORS{{Hostname="{node}"}} or DCGM_FI_DEV_XID_ERRORS{{hostname="{node}"}}) or vector(0)'
    ),
    "node_unschedulable": 'max(kube_node_spec_unschedulable{{node="{node}"}}) or vector(0)',
    "node_pods": 'count(kube_pod_info{{node="{node}"}}) or vector(0)',
    # Pods whose GPU reports an XID error: work on a faulty GPU (none is the steady state).
    "pods_on_xid_gpus": 'count(DCGM_FI_DEV_XID_ERRORS{{pod!=""}} > 0) or vector(0)',
    # Workloads admitted by the ClusterQueues named (`a|b`) over the window: 0 once admission has stopped.
    "queue_admissions": (
        'sum(increase(kueue_admitted_workloads_total{{cluster_queue=~"{queue}"}}[{window}])) or vector(0)'
    ),
    # GPUs the ClusterQueues named hold for admitted batch work: what holding them frees as it finishes.
    "queue_gpus_used": (
        'sum(kueue_cluster_queue_resource_usage{{cluster_queue=~"{queue}", resource="nvidia.com/gpu"}}) or vector(0)'
    ),
    "queue_gpus_by_flavor": (
        'sum by (flavor) (kueue_cluster_queue_resource_usage{{cluster_queue=~"{queue}", resource="nvidia.com/gpu"}})'
    ),
    "node_gpus_reported": (
        'count(DCGM_FI_DEV_GPU_UTIL{{Hostname="{node}"}} or DCGM_FI_DEV_GPU_UTIL{{hostname="{node}"}}) or vector(0)'
    ),
}
# Headrooms `1 - traffic / capacity` whose traffic is the fleet's and whose capacity is one region's: where each
# cluster runs its own Prometheus, the two are read apart (console.runbooks.reads).
HEADROOM_PARTS = {
    # The headroom `{region}` would keep if it served all of the service's traffic.
    "region_headroom_for_all": ("service_total_rps", "region_capacity_rps"),
}
for _name, (_traffic, _capacity) in HEADROOM_PARTS.items():
    RUNBOOK_QUERIES[_name] = f"1 - {RUNBOOK_QUERIES[_traffic]} / {RUNBOOK_QUERIES[_capacity]}"
_DURATION = re.compile(r"^\d+(ms|s|m|h|d|w)$")


def runbook_query(name: str, **args: str) -> str:
    """A runbook's named query with its arguments: label values and durations checked, never pasted raw."""
    template = RUNBOOK_QUERIES[name]
    safe = {}
    for k, v in args.items():
        if k == "window":
            if not _DURATION.match(v):
                raise ValueError(f"{v!r} is not a duration like 30m")
            safe[k] = v
        elif f'=~"{{{k}}}"' in template and (v == ".*" or "|" in v):
            # Where the template matches by regex: every one (`.*`), or a list of label values (`a|b`).
            safe[k] = v if v == ".*" else "|".join(label_value(x) for x in v.split("|"))
        else:
            safe[k] = label_value(v)
    return template.format(**safe)


def runbook_query_args(name: str) -> set[str]:
    """The arguments a runbook query needs."""
    return set(re.findall(r"(?<!\{)\{(\w+)\}(?!\})", RUNBOOK_QUERIES[name]))
