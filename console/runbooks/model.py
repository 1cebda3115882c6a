"""What a runbook file holds: typed parameters, preconditions, steps with their rollbacks, verification.

Every action is an API call the engine knows (Kubernetes, Alertmanager) or a PromQL check by name; none
runs a shell. `{name}` in a step's arguments is a parameter, resolved and checked before anything runs.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from console.fleet.queries import RUNBOOK_QUERIES, runbook_query_args

DURATION = r"^(\d+(s|m|h)|\{\w+\})$"  # 90s, 5m, 2h, or a duration parameter: {settle}
Duration = Annotated[str, Field(pattern=DURATION)]
REF = re.compile(r"\{(\w+)\}")


def seconds(d: str) -> float:
    """`90s`, `5m`, `2h` in seconds (a resolved value, not a `{parameter}`)."""
    return float(d[:-1]) * {"s": 1, "m": 60, "h": 3600}[d[-1]]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ParamType(StrEnum):
    SERVICE = "service"  # a catalog service
    REGION = "region"  # a catalog region
    NODE = "node"  # a node name
    NAMESPACE = "namespace"  # a catalog namespace
    EVENT = "event"  # a catalog event
    CLUSTER_QUEUE = "cluster_queue"  # a catalog Kueue ClusterQueue (left out: every one marked hold_for_events)
    INTEGER = "integer"
    NUMBER = "number"
    DURATION = "duration"  # 30s, 15m, 2h


class Parameter(Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    type: ParamType
    description: str = ""
    default: str | int | float | None = None
    min: float | None = None
    max: float | None = None
    # Absent means every one: a region, every region the service runs in; a service, every service of the
    # `event` parameter (which must then be given); replicas, sized for the event's peak with its buffer.
    optional: bool = False

    @model_validator(mode="after")
    def _bounds_in_order(self) -> Parameter:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min, max: min {self.min:g} is above max {self.max:g}: no value could pass")
        return self


class Expect(Strict):
    """A range the value must be in; bounds may name a parameter (`{replicas}`)."""

    min: float | str | None = None
    max: float | str | None = None

    @model_validator(mode="after")
    def _one_bound(self) -> Expect:
        if self.min is None and self.max is None:
            raise ValueError("give min, max or both")
        return self


class Check(Strict):
    """A named PromQL query (console/fleet/queries.py RUNBOOK_QUERIES) and the range its value must be in."""

    name: str
    query: str
    args: dict[str, str] = Field(default_factory=dict)
    expect: Expect
    within: Duration | None = None  # verification: how long it may take to hold

    @model_validator(mode="after")
    def _known_query(self) -> Check:
        if self.query not in RUNBOOK_QUERIES:
            raise ValueError(f"unknown query {self.query!r}; known: {', '.join(sorted(RUNBOOK_QUERIES))}")
        missing = runbook_query_args(self.query) - set(self.args)
        if missing:
            raise ValueError(f"query {self.query!r} needs args: {', '.join(sorted(missing))}")
        return self


# --- actions: each a small model of its arguments ---------------------------------------------------------
class Scale(Strict):
    """A service's deployment in a region to `replicas`, through an owning HPA's floor (and ceiling, if
    `replicas` is above it) when one exists. `deployment: cpu` scales the service's CPU fallback instead."""

    action: Literal["scale"]
    service: str
    region: str | None = None  # left out (or an optional parameter left out): every region it runs in
    replicas: int | str
    deployment: Literal["gpu", "cpu"] = "gpu"
    only_up: bool = False  # pre-scaling: a deployment already at or above the target is left as it is


class SetConfig(Strict):
    """One key of a service's routing config map (`mode`, `weight.<region>`)."""

    action: Literal["set_config"]
    service: str
    key: str
    value: str


class ShiftTraffic(Strict):
    """Move a share (0-1) of `source`'s traffic weight to `target`."""

    action: Literal["shift_traffic"]
    service: str
    source: str
    target: str
    share: float | str = 1.0


class ReclaimIdle(Strict):
    """Scale down the lowest-priority batch workloads holding GPUs idle for `idle_for`, in namespaces of
    teams not marked critical, until `gpus` GPUs are free."""

    action: Literal["reclaim_idle"]
    idle_for: str
    gpus: int | str


class StopQueues(Strict):
    """Set Kueue's `spec.stopPolicy` on ClusterQueues: `Hold` stops admission and lets running work finish,
    `HoldAndDrain` also evicts what runs (it waits in its queue). The rollback puts the policy back as it was."""

    action: Literal["stop_queues"]
    queue: str  # a cluster queue, or `{queue}`: a cluster_queue parameter (left out: every hold_for_events one)
    policy: Literal["Hold", "HoldAndDrain"]


class Cordon(Strict):
    """Mark a node unschedulable, so no new pod lands on its GPUs."""

    action: Literal["cordon"]
    node: str


class Evict(Strict):
    """Delete every pod on a node (cordon it first), so their Deployments and Jobs place them on other
    nodes. An evicted pod is not put back by a rollback: its controller has already replaced it."""

    action: Literal["evict"]
    node: str


class WaitFor(Strict):
    action: Literal["wait_for"]
    check: Check


class CheckNow(Strict):
    action: Literal["check"]
    check: Check


class Silence(Strict):
    """An Alertmanager silence while the change settles: matchers, a duration, a comment."""

    action: Literal["silence"]
    matchers: dict[str, str]
    duration: Duration
    comment: str


class ExpireSilences(Strict):
    """End the silences that earlier gpuops runs made with exactly these matchers: the way back from a step
    that silenced alerts on purpose (degrade's ServiceDegraded). A person's silence is left alone; the
    rollback puts each one back until its old end."""

    action: Literal["expire_silences"]
    matchers: dict[str, str] = Field(min_length=1)


class Approve(Strict):
    """Pause for an operator's yes in the console (the CLI asks on the terminal)."""

    action: Literal["approve"]
    prompt: str


Action = Annotated[
    Scale
    | SetConfig
    | ShiftTraffic
    | ReclaimIdle
    | StopQueues
    | Cordon
    | Evict
    | WaitFor
    | CheckNow
    | Silence
    | ExpireSilences
    | Approve,
    Field(discriminator="action"),
]
MUTATING = {
    "scale",
    "set_config",
    "shift_traffic",
    "reclaim_idle",
    "stop_queues",
    "cordon",
    "evict",
    "silence",
    "expire_silences",
}


class Retry(Strict):
    count: int = Field(0, ge=0, le=10)
    delay: Duration = "2s"


class OnFailure(StrEnum):
    ROLLBACK = "rollback"  # undo every step done so far, in reverse order, and stop
    CONTINUE = "continue"


class Rollback(StrEnum):
    RESTORE = "restore"  # put back the value recorded before the step (the journal holds it)
    NONE = "none"  # nothing to undo (a check, a wait, an approval)


class Step(Strict):
    name: str
    do: Action
    timeout: Duration = "60s"
    retry: Retry = Retry()
    on_failure: OnFailure = OnFailure.ROLLBACK
    rollback: Rollback | None = None  # default: restore for a step that changes something, else none

    @model_validator(mode="after")
    def _rollback(self) -> Step:
        mutating = self.do.action in MUTATING
        if self.rollback is None:
            object.__setattr__(self, "rollback", Rollback.RESTORE if mutating else Rollback.NONE)
        elif mutating and self.rollback is Rollback.NONE:
            raise ValueError(f"a {self.do.action} step changes the fleet: it needs rollback: restore")
        return self


class Runbook(Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    title: str
    description: str = ""
    owners: list[str] = Field(min_length=1)
    parameters: list[Parameter] = Field(default_factory=list)
    preconditions: list[Check] = Field(default_factory=list)
    steps: list[Step] = Field(min_length=1)
    verification: list[Check] = Field(default_factory=list)
    restore_with: str | None = None  # the runbook that undoes this one's effect later (restore-normal)

    @field_validator("verification")
    @classmethod
    def _within(cls, v: list[Check]) -> list[Check]:
        for c in v:
            if c.within is None:
                raise ValueError(f"verification {c.name!r} needs `within`: how long it may take to hold")
        return v

    def references(self) -> list[tuple[tuple[str | int, ...], str]]:
        """Every `{name}` in the file, with its path: each must be a parameter."""
        out: list[tuple[tuple[str | int, ...], str]] = []

        def walk(path: tuple[str | int, ...], v: Any) -> None:
            if isinstance(v, str):
                out.extend((path, m) for m in REF.findall(v))
            elif isinstance(v, dict):
                for k, x in v.items():
                    walk((*path, k), x)
            elif isinstance(v, list):
                for i, x in enumerate(v):
                    walk((*path, i), x)

        data = self.model_dump(mode="json", exclude={"name", "title", "description", "owners", "parameters"})
        walk((), data)
        return out
