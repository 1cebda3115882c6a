"""The Alibaba GPU-sharing cluster trace (openb, 2023) as a twin fleet: its nodes, and its pods replayed.

Nodes are grouped into pools by GPU model (`openb-<model>`, CPU-only nodes in `openb-cpu`), all in one
region. A pod runs from its `scheduled_time` to its `deletion_time` (seconds from the trace start; a pod never
scheduled never runs); a pod
with `gpu_milli` < 1000 asks for a share of one GPU (`alibabacloud.com/gpu-milli`), the others for whole GPUs.
"""

from __future__ import annotations

import csv
import heapq
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import cast

from console.catalog.model import GPU_MILLI_RESOURCE, GPU_RESOURCE, Catalog
from console.twin.sim import NAMESPACES, Twin

NODE_FILE = "openb_node_list_all_node.csv"
POD_FILE = "openb_pod_list_default.csv"
REGION = "openb"
NAMESPACE = "openb"
# The trace does not publish GPU memory or prices; these are stated assumptions, per model.
MODEL_MEMORY_MIB = {
    "A10": 23028,
    "G2": 16384,
    "G3": 24576,
    "P100": 16384,
    "T4": 15360,
    "V100M16": 16384,
    "V100M32": 32768,
}
MODEL_PRICE = {"A10": 0.95, "G2": 0.6, "G3": 0.8, "P100": 0.9, "T4": 0.45, "V100M16": 1.8, "V100M32": 2.3}


@dataclass(frozen=True)
class TraceNode:
    name: str
    cpu_milli: int
    memory_mib: int
    gpus: int
    model: str


@dataclass(frozen=True)
class TracePod:
    name: str
    cpu_milli: int
    memory_mib: int
    num_gpu: int
    gpu_milli: int
    qos: str
    start: int
    end: int

    def requests(self) -> dict[str, int]:
        r = {"cpu": self.cpu_milli, "memory": self.memory_mib}
        if self.num_gpu and self.gpu_milli < 1000:
            r[GPU_MILLI_RESOURCE] = self.num_gpu * self.gpu_milli
        elif self.num_gpu:
            r[GPU_RESOURCE] = self.num_gpu
        return r

    def gpus(self) -> float:
        """The GPUs this pod holds, counting a shared GPU by its share."""
        return self.num_gpu * self.gpu_milli / 1000


def pool_name(model: str) -> str:
    return f"openb-{model.lower()}" if model else "openb-cpu"


def read_nodes(folder: Path) -> list[TraceNode]:
    with (folder / NODE_FILE).open(newline="") as f:
        return [
            TraceNode(r["sn"], int(r["cpu_milli"]), int(r["memory_mib"]), int(r["gpu"]), r["model"] or "")
            for r in csv.DictReader(f)
        ]


def read_pods(folder: Path) -> list[TracePod]:
    with (folder / POD_FILE).open(newline="") as f:
        out = []
        for r in csv.DictReader(f):
            if not r["scheduled_time"]:
                continue  # never scheduled in the trace: it never held a node
            start = int(r["scheduled_time"])
            out.append(
                TracePod(
                    r["name"],
                    int(r["cpu_milli"]),
                    int(r["memory_mib"]),
                    int(r["num_gpu"]),
                    int(r["gpu_milli"]),
                    r["qos"],
                    start,
                    int(r["deletion_time"] or 2**62),
                )
            )
        return out


def catalog(folder: Path) -> Catalog:
    nodes = read_nodes(folder)
    models = sorted({n.model for n in nodes if n.model})
    counts: dict[str, int] = {}
    for n in nodes:
        counts[pool_name(n.model)] = counts.get(pool_name(n.model), 0) + 1
    gpn: dict[str, int] = {}
    for n in nodes:
        gpn[pool_name(n.model)] = max(gpn.get(pool_name(n.model), 0), n.gpus)
    pools = [
        {
            "name": pool_name(m),
            "kind": "batch" if not m else "inference",
            "gpu_model": m or None,
            "nodes": {REGION: counts[pool_name(m)]},
            "gpus_per_node": gpn[pool_name(m)],
        }
        for m in ["", *models]
    ]
    return Catalog.model_validate(
        {
            "clusters": [{"name": "twin", "context": "twin", "regions": [REGION]}],
            "regions": [{"name": REGION, "title": "Alibaba openb trace cluster"}],
            "gpu_models": [
                {"name": m, "memory_mib": MODEL_MEMORY_MIB.get(m, 16384), "tdp_watts": 250, "idle_watts": 30}
                for m in models
            ],
            "pools": pools,
            "teams": [{"name": "openb", "namespaces": [NAMESPACE], "cost_centre": "openb", "monthly_budget": 1e6}],
            "prices": {
                "currency": "USD",
                "gpu_hourly": {m: MODEL_PRICE.get(m, 1.0) for m in models},
                "cpu_core_hourly": 0.03,
                "sla_tiers": [{"name": "standard", "multiplier": 1}],
                "billing_modes": [{"name": "hourly"}],
            },
        }
    )


class TraceTwin(Twin):
    """A twin whose nodes are the trace's nodes and whose pods follow the trace's timeline.

    Trace time advances with the sim clock from `replay_at` seconds into the trace.
    """

    def __init__(
        self, folder: Path, *, replay_at: float = 0.0, speed: float = 1.0, start: datetime | None = None, **kw: object
    ):
        self.folder = folder
        self.trace_nodes = read_nodes(folder)
        self.trace = sorted(read_pods(folder), key=lambda p: p.start)
        self.replay_at = replay_at
        self._next = 0
        self._ending: list[tuple[int, str]] = []
        super().__init__(catalog(folder), speed=speed, start=start, **kw)  # type: ignore[arg-type]
        self._origin = self.clock.now()

    def _build(self) -> None:
        models = {m.name: m for m in self.catalog.gpu_models}
        pools = {p.name: p for p in self.catalog.pools}
        for tn in self.trace_nodes:
            pool = pools[pool_name(tn.model)]
            # Nodes of one model differ in GPU count; the pool's gpus_per_node is its largest, so build each
            # node with its own count.
            node_pool = pool.model_copy(update={"gpus_per_node": tn.gpus})
            self.add_node(node_pool, REGION, tn.name, models, cpu_milli=tn.cpu_milli, mem_mib=tn.memory_mib)
        self._create(NAMESPACES, None, {"metadata": {"name": NAMESPACE}})

    def trace_time(self) -> float:
        origin = getattr(self, "_origin", None)
        if origin is None:
            return self.replay_at
        return cast("float", self.replay_at + (self.clock.now() - origin).total_seconds())

    def replay(self, now: datetime) -> None:
        t = self.trace_time()
        while self._ending and self._ending[0][0] <= t:
            _, key = heapq.heappop(self._ending)
            self.delete_pod(key)
        while self._next < len(self.trace) and self.trace[self._next].start <= t:
            tp = self.trace[self._next]
            self._next += 1
            if tp.end <= t:
                continue
            util = 75.0 if tp.qos == "BE" else 35.0
            pool_filter = (lambda n: bool(n.gpus)) if tp.num_gpu else (lambda n: not n.gpus)
            self.create_pod(
                NAMESPACE,
                tp.name,
                tp.requests(),
                {"gpuops.io/trace": "openb", "qos": tp.qos},
                ("trace",),
                None,
                None,
                util=util,
                node_filter=pool_filter,
            )
            heapq.heappush(self._ending, (tp.end, f"{NAMESPACE}/{tp.name}"))
