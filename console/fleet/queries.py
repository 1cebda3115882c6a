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
# One selector for every per-GPU (and per-MIG-instance) reading the snapshot keeps.
GPU_READINGS = (
    '{__name__=~"DCGM_FI_DEV_GPU_UTIL|DCGM_FI_DEV_FB_USED|DCGM_FI_DEV_FB_FREE|DCGM_FI_DEV_POWER_USAGE'
    '|DCGM_FI_DEV_GPU_TEMP|DCGM_FI_DEV_XID_ERRORS|DCGM_FI_PROF_GR_ENGINE_ACTIVE"}'
)
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
    "gpu_readings": GPU_READINGS,
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
