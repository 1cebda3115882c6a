"""Every PromQL string the console, the dashboards and the rules read, once, by name.

Queries aggregate (`sum by`, `avg by`) or select one family; none is issued per GPU or per node, so the
number of requests of a refresh does not grow with the fleet.
"""

from __future__ import annotations

import re

GPU_RESOURCES = "nvidia_com_gpu|nvidia_com_mig_.+|alibabacloud_com_gpu_milli"

# --- the snapshot's fixed set ----------------------------------------------------------------------------
NODE_LABELS = "kube_node_labels"
NODE_GPU_ALLOCATABLE = 'kube_node_status_allocatable{resource=~"nvidia_com_gpu|nvidia_com_mig_.+"}'
NODE_GPU_REQUESTED = (
    f'sum by (node, resource) (kube_pod_container_resource_requests{{resource=~"{GPU_RESOURCES}", node!=""}})'
)
# Per-GPU (and per-MIG-instance) readings, each reduced to the labels the snapshot keeps: a third of the
# bytes of the raw series at 10,000 GPUs. `hostname` is kept beside `Hostname`, which older exporters use.
_GPU = "Hostname, hostname, gpu"
_INSTANCE = f"{_GPU}, GPU_I_ID"
GPU_UTIL = f"max by ({_GPU}, UUID, modelName, pod, namespace) (DCGM_FI_DEV_GPU_UTIL)"
MIG_ACTIVE = f'max by ({_INSTANCE}, GPU_I_PROFILE, pod, namespace) (DCGM_FI_PROF_GR_ENGINE_ACTIVE{{GPU_I_ID!=""}})'
GPU_FB_USED = f"max by ({_INSTANCE}) (DCGM_FI_DEV_FB_USED)"
GPU_FB_FREE = f"max by ({_INSTANCE}) (DCGM_FI_DEV_FB_FREE)"
GPU_POWER = f"max by ({_GPU}) (DCGM_FI_DEV_POWER_USAGE)"
GPU_TEMP = f"max by ({_GPU}) (DCGM_FI_DEV_GPU_TEMP)"
GPU_XID = f"max by ({_GPU}) (DCGM_FI_DEV_XID_ERRORS)"
QUOTAS = 'kube_resourcequota{resource=~"requests.nvidia.com/.+|requests.cpu|requests.memory"}'
DEPLOYMENT_REPLICAS = "kube_deployment_spec_replicas"
DEPLOYMENT_AVAILABLE = "kube_deployment_status_replicas_available"
SERVICE_RPS = "sum by (service, region) (rate(service_requests_total[1m]))"
SERVICE_ERROR_RPS = 'sum by (service, region) (rate(service_requests_total{code=~"5.."}[1m]))'
SERVICE_P95_SECONDS = (
    "histogram_quantile(0.95, sum by (service, region, le) (rate(service_request_duration_seconds_bucket[1m])))"
)
SERVICE_MODE = "service_mode == 1"
SERVICE_WEIGHT = "service_traffic_weight"

SNAPSHOT = {
    "node_labels": NODE_LABELS,
    "node_gpu_allocatable": NODE_GPU_ALLOCATABLE,
    "node_gpu_requested": NODE_GPU_REQUESTED,
    "gpu_util": GPU_UTIL,
    "mig_active": MIG_ACTIVE,
    "gpu_fb_used": GPU_FB_USED,
    "gpu_fb_free": GPU_FB_FREE,
    "gpu_power": GPU_POWER,
    "gpu_temp": GPU_TEMP,
    "gpu_xid": GPU_XID,
    "quotas": QUOTAS,
    "deployment_replicas": DEPLOYMENT_REPLICAS,
    "deployment_available": DEPLOYMENT_AVAILABLE,
    "service_rps": SERVICE_RPS,
    "service_error_rps": SERVICE_ERROR_RPS,
    "service_p95_seconds": SERVICE_P95_SECONDS,
    "service_mode": SERVICE_MODE,
    "service_weight": SERVICE_WEIGHT,
}

_LABEL_VALUE = re.compile(r"^[A-Za-z0-9_.:/-]{1,253}$")


def label_value(v: str) -> str:
    """A value safe to put between quotes in a matcher: refused, never escaped into something else."""
    if not _LABEL_VALUE.match(v):
        raise ValueError(f"{v!r} is not allowed in a label matcher")
    return v
