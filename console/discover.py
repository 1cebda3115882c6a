"""`gpuops catalog discover`: a catalog drafted from what a cluster already holds.

Regions from `topology.kubernetes.io/region`; pools from the node group label the cluster uses (GKE, EKS,
Karpenter, or the project's own), their GPU model and count from GPU feature discovery's labels and the nodes'
allocatable, MIG profiles from the allocatable MIG resources; teams from namespaces and their ResourceQuotas;
services from the Deployments that request GPUs (replicas per region, requests); batch Jobs likewise.

Every value guessed carries a `# guessed: ...` comment, every value a cluster cannot know (budgets, SLOs,
prices, request costs) a `# placeholder: ...` one: the draft loads and builds, and `gpuops catalog check`
names each placeholder as file:line: field until it is replaced.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import yaml

from console.catalog.model import NAME_RE, NODE_GROUP_LABELS, PoolKind
from console.quantity import parse_quantity

PLACEHOLDER = "# placeholder:"
GUESSED = "# guessed:"
REGION_LABELS = ("topology.kubernetes.io/region", "failure-domain.beta.kubernetes.io/region")
PRODUCT = "nvidia.com/gpu.product"
GPU = "nvidia.com/gpu"
GPU_MILLI = "alibabacloud.com/gpu-milli"
MIG = re.compile(r"^nvidia\.com/mig-(\d+g\.\d+gb)$")
TEAM_LABELS = ("gpuops.io/team", "team", "owner")
# Known GPUs: memory (MiB), board power and idle power (W), list price per hour (USD) to start from.
KNOWN_GPUS = {
    "H200": (143771, 700, 75, 10.0),
    "H100": (81559, 700, 70, 8.0),
    "A100": (81920, 400, 50, 4.0),
    "L40S": (46068, 350, 40, 2.0),
    "A10": (23028, 150, 30, 1.2),
    "L4": (23034, 72, 16, 0.8),
    "T4": (15360, 70, 10, 0.5),
    "V100": (16384, 300, 40, 2.5),
    "P100": (16384, 250, 30, 1.5),
}
# UTC offsets of the regions' usual names (their users' day drives the diurnal load).
REGION_OFFSETS = (
    ("us-east", -5), ("us-central", -6), ("us-west", -8), ("northamerica", -5), ("southamerica", -3),
    ("sa-east", -3), ("eu-west", 0), ("europe-west2", 0), ("eu", 1), ("europe", 1), ("me-", 3),
    ("ap-south", 5.5), ("asia-south", 5.5),
    ("ap-southeast", 8), ("asia-southeast", 8), ("asia-east", 8), ("ap-east", 8), ("cn-", 8),
    ("ap-northeast", 9), ("asia-northeast", 9), ("australia", 10),
)  # fmt: skip
SERVICE_KINDS = (
    ("llm", ("llm", "chat", "gpt", "copywrit", "completion")), ("tts", ("tts", "speech", "voice", "dub")),
    ("asr", ("asr", "subtit", "whisper", "transcri")), ("diffusion", ("diffusion", "image", "cover", "sd-")),
    ("embedding", ("embed",)), ("transcode", ("transcode", "video", "encode")),
)  # fmt: skip


@dataclass
class Objects:
    """What the draft is made from, as the Kubernetes API lists them (plain JSON objects)."""

    nodes: list[dict[str, Any]]
    namespaces: list[dict[str, Any]] = field(default_factory=list)
    quotas: list[dict[str, Any]] = field(default_factory=list)
    deployments: list[dict[str, Any]] = field(default_factory=list)
    jobs: list[dict[str, Any]] = field(default_factory=list)
    hpas: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Note:
    """A value with the comment that says where it came from."""

    value: Any
    comment: str


def _labels(obj: dict[str, Any]) -> dict[str, str]:
    return (obj.get("metadata") or {}).get("labels") or {}


def _alloc(node: dict[str, Any]) -> dict[str, str]:
    return (node.get("status") or {}).get("allocatable") or {}


def _qty(v: Any) -> float:
    try:
        return parse_quantity(str(v))
    except ValueError:
        return 0.0


def _name(text: str) -> str:
    """A catalog name (RFC 1123) from any label value."""
    out = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")[:63].strip("-")
    return out or "unnamed"


def model_of(product: str) -> str:
    """GPU feature discovery's product (`NVIDIA-H100-80GB-HBM3`, `Tesla-T4`) without its vendor prefix."""
    return re.sub(r"^(?i:nvidia|tesla)[-_ ]", "", product)


def _known(model: str) -> tuple[int, int, int, float] | None:
    # The longest known name the model begins with: an L40S is not an L4.
    for key in sorted(KNOWN_GPUS, key=len, reverse=True):
        if re.match(rf"^{re.escape(key)}([-_ ]|$)", model, re.IGNORECASE):
            return KNOWN_GPUS[key]
    return None


def _region(obj_labels: dict[str, str]) -> str | None:
    return next((obj_labels[k] for k in REGION_LABELS if obj_labels.get(k)), None)


def _offset(region: str) -> float | None:
    # The longest prefix that fits: ap-southeast is not ap-south.
    fits = [(len(prefix), h) for prefix, h in REGION_OFFSETS if region.startswith(prefix)]
    return max(fits)[1] if fits else None


def _kind_of_pool(name: str, gpus: int) -> str:
    if not gpus:
        return PoolKind.transcode.value
    for kind in ("training", "batch", "transcode"):
        if kind[:5] in name:
            return kind
    return PoolKind.inference.value


def _service_kind(name: str) -> str | None:
    return next((kind for kind, words in SERVICE_KINDS if any(w in name for w in words)), None)


def _pool_label(nodes: list[dict[str, Any]]) -> str | None:
    counts = Counter(k for n in nodes for k in _labels(n) if k in NODE_GROUP_LABELS)
    return counts.most_common(1)[0][0] if counts else None


def _gpus_of(node: dict[str, Any]) -> int:
    alloc, labels = _alloc(node), _labels(node)
    whole = int(_qty(alloc.get(GPU, 0)))
    if whole:
        return whole
    return int(_qty(labels.get("nvidia.com/gpu.count", 0)))


def _mig_of(node: dict[str, Any]) -> tuple[str, int] | None:
    for key, v in _alloc(node).items():
        m = MIG.match(key)
        if m and _qty(v) > 0:
            gpus = _gpus_of(node)
            return m[1], max(1, round(_qty(v) / gpus)) if gpus else 1
    return None


@dataclass
class _Pool:
    name: str
    match: dict[str, str]
    nodes: list[dict[str, Any]]


class Draft:
    """The catalog drafted from `objs` for the kubeconfig context `context`."""

    def __init__(self, context: str, objs: Objects):
        self.context, self.objs = context, objs
        self.pool_label = _pool_label(objs.nodes)
        self.pools = self._group()
        self.regions = sorted({r for n in objs.nodes if (r := _region(_labels(n)))})
        self.models: dict[str, int] = {}  # model -> memory MiB (from GPU feature discovery, when it says)
        for n in objs.nodes:
            product = _labels(n).get(PRODUCT)
            if product:
                mem = int(_qty(_labels(n).get("nvidia.com/gpu.memory", 0)))
                self.models[model_of(product)] = max(self.models.get(model_of(product), 0), mem)
        self.ns_labels = {n["metadata"]["name"]: _labels(n) for n in objs.namespaces}
        # MIG slices per GPU by profile: a pod's slices count as that share of a GPU.
        self.mig_per_gpu = {m[0]: m[1] for n in objs.nodes if (m := _mig_of(n))}

    def _team_label(self, ns: str) -> str | None:
        labels = self.ns_labels.get(ns, {})
        return next((k for k in TEAM_LABELS if labels.get(k)), None)

    def team_of(self, ns: str) -> str:
        """A namespace's team: its team label, else its name without a `team-` prefix."""
        label = self._team_label(ns)
        return _name(self.ns_labels[ns][label]) if label else _name(ns.removeprefix("team-"))

    def _group(self) -> list[_Pool]:
        groups: dict[str, _Pool] = {}
        for n in sorted(self.objs.nodes, key=lambda n: n["metadata"]["name"]):
            labels = _labels(n)
            if self.pool_label and labels.get(self.pool_label):
                value = labels[self.pool_label]
                name = value if NAME_RE.match(value) and len(value) <= 63 else _name(value)
                match = {} if name == value else {self.pool_label: value}
            elif labels.get(PRODUCT):
                # No node group label: the GPU product is the pool.
                value = labels[PRODUCT]
                name, match = _name(model_of(value)), {PRODUCT: value}
            else:
                continue
            groups.setdefault(name, _Pool(name, match, [])).nodes.append(n)
        return list(groups.values())

    # --- sections --------------------------------------------------------------------------------------

    def pool_doc(self, p: _Pool) -> dict[str, Any]:
        per_region: Counter[str] = Counter()
        models: dict[str, Counter[str]] = defaultdict(Counter)
        for n in p.nodes:
            region = _region(_labels(n)) or "unknown"
            per_region[region] += 1
            if _labels(n).get(PRODUCT):
                models[region][model_of(_labels(n)[PRODUCT])] += 1
        gpus = max(_gpus_of(n) for n in p.nodes)
        overall = Counter(m for c in models.values() for m in c.elements())
        doc: dict[str, Any] = {"name": p.name, "kind": Note(_kind_of_pool(p.name, gpus), f"{GUESSED} from the name")}
        if overall:
            main = overall.most_common(1)[0][0]
            doc["gpu_model"] = main
            other = {r: c.most_common(1)[0][0] for r, c in sorted(models.items()) if c.most_common(1)[0][0] != main}
            if other:
                doc["gpu_model_by_region"] = other
        doc["nodes"] = dict(sorted(per_region.items()))
        doc["gpus_per_node"] = gpus
        cpu = max(int(_qty(_alloc(n).get("cpu", 0))) for n in p.nodes)
        mem = max(int(_qty(_alloc(n).get("memory", 0)) / 2**30) for n in p.nodes)
        if cpu:
            doc["cpu_per_node"] = cpu
        if mem:
            doc["memory_gib_per_node"] = mem
        mig = next((m for n in p.nodes if (m := _mig_of(n))), None)
        if mig:
            doc["mig"] = {"profile": mig[0], "instances_per_gpu": mig[1]}
        if p.match:
            doc["match"] = p.match
        return doc

    def gpu_model_docs(self) -> list[dict[str, Any]]:
        out = []
        for model, mem in sorted(self.models.items()):
            known = _known(model)
            doc: dict[str, Any] = {"name": model}
            if mem:
                doc["memory_mib"] = mem
            elif known:
                doc["memory_mib"] = Note(known[0], f"{GUESSED} the model's usual memory")
            else:
                doc["memory_mib"] = Note(16384, f"{PLACEHOLDER} the GPU's memory in MiB")
            if known:
                doc["tdp_watts"] = Note(known[1], f"{GUESSED} the model's board power")
                doc["idle_watts"] = Note(known[2], f"{GUESSED} the model's idle power")
            else:
                doc["tdp_watts"] = Note(300, f"{PLACEHOLDER} the GPU's board power in W")
                doc["idle_watts"] = Note(30, f"{PLACEHOLDER} the GPU's idle power in W")
            out.append(doc)
        return out

    def region_docs(self) -> list[dict[str, Any]]:
        out = []
        for r in self.regions:
            off = _offset(r)
            note = (
                Note(off, f"{GUESSED} from the region's name: its users' UTC offset")
                if off is not None
                else Note(0, f"{PLACEHOLDER} the UTC offset of the region's users (the daily peak's hour)")
            )
            out.append({"name": r, "utc_offset_hours": note})
        return out

    def _gpu_request(self, spec: dict[str, Any]) -> float:
        """GPUs one pod of `spec` requests: whole, MIG slices as their share, or thousandths."""
        total = 0.0
        for c in spec.get("containers") or []:
            for k, v in ((c.get("resources") or {}).get("requests") or {}).items():
                if k == GPU:
                    total += _qty(v)
                elif k == GPU_MILLI:
                    total += _qty(v) / 1000
                elif m := MIG.match(k):
                    total += _qty(v) / self.mig_per_gpu.get(m[1], 1)
        return total

    def _pool_for(self, selector: dict[str, str]) -> str | None:
        for p in self.pools:
            want = p.match or ({self.pool_label: p.name} if self.pool_label else {})
            if want and all(selector.get(k) == v for k, v in want.items()):
                return p.name
        return None

    def team_docs(self) -> list[dict[str, Any]]:
        quota: dict[str, float] = defaultdict(float)
        for q in self.objs.quotas:
            hard = (q.get("spec") or {}).get("hard") or (q.get("status") or {}).get("hard") or {}
            if f"requests.{GPU}" in hard:
                quota[q["metadata"]["namespace"]] += _qty(hard[f"requests.{GPU}"])
        workloads = {
            o["metadata"]["namespace"]
            for o in [*self.objs.deployments, *self.objs.jobs]
            if self._gpu_request(o["spec"]["template"]["spec"]) or _labels(o).get("gpuops.io/service")
        }
        namespaces = sorted(set(quota) | workloads)
        teams: dict[str, dict[str, Any]] = {}
        for ns in namespaces:
            labels, label, name = self.ns_labels.get(ns, {}), self._team_label(ns), self.team_of(ns)
            team = teams.setdefault(
                name,
                {
                    "name": name if label else Note(name, f"{GUESSED} from the namespace's name"),
                    "namespaces": [],
                    "cost_centre": labels.get("gpuops.io/cost-centre")
                    or Note(f"cc-{name}", f"{PLACEHOLDER} the team's cost centre"),
                    "monthly_budget": Note(10000, f"{PLACEHOLDER} the team's monthly GPU budget"),
                },
            )
            team["namespaces"].append(ns)
            if ns in quota:
                team.setdefault("quota_gpus", {})[ns] = quota[ns]
        return list(teams.values())

    def _region_of(self, obj: dict[str, Any]) -> str:
        sel = ((obj["spec"]["template"].get("spec") or {}).get("nodeSelector")) or {}
        labels = _labels(obj)
        if r := _region(sel) or labels.get("gpuops.io/region"):
            return r
        name = obj["metadata"]["name"]
        return next((r for r in self.regions if name.endswith(f"-{r}")), self.regions[0] if self.regions else "")

    def service_docs(self) -> list[dict[str, Any]]:
        groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        cpu: dict[tuple[str, str], str] = {}
        for d in self.objs.deployments:
            labels, ns = _labels(d), d["metadata"]["namespace"]
            region = self._region_of(d)
            base = d["metadata"]["name"].removesuffix(f"-{region}")
            svc = labels.get("gpuops.io/service") or labels.get("app.kubernetes.io/name") or base
            if labels.get("gpuops.io/fallback") == "cpu":
                cpu[(ns, svc)] = base
            elif self._gpu_request(d["spec"]["template"]["spec"]):
                groups[(ns, svc)].append(d)
        hpa_max = {
            (h["metadata"]["namespace"], (h["spec"].get("scaleTargetRef") or {}).get("name")): h["spec"].get(
                "maxReplicas", 0
            )
            for h in self.objs.hpas
        }
        out = []
        for (ns, svc), deps in sorted(groups.items()):
            first = deps[0]
            region = self._region_of(first)
            base = first["metadata"]["name"].removesuffix(f"-{region}")
            spec = first["spec"]["template"]["spec"]
            gpus = round(self._gpu_request(spec), 4)
            replicas = {self._region_of(d): int(d["spec"].get("replicas", 0)) for d in deps}
            regions = sorted(replicas)
            kind = _service_kind(svc)
            cost = 0.5  # GPU-seconds per request, a placeholder: the fleet sized at 80 % of its capacity
            doc: dict[str, Any] = {
                "name": _name(svc),
                "kind": Note(kind or "llm", f"{GUESSED} from the name" if kind else f"{PLACEHOLDER} the kind"),
                "team": self.team_of(ns),
                "namespace": ns,
                "deployment": base,
                "pool": self._pool_for(spec.get("nodeSelector") or {}) or (self.pools[0].name if self.pools else ""),
                "regions": regions,
                "replicas": {r: replicas[r] for r in regions},
                "gpus_per_replica": gpus,
                "gpu_seconds_per_request": Note(cost, f"{PLACEHOLDER} GPU-seconds one request costs"),
                "base_rps": Note(
                    {r: round(replicas[r] * max(gpus, 1) * 0.7 / cost * 0.8, 1) for r in regions},
                    f"{PLACEHOLDER} mean requests per second per region",
                ),
                "latency_slo_ms": Note(1000, f"{PLACEHOLDER} the latency objective"),
                "base_latency_ms": Note(200, f"{PLACEHOLDER} the usual latency"),
            }
            if (ns, svc) in cpu:
                doc["fallback"] = {"mode": "cpu", "deployment": cpu[(ns, svc)]}
            else:
                doc["fallback"] = Note({"mode": "none"}, f"{GUESSED} no CPU deployment found; rules or cpu if any")
            top = max((hpa_max.get((ns, d["metadata"]["name"]), 0) for d in deps), default=0)
            if top:
                doc["hpa_max_replicas"] = top
            out.append(doc)
        return out

    def job_docs(self) -> list[dict[str, Any]]:
        out = []
        for j in sorted(self.objs.jobs, key=lambda j: (j["metadata"]["namespace"], j["metadata"]["name"])):
            if "kueue.x-k8s.io/queue-name" in (j["metadata"].get("labels") or {}):
                continue  # queued batch work comes and goes: the queues are the fleet's, not each Job
            spec = j["spec"]["template"]["spec"]
            gpus = self._gpu_request(spec)
            if not gpus:
                continue
            ns = j["metadata"]["namespace"]
            util = ((j["metadata"].get("annotations") or {}).get("gpuops.io/utilisation")) or ""
            out.append(
                {
                    "name": _name(j["metadata"]["name"]),
                    "team": self.team_of(ns),
                    "namespace": ns,
                    "pool": self._pool_for(spec.get("nodeSelector") or {}) or self.pools[0].name,
                    "region": self._region_of(j),
                    "pods": int(j["spec"].get("parallelism", 1) or 1),
                    "gpus_per_pod": round(gpus, 4),
                    "utilisation": float(util)
                    if util
                    else Note(50.0, f"{PLACEHOLDER} the job's usual GPU utilisation, %"),
                }
            )
        return out

    def prices_doc(self) -> dict[str, Any]:
        hourly = {}
        for model in sorted(self.models):
            known = _known(model)
            hourly[model] = Note(known[3] if known else 1.0, f"{PLACEHOLDER} your price per GPU-hour")
        return {
            "currency": Note("USD", f"{PLACEHOLDER} the currency of the prices"),
            "gpu_hourly": hourly,
            "cpu_core_hourly": Note(0.04, f"{PLACEHOLDER} your price per CPU core-hour"),
            "sla_tiers": [{"name": "standard", "multiplier": 1.0}],
            "billing_modes": [{"name": "hourly"}],
        }

    def document(self) -> dict[str, Any]:
        return {
            "clusters": [{"name": _name(self.context), "context": self.context, "regions": self.regions}],
            "regions": self.region_docs(),
            "gpu_models": self.gpu_model_docs(),
            "pools": [self.pool_doc(p) for p in self.pools],
            "teams": self.team_docs(),
            "services": self.service_docs(),
            "jobs": self.job_docs(),
            "prices": self.prices_doc(),
            "events": [],
            "node_labels": {
                "pool": self.pool_label or "gpuops.io/pool",
                "region": next(
                    (k for n in self.objs.nodes for k in REGION_LABELS if k in _labels(n)), REGION_LABELS[0]
                ),
                "model": PRODUCT,
            },
        }


def draft(context: str, objs: Objects) -> str:
    """The catalog as YAML text, each guessed value and placeholder with its comment."""
    d = Draft(context, objs)
    head = [
        f"# A catalog drafted by `gpuops catalog discover` from the context {context!r}:",
        f"# {len(objs.nodes)} nodes, {len(d.pools)} pools"
        + (f" by {d.pool_label}" if d.pool_label else " by GPU product (no node group label found)")
        + f", {len(d.regions)} regions.",
        "# Values marked `guessed` were inferred; `placeholder` ones a cluster cannot know: replace them",
        "# (`gpuops catalog check` lists each by line). Add the traffic events to get ready for under events:.",
        "",
    ]
    return "\n".join(head + _emit(d.document(), 0)) + "\n"


# --- a small YAML writer that keeps comments --------------------------------------------------------------


def _flow(v: Any) -> str:
    text = yaml.safe_dump(v, default_flow_style=True, width=10**6, sort_keys=False).strip()
    return text.removesuffix("\n...").removesuffix("...").strip()


def _simple(v: Any) -> bool:
    if isinstance(v, dict):  # a flow mapping, unless a value has its own comment
        return all(not isinstance(x, (dict, list, Note)) for x in v.values())
    if isinstance(v, list):
        return all(not isinstance(x, (dict, list)) for x in v)
    return True


def _emit(obj: Any, indent: int) -> list[str]:
    pad, out = " " * indent, []
    if isinstance(obj, dict):
        for k, raw in obj.items():
            v, note = (raw.value, f"  {raw.comment}") if isinstance(raw, Note) else (raw, "")
            if _simple(v) or v in ([], {}):
                out.append(f"{pad}{k}: {_flow(v)}{note}")
            else:
                out.append(f"{pad}{k}:{note}")
                out.extend(_emit(v, indent + 2))
    elif isinstance(obj, list):
        for item in obj:
            lines = _emit(item, indent + 2) if isinstance(item, dict) else [f"{pad}  {_flow(item)}"]
            out.append(f"{pad}- {lines[0].lstrip()}")
            out.extend(lines[1:])
    return out
