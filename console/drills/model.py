"""What a drill scenario file (`runbooks/drills/*.yaml`) holds, after chaostoolkit's experiment model: a
steady-state hypothesis, the faults, the runbooks that answer them, abort conditions, rollbacks that always
run, and the times to detect and to mitigate it must meet.

Durations are simulated time: on a twin running N times faster, a drill's `10m` passes in 10m / N.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field, model_validator

from console.runbooks.model import Check, Duration, Strict
from console.twin.faults import KINDS as TWIN_FAULTS

# Faults made through the Kubernetes API: the only ones a drill may inject into a real cluster, and only a
# cluster its scenario names in `safe_on`. Each lists the target fields it needs.
KUBE_FAULTS: dict[str, tuple[str, ...]] = {"pod_kill": ("service", "region")}


class Fault(Strict):
    kind: str
    target: dict[str, str]
    after: Duration = "0s"  # after the drill's first fault
    duration: Duration = "30m"
    multiplier: float | None = Field(None, gt=0)  # traffic_spike
    xid: int | None = Field(None, ge=1)  # xid_storm

    @model_validator(mode="after")
    def _known(self) -> Fault:
        kinds: dict[str, tuple[str, ...]] = {**{str(k): v for k, v in TWIN_FAULTS.items()}, **KUBE_FAULTS}
        if self.kind not in kinds:
            raise ValueError(f"kind: must be one of {', '.join(sorted(kinds))}, got {self.kind!r}")
        missing = [f for f in kinds[self.kind] if f not in self.target]
        if missing:
            raise ValueError(f"target: {self.kind} needs {', '.join(missing)}")
        return self

    @property
    def through_kubernetes(self) -> bool:
        return self.kind in KUBE_FAULTS


class AlertMatch(Strict):
    """An alert by name, and label values it must carry."""

    alert: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    labels: dict[str, str] = Field(default_factory=dict)

    def matches(self, name: str, labels: dict[str, str]) -> bool:
        return name == self.alert and all(labels.get(k) == v for k, v in self.labels.items())

    def __str__(self) -> str:
        sel = ",".join(f"{k}={v}" for k, v in sorted(self.labels.items()))
        return f"{self.alert}{{{sel}}}" if sel else self.alert


class Response(Strict):
    """A runbook the drill runs: when an alert fires, or, without `when`, when the operator starts it."""

    runbook: str
    params: dict[str, str | int | float] = Field(default_factory=dict)
    when: AlertMatch | None = None


class Abort(Check):
    """Stop the drill (and roll back) once this check's value has been in its range for `for`."""

    for_: Duration = Field("0s", alias="for")


class Rollback(Strict):
    runbook: str
    params: dict[str, str | int | float] = Field(default_factory=dict)


class Targets(Strict):
    detect: Duration  # first fault -> the detecting alert fires
    mitigate: Duration  # first fault -> the steady state holds again


class Scenario(Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    title: str
    description: str = ""
    owners: list[str] = Field(default_factory=list)
    # Kubeconfig contexts of real clusters where its faults may be injected (Kubernetes faults only).
    safe_on: list[str] = Field(default_factory=list)
    steady_state: list[Check] = Field(min_length=1)
    faults: list[Fault] = Field(min_length=1)
    detect: AlertMatch
    runbooks: list[Response] = Field(min_length=1)
    abort: list[Abort] = Field(default_factory=list)
    # After the drill's own (its faults ended, its runbook runs rolled back, newest first).
    rollbacks: list[Rollback] = Field(default_factory=list)
    targets: Targets
    timeout: Duration = "1h"  # simulated time from the first fault until the drill gives up
    # Where a twin the drill starts sets its clock (a time of day, inside an event's window): the same load
    # every run. A twin already running is moved forward to it, never back.
    clock: datetime | None = None
    # The fleet a drill that starts its own twin lays out: one cluster, or a cluster per region (named after
    # it), each with its Prometheus, and the global view its alerts fire from (what `cluster_down` needs).
    clusters: Literal["one", "per-region"] = "one"

    @model_validator(mode="after")
    def _clusters_for_cluster_faults(self) -> Scenario:
        if self.clusters == "one" and any(f.kind == "cluster_down" for f in self.faults):
            raise ValueError("clusters: a cluster_down fault needs clusters: per-region (a cluster per region)")
        return self
