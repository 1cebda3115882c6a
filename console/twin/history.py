"""The fleet's past, written by the twin's own simulation: the twin is built where the history starts and
stepped through it (the same load model, serving, utilisation and `/metrics` lines as live), and each
step's samples are written with their timestamps as OpenMetrics, one file per two-hour window, for
`promtool tsdb create-blocks-from openmetrics` (`console.procs.backfill`). The twin then goes live from the
history's last step: its counters go on from the values written last, its replicas are those that served
the history.

Which series: those the console, readiness and the cost report read from the past (FAMILIES). Every step
writes each of them: Prometheus looks a series up at most five minutes back, so a step longer than that
would leave holes in every instant query and panel.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TextIO

from console.catalog.model import Catalog, Event
from console.twin.metrics import NODE_EXPORTER, Frames
from console.twin.sim import Twin

PLAIN_DAYS = 3  # days of ordinary load before a rehearsal: what readiness measures its uplift against
MAX_STEP_S = 300.0  # Prometheus' default lookback: a longer step leaves holes between samples
BLOCK_S = 7200  # promtool's block length: one input file per block, so it reads each sample once
# What the past is read for. Services: readiness's request history, the SLOs and their panels, and the
# replicas the first refresh sizes against (before the first live scrape). Devices, pods and nodes: the cost
# report's GPU-hours and busy hours, by pod, team, pool and model.
FAMILIES = frozenset(
    {
        "service_requests_total",
        "service_request_duration_seconds_bucket",
        "service_request_duration_seconds_sum",
        "service_request_duration_seconds_count",
        "service_generated_tokens_total",
        "service_mode",
        "service_traffic_weight",
        "DCGM_FI_DEV_GPU_UTIL",
        "kube_pod_container_resource_requests",
        "kube_pod_info",
        "kube_pod_labels",
        "kube_node_info",
        "kube_node_labels",
        "kube_node_status_allocatable",
        "kube_resourcequota",
        "kube_deployment_status_replicas_ready",
        "kube_deployment_status_replicas_available",
        "kube_deployment_spec_replicas",
        "node_gpu_hourly_cost",
        "node_gpu_count",
    }
)
# The rest of what the recording rules and the dashboards' panels read (memory, power, engine activity, the
# namespaces' and deployments' labels, node conditions, node-exporter's disks and network): only over the
# history's last RECENT_S, the panels' default range, which the rules' recorded series are backfilled over
# (`console.procs.recorded`). Over the whole span they would double the history's samples.
RECENT_S = 6 * 3600.0
NODE_EXPORTER_FAMILIES = tuple(name for name, _, _ in NODE_EXPORTER)
RECENT_STEP_S = 30.0  # and a finer step there: a rule's 1-minute rate needs two samples in any minute
_RECENT_PER_DEVICE = frozenset(
    {"DCGM_FI_DEV_FB_FREE", "DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_POWER_USAGE", "DCGM_FI_PROF_GR_ENGINE_ACTIVE",
     "DCGM_FI_DEV_GPU_TEMP", "DCGM_FI_DEV_XID_ERRORS", "kube_node_status_capacity", "kube_node_status_condition",
     "kube_node_spec_unschedulable", *NODE_EXPORTER_FAMILIES}
)  # fmt: skip
RECENT_FAMILIES = _RECENT_PER_DEVICE | {"kube_namespace_labels", "kube_deployment_labels"}
# Of these, only the GPU (and MIG) resources: CPU and memory requests are not what the cost report prices.
GPU_ONLY = frozenset({"kube_pod_container_resource_requests", "kube_node_status_allocatable"})
# Per-GPU, per-pod and per-node series grow with the fleet; past this many GPUs the history keeps the services
# only (readiness's history and the SLOs; the cost report then reads the live hours alone).
MAX_DEVICE_GPUS = 2000
PER_DEVICE = _RECENT_PER_DEVICE | frozenset(
    {"DCGM_FI_DEV_GPU_UTIL", "kube_pod_container_resource_requests", "kube_pod_info", "kube_pod_labels",
     "kube_node_info", "kube_node_labels", "kube_node_status_allocatable", "node_gpu_hourly_cost", "node_gpu_count"}
)  # fmt: skip


@dataclass(frozen=True)
class Written:
    """What the history holds: its files, its span on the fleet's clock and in Prometheus' (wall) time."""

    files: tuple[Path, ...]
    series: int  # the most any one step wrote (batch Jobs come and go: more series than that in all)
    samples: int
    start: datetime
    end: datetime
    wall_end: float  # Unix time of the last step's samples: where the live twin's clock reads `end`
    past_events: tuple[Event, ...]
    families: frozenset[str]
    seconds: float


def rehearsal(catalog: Catalog, start: datetime, end: datetime) -> list[Event]:
    """A past event like the catalog's next one (or its last, when none is ahead): the same services,
    multiplier and length, a whole number of weeks (or, in a history under two weeks, days) before it,
    ending at least a day before the history does and with PLAIN_DAYS of plain days before it: so that the
    fleet's own past shows an event's uplift, and what it lifted (readiness measures it so)."""
    plain = timedelta(days=PLAIN_DAYS)
    if not catalog.events or any(start + plain <= e.start and e.end <= end for e in catalog.events):
        return []  # none to rehearse, or the catalog's own past event lies in the history already
    ahead = [e for e in catalog.events if e.end > end]
    ev = min(ahead, key=lambda e: e.start) if ahead else max(catalog.events, key=lambda e: e.end)
    length = ev.end - ev.start
    latest = end - timedelta(days=1) - length
    for unit in (timedelta(weeks=1), timedelta(days=1)):
        k = math.ceil((ev.start - latest) / unit)
        at = ev.start - k * unit
        if at >= start + plain:
            name = f"{ev.name[:44].rstrip('-')}-rehearsal-{at:%Y%m%d}"
            return [ev.model_copy(update={"name": name, "title": f"{ev.title} (rehearsal)", "start": at,
                                          "end": at + length})]  # fmt: skip
    return []


def families_for(twin: Twin, recent: bool = False) -> frozenset[str]:
    """What a step writes: FAMILIES, with RECENT_FAMILIES in the history's last RECENT_S (`recent`)."""
    gpus = sum(len(n.gpus) for n in twin.nodes.values())
    families = FAMILIES | RECENT_FAMILIES if recent else FAMILIES
    return families if gpus <= MAX_DEVICE_GPUS else families - PER_DEVICE


def target_labels(job: str, instance: str) -> tuple[tuple[str, str], ...]:
    """The labels Prometheus adds to what it scrapes from the twin: the history's series must be the very
    series the live scrapes go on with, or every counter would restart at the seam as a new series."""
    return (("job", job), ("instance", instance))


def _with_target(name: str, labels: str, target: tuple[tuple[str, str], ...]) -> str:
    """`name{labels}` with the target's labels added, as the scrape adds them: a label the line already has
    is kept as it is (`honor_labels`)."""
    add = ",".join(f'{k}="{v}"' for k, v in target if f'{{{k}="' not in labels and f',{k}="' not in labels)
    if not add:
        return name + labels
    return f"{name}{{{add}{'' if labels[1] == '}' else ','}{labels[1:]}" if labels else f"{name}{{{add}}}"


def _keep(text: str, families: frozenset[str], target: tuple[tuple[str, str], ...]) -> list[str]:
    out = []
    for line in text.split("\n"):
        if not line or line[0] == "#":
            continue
        brace, space = line.find("{"), line.find(" ")
        named = 0 <= brace < space
        name = line[: brace if named else space]
        if name in families and (name not in GPU_ONLY or 'resource="nvidia_com_' in line):
            end = line.rindex("}") + 1 if named else space
            out.append(_with_target(name, line[len(name) : end], target) + line[end:])
    return out


class _Windows:
    """One OpenMetrics file per two-hour block of wall time, each ended with `# EOF`."""

    def __init__(self, folder: Path, on_file: Callable[[Path], None]):
        self.folder = folder
        self.on_file = on_file
        self.files: list[Path] = []
        self._block = -1
        self._out: TextIO | None = None

    def write(self, wall: float, lines: list[str]) -> None:
        block = int(wall * 1000) // (BLOCK_S * 1000)
        if block != self._block:
            self.close()
            path = self.folder / f"{block:09d}.om"
            self.files.append(path)
            self._out = path.open("w", encoding="utf-8")
            self._block = block
        ts = f" {wall:.3f}\n"
        assert self._out is not None
        self._out.write(ts.join(lines) + ts)

    def close(self) -> None:
        if self._out:
            self._out.write("# EOF\n")
            self._out.close()
            self._out = None
            self.on_file(self.files[-1])


def step_times(start: datetime, end: datetime, step_s: float, fine_s: float, continued: bool) -> list[datetime]:
    """The fleet times a history writes: `step_s` apart, then `fine_s` apart over its last RECENT_S, `end` last.
    Afresh, `start` moves (by under a step) so that both parts are whole steps, and is the first; `continued`,
    the times after `start` (the kept history's end), each part evenly over its span."""
    fine_from = max(start, end - timedelta(seconds=RECENT_S))
    coarse_s, fine_span = (fine_from - start).total_seconds(), (end - fine_from).total_seconds()
    if continued:
        n, m = math.ceil(coarse_s / step_s - 1e-9), max(1, math.ceil(fine_span / fine_s - 1e-9))
        coarse = [start + (fine_from - start) * (k / n) for k in range(1, n + 1)]
        return coarse + [fine_from + (end - fine_from) * (k / m) for k in range(1, m + 1)]
    m = round(fine_span / fine_s)
    fine_from = end - timedelta(seconds=m * fine_s)
    n = round((fine_from - start).total_seconds() / step_s)
    first = fine_from - timedelta(seconds=n * step_s)
    return [first + timedelta(seconds=k * step_s) for k in range(n)] + [
        fine_from + timedelta(seconds=k * fine_s) for k in range(m + 1)
    ]


def write_history(
    twin: Twin,
    end: datetime,
    step_s: float,
    folder: Path,
    wall_end: float,
    target: tuple[tuple[str, str], ...],
    progress: Callable[[int, int], None] = lambda done, total: None,
    on_file: Callable[[Path], None] = lambda path: None,
    continued: bool = False,
) -> Written:
    """Step `twin` (built at the history's start, its clock there) to `end`, `step_s` of the fleet's time at a
    time (RECENT_STEP_S over the last RECENT_S: `step_times`), writing each step's samples under `folder`; a
    sample of fleet time t is stamped with the wall time at which the live twin's clock would have read t.
    `continued`: the twin already wrote its clock's time (a kept history, `console.twin.history_cache`): only
    the steps after it are written, evenly over the gap."""
    if not 0 < step_s <= MAX_STEP_S:
        raise ValueError(f"history step {step_s:g}s: must be over 0 and at most {MAX_STEP_S:g}s")
    speed = twin.clock.speed
    if speed <= 0:
        raise ValueError("a history needs a running clock (speed > 0)")
    t0 = time.perf_counter()
    start = twin.clock.now()
    folder.mkdir(parents=True, exist_ok=True)
    families, recent = families_for(twin), families_for(twin, recent=True)
    times = step_times(start, end, step_s, min(step_s, RECENT_STEP_S), continued)
    if not continued:
        twin.past_events = rehearsal(twin.catalog, start, end)
        start = times[0]
        for pod in twin.pods.values():  # a warm fleet: what runs at the history's start has run a while
            pod.created = min(pod.created, start - twin.warmup)
    windows = _Windows(folder, on_file)
    frames = Frames(twin)
    samples, series = 0, 0
    kept: list[tuple[str, frozenset[str], list[str]]] = []  # each object part, its families, its lines kept
    objects: list[str] = []
    try:
        with twin.lock:
            for k, at in enumerate(times):
                dt = (at - (times[k - 1] if k else start)).total_seconds()
                twin.clock.hold(at)
                twin.tick(dt=dt / speed)
                now = recent if (end - at).total_seconds() <= RECENT_S else families
                parts = frames.object_parts()
                if len(kept) != len(parts) or any(
                    k[0] is not text or k[1] is not now for k, text in zip(kept, parts, strict=True)
                ):
                    kept = [k if k[0] is text and k[1] is now else (text, now, _keep(text, now, target))
                            for k, text in zip(kept or [("", now, [])] * len(parts), parts, strict=True)]  # fmt: skip
                    objects = [line for _, _, lines in kept for line in lines]
                lines = _keep(frames.dynamic(now), now, target) + objects
                windows.write(wall_end - (end - at).total_seconds() / speed, lines)
                samples += len(lines)
                series = max(series, len(lines))
                if k % 64 == 0 or k == len(times) - 1:
                    progress(k + 1, len(times))
    finally:
        windows.close()
    return Written(tuple(windows.files), series, samples, start, end, wall_end, tuple(twin.past_events), recent,
                   time.perf_counter() - t0)  # fmt: skip
