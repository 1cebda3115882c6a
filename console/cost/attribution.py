"""GPU-hours per pod over a period, from GPU requests sampled over time, in the fleet's time.

OpenCost's allocation model: a pod is charged for the GPUs it requests (a MIG instance or a shared GPU by its
share) for as long as it holds them; what the pools could give and nobody requested is `__idle__`. Busy
GPU-hours (the requests weighted by the GPUs' utilisation) give the efficiency beside it.

Prometheus samples a gauge on a grid of wall times; each reading holds until the next grid point (a left
Riemann sum). On a twin the grid's wall times map to its simulated clock, which may run fast, pause or jump;
a reading is weighted by the fleet time its interval covers inside the period. Pure: ranges in, rows out.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial

IDLE = "__idle__"


@dataclass(frozen=True)
class Grid:
    """The wall times of a range query (`start`, `start + step`, …) and the fleet seconds each one's reading
    stands for inside the period."""

    start: float
    step: float
    weights: tuple[float, ...]
    fleet_times: tuple[float, ...]  # fleet time (Unix seconds) at each grid point

    def index(self, wall: float) -> int:
        """The grid point of a sample's time; -1 for one off the grid."""
        k = round((wall - self.start) / self.step)
        return k if 0 <= k < len(self.weights) else -1

    @property
    def seconds(self) -> float:
        return sum(self.weights)


def grid(
    sim_at: Callable[[float], float],
    wall_start: float,
    wall_end: float,
    step: float,
    start: float,
    end: float,
    elapsed: Callable[[float, float], float] | None = None,
) -> Grid:
    """The grid of a range query from `wall_start` to `wall_end`, for the period [start, end) in fleet time.
    `elapsed(w0, w1)` gives the fleet seconds that ran between two wall times: where the clock jumped
    between two points, the reading stands for the time that ran, not for the jump."""
    n = int((wall_end - wall_start) // step) + 1
    walls = [wall_start + k * step for k in range(n + 1)]
    fleet = [sim_at(w) for w in walls]
    ran = [elapsed(walls[k], walls[k + 1]) if elapsed else fleet[k + 1] - fleet[k] for k in range(n)]
    weights = tuple(max(0.0, min(fleet[k] + ran[k], end) - max(fleet[k], start)) for k in range(n))
    return Grid(wall_start, step, weights, tuple(fleet[:n]))


def integrate(by_k: dict[int, float], g: Grid, keep: Callable[[int], bool] = lambda k: True) -> float:
    """value x fleet seconds over the period, of readings by grid index (those `keep` keeps)."""
    return sum(v * g.weights[k] for k, v in by_k.items() if keep(k))


@dataclass(frozen=True)
class Allocation:
    """One pod's GPUs over the period (or one pool's idle GPUs: namespace and pod `__idle__`), priced."""

    namespace: str
    pod: str
    team: str
    service: str
    region: str
    pool: str
    model: str
    gpu_hours: float
    busy_gpu_hours: float | None = None  # None: no utilisation reading for its GPUs
    job: str = ""
    peak_gpus: float = 0.0
    gpus_now: float = 0.0  # held at the period's end (what the run rate counts)
    list_cost: float = 0.0
    effective_cost: float = 0.0
    billed_cost: float = 0.0

    @property
    def idle(self) -> bool:
        return self.pod == IDLE

    @property
    def efficiency(self) -> float | None:
        if self.busy_gpu_hours is None or not self.gpu_hours:
            return None
        return self.busy_gpu_hours / self.gpu_hours


@dataclass
class PodSeries:
    """What the range queries said about one pod."""

    namespace: str
    pod: str
    pool: str
    region: str
    model: str
    gpus: dict[int, float] = field(default_factory=dict)  # grid index -> GPUs held
    busy_pct: dict[int, float] = field(default_factory=dict)


def _at_end(by_k: dict[int, float], g: Grid) -> float:
    """The reading at the last grid point inside the period (the one before it: a scrape may lag a step)."""
    last = max((k for k, w in enumerate(g.weights) if w > 0), default=-1)
    return by_k.get(last, by_k.get(last - 1, 0.0))


def allocate(
    pods: Sequence[PodSeries],
    allocatable: dict[tuple[str, str, str], dict[int, float]],
    g: Grid,
    *,
    team_of: Callable[[str], str],
    service_of: dict[tuple[str, str], tuple[str, str]],
    job_of: dict[tuple[str, str], str],
) -> list[Allocation]:
    """One row per pod that held GPUs in the period, then one `__idle__` row per (pool, region, model) with
    its allocatable GPU-hours that no pod requested (never below zero)."""
    rows = []
    held: dict[tuple[str, str, str], dict[int, float]] = defaultdict(lambda: defaultdict(float))
    for p in pods:
        seconds = integrate(p.gpus, g)
        if seconds <= 0:
            continue
        busy_s = sum(v * g.weights[k] * p.busy_pct[k] / 100 for k, v in p.gpus.items() if k in p.busy_pct)
        read = any(k in p.busy_pct for k, v in p.gpus.items() if v and g.weights[k])
        for k, v in p.gpus.items():
            held[(p.pool, p.region, p.model)][k] += v
        service, region = service_of.get((p.namespace, p.pod), ("", p.region))
        rows.append(
            Allocation(
                p.namespace,
                p.pod,
                team_of(p.namespace),
                service,
                region or p.region,
                p.pool,
                p.model,
                seconds / 3600,
                busy_s / 3600 if read else None,
                job_of.get((p.namespace, p.pod), ""),
                max((v for k, v in p.gpus.items() if g.weights[k]), default=0.0),
                _at_end(p.gpus, g),
            )
        )
    for (pool, region, model), by_k in sorted(allocatable.items()):
        taken = held.get((pool, region, model), {})
        seconds = integrate({k: max(0.0, v - taken.get(k, 0.0)) for k, v in by_k.items()}, g)
        if seconds > 0:
            now = max(0.0, _at_end(by_k, g) - _at_end(taken, g))
            rows.append(Allocation(IDLE, IDLE, IDLE, "", region, pool, model, seconds / 3600, 0.0, gpus_now=now))
    return rows


def namespace_peaks(pods: Sequence[PodSeries], g: Grid) -> dict[str, float]:
    """The most GPUs each namespace held at once in the period."""
    by_ns: dict[str, dict[int, float]] = defaultdict(lambda: defaultdict(float))
    for p in pods:
        for k, v in p.gpus.items():
            if g.weights[k]:
                by_ns[p.namespace][k] += v
    return {ns: max(by_k.values(), default=0.0) for ns, by_k in by_ns.items()}


def _at_peak(is_peak: Callable[[str, float], bool], region: str, g: Grid, k: int) -> bool:
    return is_peak(region, g.fleet_times[k])


def peak_hour_gpu_hours(
    pods: Sequence[PodSeries], g: Grid, is_peak: Callable[[str, float], bool]
) -> dict[tuple[str, str], float]:
    """(namespace, pod) -> its GPU-hours at its region's peak hours (`is_peak(region, fleet time)`)."""
    out = {}
    for p in pods:
        s = integrate(p.gpus, g, partial(_at_peak, is_peak, p.region, g))
        if s:
            out[(p.namespace, p.pod)] = s / 3600
    return out
