"""The typed catalog: every region, pool, team, service, price and event of a fleet."""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# Kubernetes object names (RFC 1123 labels): also what we allow to reach PromQL label matchers.
NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_name(v: str) -> str:
    if not NAME_RE.match(v) or len(v) > 63:
        raise ValueError(f"{v!r} is not a valid name (lower-case letters, digits and '-', at most 63)")
    return v


# A Kubernetes label key (`karpenter.sh/nodepool`: an optional DNS prefix, `/`, a name) and value: what may
# reach PromQL matchers and kubectl selectors from the catalog.
_DNS = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
LABEL_KEY_RE = re.compile(rf"^({_DNS}/)?[A-Za-z0-9]([-A-Za-z0-9_.]{{0,61}}[A-Za-z0-9])?$")
LABEL_VALUE_RE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")


def _check_label_key(v: str) -> str:
    if not LABEL_KEY_RE.match(v) or len(v) > 316:
        raise ValueError(f"{v!r} is not a Kubernetes label key (as karpenter.sh/nodepool)")
    return v


def _check_labels(v: dict[str, str]) -> dict[str, str]:
    for key, value in v.items():
        _check_label_key(key)
        if not LABEL_VALUE_RE.match(value):
            raise ValueError(f"{key}: {value!r} is not a Kubernetes label value (at most 63 of A-Z a-z 0-9 - _ .)")
    return v


# The node labels that name a node's group where clusters are made: a pool's name is usually under one.
NODE_GROUP_LABELS = (
    "gpuops.io/pool", "karpenter.sh/nodepool", "cloud.google.com/gke-nodepool", "eks.amazonaws.com/nodegroup",
    "kubernetes.azure.com/agentpool",
)  # fmt: skip


class NodeLabels(Strict):
    """The node labels that say which pool, region and GPU model a node is in: the ones a cluster already has
    (GKE `cloud.google.com/gke-nodepool`, EKS `eks.amazonaws.com/nodegroup`, Karpenter `karpenter.sh/nodepool`;
    `topology.kubernetes.io/region`; GPU feature discovery's `nvidia.com/gpu.product`). A pool whose nodes
    carry its name in `pool` needs nothing more; one that does not says how its nodes are found (`match`)."""

    pool: str = "gpuops.io/pool"
    region: str = "topology.kubernetes.io/region"
    model: str = "nvidia.com/gpu.product"

    _keys = field_validator("pool", "region", "model")(_check_label_key)

    def all(self) -> dict[str, str]:
        return {"pool": self.pool, "region": self.region, "model": self.model}


class Cluster(Strict):
    name: str
    context: str
    regions: list[str]
    production: bool = False
    readonly: bool = False
    # This cluster's own Prometheus (and Alertmanager), where each cluster runs one: its series carry no
    # cluster label there (that is its external label), so the console labels what it reads by where it read it.
    prometheus: str = Field("", max_length=500, pattern=r"^(https?://\S+)?$")
    alertmanager: str = Field("", max_length=500, pattern=r"^(https?://\S+)?$")

    _name = field_validator("name")(_check_name)


class Region(Strict):
    name: str
    title: str = ""
    utc_offset_hours: float = Field(0.0, ge=-12, le=14)

    _name = field_validator("name")(_check_name)


class GpuModel(Strict):
    name: str
    memory_mib: int = Field(gt=0)
    tdp_watts: int = Field(gt=0)
    idle_watts: int = Field(gt=0)
    tokens_per_gpu_second: float = Field(0.0, ge=0)


class PoolKind(StrEnum):
    training = "training"
    inference = "inference"
    batch = "batch"
    transcode = "transcode"


class Mig(Strict):
    profile: str = Field(pattern=r"^\d+g\.\d+gb$")
    instances_per_gpu: int = Field(ge=1, le=7)


class PoolStorage(Strict):
    """The shared store a pool's nodes read and write (the transcode pipeline's media): an NFS export or an
    object store, reached over the network, with the throughput it sustains in each region."""

    kind: Literal["nfs", "object"]
    ceiling_mb_s: float = Field(gt=0, le=1e7, description="sustained read + write, MB/s, per region")

    @property
    def ceiling_bytes_s(self) -> float:
        return self.ceiling_mb_s * 1e6


class StorageIO(Strict):
    """What one request moves to and from its pool's store, MB."""

    read_mb: float = Field(0.0, ge=0, le=1e6)
    write_mb: float = Field(0.0, ge=0, le=1e6)

    @property
    def total_mb(self) -> float:
        return self.read_mb + self.write_mb


class Pool(Strict):
    name: str
    kind: PoolKind
    # None for a CPU-only pool.
    gpu_model: str | None = None
    # A different GPU model in some regions (e.g. L4 in one, T4 in another).
    gpu_model_by_region: dict[str, str] = Field(default_factory=dict)
    nodes: dict[str, int] = Field(description="nodes per region")
    gpus_per_node: int = Field(0, ge=0, le=16)
    cpu_per_node: int = Field(64, gt=0)
    memory_gib_per_node: int = Field(512, gt=0)
    mig: Mig | None = None
    # The node labels that select this pool's nodes (`{karpenter.sh/nodepool: gpu-l4}`, or GPU feature
    # discovery's `{nvidia.com/gpu.product: NVIDIA-L4}`); empty: node_labels.pool carries the pool's name.
    match: dict[str, str] = Field(default_factory=dict, max_length=8)
    storage: PoolStorage | None = None

    _name = field_validator("name")(_check_name)
    _match = field_validator("match")(_check_labels)

    @model_validator(mode="after")
    def _gpus_given(self) -> Pool:
        # A default of 0 here once made a pool of 48 H100s count as none, silently.
        if (self.gpu_model or self.gpu_model_by_region) and self.gpus_per_node == 0:
            raise ValueError("gpus_per_node: required for a GPU pool (it names a gpu_model): 1 to 16")
        return self

    def model_in(self, region: str) -> str | None:
        return self.gpu_model_by_region.get(region, self.gpu_model)

    def selector(self, labels: NodeLabels) -> dict[str, str]:
        """The node labels (all of them) that put a node in this pool."""
        return dict(self.match) or {labels.pool: self.name}

    def gpus_in(self, region: str) -> int:
        return self.nodes.get(region, 0) * self.gpus_per_node


class Team(Strict):
    name: str
    namespaces: list[str] = Field(min_length=1)
    cost_centre: str
    monthly_budget: float = Field(gt=0)
    priority: int = Field(50, ge=0, le=100)
    critical: bool = False
    quota_gpus: dict[str, float] = Field(default_factory=dict, description="GPU request quota per namespace")
    slack_channel: str = ""  # default: #<team>-alerts
    # The team's Feishu/Lark group ("#llm-oncall"): `gpuops relay` posts its alert cards there. Empty: none.
    feishu_group: str = Field("", max_length=100)
    sla_tier: str = "standard"  # one of prices.sla_tiers: its multiplier applies to the team's GPU prices
    billing: str = "hourly"  # one of prices.billing_modes

    _name = field_validator("name")(_check_name)


class ServiceKind(StrEnum):
    llm = "llm"
    tts = "tts"
    diffusion = "diffusion"
    asr = "asr"
    embedding = "embedding"
    transcode = "transcode"


class FallbackMode(StrEnum):
    rules = "rules"
    cpu = "cpu"
    none = "none"


class Fallback(Strict):
    mode: FallbackMode
    # For mode=cpu: the CPU deployment that takes the traffic.
    deployment: str | None = None
    # Share of the GPU load that remains in fallback (rules models still call the GPU for some requests).
    gpu_load_factor: float = Field(0.2, ge=0, le=1)


class Service(Strict):
    name: str
    kind: ServiceKind
    team: str
    namespace: str
    deployment: str
    pool: str
    regions: list[str] = Field(min_length=1)
    replicas: dict[str, int] = Field(description="baseline replicas per region")
    gpus_per_replica: float = Field(ge=0)
    gpu_seconds_per_request: float = Field(gt=0)
    tokens_per_request: float = Field(0.0, ge=0)
    base_rps: dict[str, float] = Field(description="mean requests per second per region")
    latency_slo_ms: float = Field(gt=0)
    # The share of requests that must finish within latency_slo_ms (the SLO's objective).
    latency_slo_target: float = Field(0.99, gt=0, lt=1)
    # The share of requests that must not fail (5xx): the availability SLO's objective.
    availability_slo_target: float = Field(0.999, gt=0, lt=1)
    base_latency_ms: float = Field(gt=0)
    target_utilisation: float = Field(0.7, gt=0, le=1)
    fallback: Fallback
    hpa_max_replicas: int = Field(64, ge=1)
    # A service bound by storage (transcode): what each request reads and writes on its pool's store.
    storage_io: StorageIO | None = None

    _name = field_validator("name")(_check_name)

    @property
    def capacity_per_replica_rps(self) -> float:
        """Requests a second one ready replica serves at the target utilisation (the capacity rule's factor)."""
        return self.replica_rps(self.gpu_seconds_per_request)

    def replica_rps(self, gpu_seconds_per_request: float) -> float:
        """The same at another cost per request (readiness: an LLM's measured tokens on the region's GPU).
        A MIG slice replica counts as one serving unit, as the catalog's cost is per replica."""
        return max(self.gpus_per_replica, 1.0) / gpu_seconds_per_request * self.target_utilisation


class Job(Strict):
    """Work that holds GPUs without serving traffic: a training run, a batch sweep."""

    name: str
    team: str
    namespace: str
    pool: str
    region: str
    pods: int = Field(ge=1)
    gpus_per_pod: float = Field(gt=0)
    utilisation: float = Field(ge=0, le=100, description="typical GPU utilisation, %")

    _name = field_validator("name")(_check_name)


class Flavor(Strict):
    """A Kueue ResourceFlavor: the GPUs of one pool in one region (its nodes' labels select them)."""

    name: str
    pool: str
    region: str

    _name = field_validator("name")(_check_name)


class ClusterQueue(Strict):
    """A Kueue ClusterQueue: nominal GPUs per flavor, in the order admission tries them. Queues of one cohort
    lend each other the quota they leave unused."""

    name: str
    cohort: str = ""
    quota: dict[str, float] = Field(min_length=1, description="nominal GPUs per flavor, in the order tried")
    borrowing_limit: float | None = Field(None, ge=0, description="GPUs per flavor it may borrow; none: no limit")
    hold_for_events: bool = Field(True, description="hold-batch stops its admission before an event")

    _name = field_validator("name")(_check_name)

    @field_validator("quota")
    @classmethod
    def _quota(cls, v: dict[str, float]) -> dict[str, float]:
        bad = [f"{k}: {x:g}" for k, x in v.items() if x < 0 or x > 1e6]
        if bad:
            raise ValueError(f"nominal GPUs are 0 to 1000000: {', '.join(bad)}")
        return v


class Arrivals(Strict):
    """Batch work the twin submits to a local queue: a Job every `every_min`, each running `run_min` once
    admitted. A real fleet's submitters are its users; the twin needs a load."""

    name: str = Field(description="the Jobs' name prefix")
    every_min: float = Field(gt=0, le=10080)
    run_min: float = Field(gt=0, le=10080)
    pods: int = Field(1, ge=1, le=64)
    gpus_per_pod: int = Field(ge=1, le=16)
    utilisation: float = Field(80, ge=0, le=100, description="typical GPU utilisation, %")
    max_pending: int = Field(24, ge=1, le=1000, description="submitters back off beyond this many waiting")

    _name = field_validator("name")(_check_name)


class LocalQueue(Strict):
    """A Kueue LocalQueue: where a team namespace's batch Jobs queue (`kueue.x-k8s.io/queue-name`)."""

    name: str
    namespace: str
    cluster_queue: str
    arrivals: Arrivals | None = None

    _name = field_validator("name")(_check_name)


class Queues(Strict):
    """Batch admission as Kueue runs it: flavors, cluster queues with their quota, the teams' local queues."""

    flavors: list[Flavor] = Field(min_length=1)
    cluster_queues: list[ClusterQueue] = Field(min_length=1)
    local_queues: list[LocalQueue] = Field(default_factory=list)

    def held_for_events(self) -> list[str]:
        """The cluster queues hold-batch stops by default."""
        return [q.name for q in self.cluster_queues if q.hold_for_events]

    def cluster_queue_of(self, namespace: str, local_queue: str) -> str | None:
        """The ClusterQueue a namespace's LocalQueue feeds (None: no such LocalQueue)."""
        return next(
            (lq.cluster_queue for lq in self.local_queues if (lq.namespace, lq.name) == (namespace, local_queue)),
            None,
        )


class SlaTier(Strict):
    name: str
    multiplier: float = Field(gt=0)


class BillingMode(Strict):
    name: str = Field(pattern=r"^(hourly|monthly_package|per_job)$")
    included_gpu_hours: float = Field(0, ge=0)
    package_price: float = Field(0, ge=0)
    per_job_price: float = Field(0, ge=0)


class Prices(Strict):
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    gpu_hourly: dict[str, float]
    cpu_core_hourly: float = Field(ge=0)
    sla_tiers: list[SlaTier] = Field(min_length=1)
    billing_modes: list[BillingMode] = Field(min_length=1)
    # Idle GPUs (allocatable, not requested) are their own line, `__idle__`; shared, they are spread over the
    # teams in proportion to their GPU-hours (OpenCost's "share idle").
    share_idle: bool = False

    def tier(self, name: str) -> SlaTier:
        return next(t for t in self.sla_tiers if t.name == name)

    def billing_mode(self, name: str) -> BillingMode:
        return next(b for b in self.billing_modes if b.name == name)


class Event(Strict):
    name: str
    title: str
    start: datetime
    end: datetime
    multiplier: float = Field(gt=0)
    buffer: float = Field(0.25, ge=0.2, le=0.3)
    services: list[str] = Field(min_length=1)
    # Readiness wants each runbook the event leans on run in a passed drill this recently.
    drilled_within_days: int = Field(30, ge=1, le=365)

    _name = field_validator("name")(_check_name)


class Alerting(Strict):
    """Where alerts go. Secrets are named by file, never written here: Alertmanager reads them itself."""

    platform_team: str = "sre"  # fleet-wide alerts (a region, a node) and the default route
    secrets_dir: str = "/etc/gpuops/secrets"
    # `gpuops relay`, which turns Alertmanager's webhook into Feishu/Lark cards for teams with a
    # `feishu_group`; Alertmanager sends it the bearer token in `<secrets_dir>/relay-token`.
    relay_url: str = "http://gpuops-relay.monitoring.svc:9095"
    platform_feishu_group: str = Field("", max_length=100)  # the platform team's Feishu group, if any
    # The dead man's switch that hears the always-firing Watchdog (healthchecks.io, PagerDuty's heartbeat);
    # none: the Watchdog goes to a receiver that drops it.
    watchdog_url: str = ""
    group_wait: str = "30s"
    group_interval: str = "5m"
    repeat_interval: str = "4h"


# One label matcher (`job="dcgm-exporter"`), as PromQL writes it; a selector is none or several, by commas.
_MATCHER = r'\s*[A-Za-z_][A-Za-z0-9_]*\s*(=~|!~|!=|=)\s*"(?:[^"\\]|\\.)*"\s*'
_SELECTOR = re.compile(rf"^({_MATCHER}(,{_MATCHER})*)?$")


def _check_selector(v: str) -> str:
    if not _SELECTOR.match(v):
        raise ValueError(f'{v!r} is not a list of label matchers: write job="dcgm-exporter", several by commas')
    return v


class Monitoring(Strict):
    """How this fleet's series are told apart, as kubernetes-mixin's `_config` selectors do: every rule, panel
    and console query reads an exporter's series through its selector, and the rules keep `cluster_label`
    in every sum and join over a place (node, pool, region, namespace), so one Prometheus can hold several
    clusters' series (a Thanos or Mimir ruler) and each cluster's Prometheus can add it as an external label.
    An empty selector reads the series of any job."""

    dcgm_selector: str = Field('job="dcgm-exporter"', max_length=500)
    kube_state_metrics_selector: str = Field('job="kube-state-metrics"', max_length=500)
    opencost_selector: str = Field('job="opencost"', max_length=500)
    cluster_label: str = Field("cluster", pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")

    _selectors = field_validator("dcgm_selector", "kube_state_metrics_selector", "opencost_selector")(_check_selector)

    def selectors(self) -> dict[str, str]:
        """Each exporter's selector, by the job name it has by default: `{"dcgm-exporter": 'job="..."', ...}`."""
        return {job: getattr(self, field) for job, field in EXPORTER_FIELDS.items()}


# The catalog field that holds each exporter's selector, by the exporter's usual job name.
EXPORTER_FIELDS = {
    "dcgm-exporter": "dcgm_selector",
    "kube-state-metrics": "kube_state_metrics_selector",
    "opencost": "opencost_selector",
}


class Grafana(Strict):
    """Where the dashboards go and what links point at. The API token is never here (GRAFANA_TOKEN or a file)."""

    url: str = ""  # the Grafana that alerts' dashboard_url links open; relative links when empty
    folder_uid: str = Field("gpuops", pattern=r"^[A-Za-z0-9_-]{1,40}$")
    folder_title: str = "GPU fleet"
    # Where runbooks/*.yaml are browsed (the repository's web view); dashboards and alerts link there.
    runbooks_url: str = "runbooks"
    tags: list[str] = Field(default_factory=lambda: ["gpuops"])


class GlobalView(Strict):
    """A query endpoint over every cluster's series, each with the cluster label (its external label): a
    Prometheus taking the clusters' remote writes, Thanos Query, Mimir, VictoriaMetrics."""

    prometheus: str = Field(max_length=500, pattern=r"^https?://\S+$")
    # What it holds. `all`: every cluster's series (Thanos, Mimir, a Prometheus taking whole remote writes).
    # `records`: the gpuops:* records, `up` and the few raw series the refresh joins (queries.records_only_keep),
    # the clusters running the rules; node and GPU series are read in each cluster's own `prometheus:`.
    holds: Literal["all", "records"] = "all"


class Catalog(Strict):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    clusters: list[Cluster] = Field(min_length=1)
    # `global:` in the file (a Python keyword here).
    global_view: GlobalView | None = Field(None, alias="global")
    regions: list[Region] = Field(min_length=1)
    gpu_models: list[GpuModel] = Field(default_factory=list)
    pools: list[Pool] = Field(min_length=1)
    teams: list[Team] = Field(min_length=1)
    services: list[Service] = Field(default_factory=list)
    jobs: list[Job] = Field(default_factory=list)
    queues: Queues | None = None
    prices: Prices
    events: list[Event] = Field(default_factory=list)
    alerting: Alerting = Field(default_factory=Alerting)
    grafana: Grafana = Field(default_factory=Grafana)
    monitoring: Monitoring = Field(default_factory=Monitoring)
    node_labels: NodeLabels = Field(default_factory=NodeLabels)

    def pool(self, name: str) -> Pool:
        return next(p for p in self.pools if p.name == name)

    def team(self, name: str) -> Team:
        return next(t for t in self.teams if t.name == name)

    def service(self, name: str) -> Service:
        return next(s for s in self.services if s.name == name)

    def event(self, name: str) -> Event:
        return next(e for e in self.events if e.name == name)

    def gpu_model(self, name: str) -> GpuModel:
        return next(m for m in self.gpu_models if m.name == name)

    def team_of_namespace(self, namespace: str) -> Team | None:
        return next((t for t in self.teams if namespace in t.namespaces), None)

    def region_names(self) -> list[str]:
        return [r.name for r in self.regions]

    def read_clusters(self) -> list[Cluster]:
        """The clusters the console reads one by one: those with their own Prometheus, or every cluster when a
        global view holds them all. None: the fleet is read as one (the console's --prometheus)."""
        if self.global_view is not None:
            return list(self.clusters)
        return [c for c in self.clusters if c.prometheus]

    def mig_per_gpu(self) -> dict[str, int]:
        """MIG instances per GPU by resource, in kube-state-metrics' spelling (`nvidia_com_mig_3g_40gb`)."""
        return {kube_resource_name(mig_resource(p.mig)): p.mig.instances_per_gpu for p in self.pools if p.mig}

    def gpus_per_pool(self) -> dict[tuple[str, str], int]:
        """Physical GPUs per (pool, region) as the catalog declares them."""
        return {(p.name, r): p.gpus_in(r) for p in self.pools for r in p.nodes if p.gpus_per_node}


# --- names the catalog implies: one place, used by the twin, the sources and the runbooks ---------------


def deployment_name(service: Service, region: str) -> str:
    """One deployment per service and region: `<deployment>-<region>`."""
    return f"{service.deployment}-{region}"


def default_weights(svc: Service, regions: list[str] | None = None) -> dict[str, float]:
    """The traffic weights a routing config map starts with: each region's share of the service's demand, out
    of 100, among `regions` (default: all of the service's; a cluster's config map holds its own regions')."""
    among = svc.regions if regions is None else regions
    total = sum(svc.base_rps.get(r, 0.0) for r in among) or 1.0
    return {r: round(100 * svc.base_rps.get(r, 0.0) / total, 1) for r in among}


def routing_configmap(service: Service) -> str:
    """The config map holding a service's `mode` and its `weight.<region>` traffic weights."""
    return f"{service.deployment}-routing"


def kube_resource_name(resource: str) -> str:
    """kube-state-metrics' spelling of a resource name: `nvidia.com/gpu` -> `nvidia_com_gpu`."""
    return re.sub(r"[^a-zA-Z0-9_]", "_", resource)


def mig_resource(mig: Mig) -> str:
    return f"nvidia.com/mig-{mig.profile}"


GPU_RESOURCE = "nvidia.com/gpu"
# Fractional, shared GPUs as the Alibaba trace's scheduler requests them (thousandths of a GPU).
GPU_MILLI_RESOURCE = "alibabacloud.com/gpu-milli"


def next_event(events: list[Event], now: datetime) -> tuple[Event, bool] | None:
    """The event running now (True), or else the next to start (False)."""
    live = [e for e in events if e.start <= now < e.end]
    if live:
        return min(live, key=lambda e: e.end), True
    coming = [e for e in events if e.start > now]
    return (min(coming, key=lambda e: e.start), False) if coming else None
