"""The fleet twin's own endpoint, through httpx: its simulation clock and its faults (what drills inject).

A real cluster has no such endpoint; drills against one inject only the faults a scenario declares safe there.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx


class TwinError(Exception):
    """The twin refused a request (a bad fault, an unknown target) or could not be reached."""


@dataclass(frozen=True)
class ClockReading:
    """The simulated time at a wall time (`time.time()`), and how fast the simulation runs."""

    sim: datetime
    wall: float
    speed: float

    def sim_at(self, wall: float) -> datetime:
        """The simulated time at another wall time, at this speed (what an Alertmanager timestamp maps to)."""
        return self.sim + timedelta(seconds=(wall - self.wall) * self.speed)


@dataclass(frozen=True)
class Timeline:
    """Wall time to simulated time across every speed change and jump since the twin started: where a
    sample Prometheus stamped with wall time lies in the fleet's time. A real cluster's is `REAL_TIME`."""

    segments: tuple[tuple[float, datetime, float], ...]  # (Unix wall time, simulated time then, speed)

    def sim_at(self, wall: float) -> datetime:
        start, sim, speed = self._segment(0, wall)
        return sim + timedelta(seconds=(wall - start) * speed)

    def wall_at(self, when: datetime) -> float:
        """The wall time at which the fleet's clock read `when` (or will, at the current speed)."""
        start, sim, speed = self._segment(1, when)
        return start + (when - sim).total_seconds() / (speed or 1.0)

    def elapsed(self, w0: float, w1: float) -> float:
        """Fleet seconds that ran between two wall times. On a running clock a jump adds none: nothing was
        sampled in the time jumped over, so a reading before a drill's month-long jump must not stand for
        the month. On a paused clock moved step by step (a trace replayed) the steps are the time, and the
        reading before each stands for it, as the trace's state holds until its next event."""
        total = 0.0
        for i, (start, sim, speed) in enumerate(self.segments):
            nxt = self.segments[i + 1] if i + 1 < len(self.segments) else None
            lo = max(w0, start) if i else w0  # the first segment also stands for the time before it
            hi = min(w1, nxt[0]) if nxt else w1
            total += max(0.0, hi - lo) * speed
            if nxt and speed == 0 and w0 < nxt[0] <= w1:
                total += max(0.0, (nxt[1] - sim).total_seconds())
        return total

    def _segment(self, field: int, at: Any) -> tuple[float, datetime, float]:
        """The last segment that began at or before `at` (on its wall or its simulated clock); the first if none."""
        return next((seg for seg in reversed(self.segments) if seg[field] <= at), self.segments[0])


REAL_TIME = Timeline(((0.0, datetime.fromtimestamp(0, UTC), 1.0),))


@dataclass(frozen=True)
class InjectedFault:
    id: str
    kind: str
    target: dict[str, str]
    start: datetime
    end: datetime


class TwinControl:
    def __init__(self, url: str, timeout_s: float = 10.0):
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, timeout=timeout_s)

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        try:
            r = self._http.request(method, path, json=body)
        except httpx.HTTPError as e:
            raise TwinError(f"{self.url}{path}: {e}") from None
        if r.status_code >= 400:
            try:
                msg = r.json().get("message", r.text)
            except ValueError:
                msg = r.text
            raise TwinError(f"{method} {path}: {r.status_code} {msg}")
        return r.json()

    def clock(self) -> ClockReading:
        before = time.time()
        d = self._call("GET", "/twin/clock")
        # The reading was taken somewhere in the round trip: its middle is the best guess.
        return ClockReading(datetime.fromisoformat(d["now"]), (before + time.time()) / 2, float(d["speed"]))

    def timeline(self) -> Timeline:
        d = self._call("GET", "/twin/clock")
        return Timeline(
            tuple((float(s["wall"]), datetime.fromisoformat(s["sim"]), float(s["speed"])) for s in d["segments"])
        )

    def set_speed(self, speed: float) -> ClockReading:
        self._call("POST", "/twin/clock", {"speed": speed})
        return self.clock()

    def advance(self, seconds: float) -> ClockReading:
        self._call("POST", "/twin/clock", {"advance_s": seconds})
        return self.clock()

    def inject(self, spec: dict[str, Any]) -> InjectedFault:
        return _fault(self._call("POST", "/twin/faults", spec))

    def end(self, fault_id: str) -> InjectedFault:
        return _fault(self._call("DELETE", f"/twin/faults/{fault_id}"))

    def faults(self) -> list[InjectedFault]:
        return [_fault(f) for f in self._call("GET", "/twin/faults")["faults"]]


def _fault(d: dict[str, Any]) -> InjectedFault:
    return InjectedFault(
        d["id"], d["kind"], d["target"], datetime.fromisoformat(d["start"]), datetime.fromisoformat(d["end"])
    )


def twin_for_context(context: str, api_server: str, url: str | None = None) -> TwinControl | None:
    """The twin's control endpoint for a drill: `url` if given; else, for the context named `twin` only, its
    API server if that is a twin. Any other context is a cluster, whatever serves it."""
    if url:
        return TwinControl(url)
    if context == "twin" and is_twin(api_server):
        return TwinControl(api_server)
    return None


def timeline_for(context: str, api_server: str) -> Timeline:
    """The twin's clock history when the context is the twin, else real time (a cluster's)."""
    twin = twin_for_context(context, api_server)
    if twin is None:
        return REAL_TIME
    try:
        return twin.timeline()
    except TwinError:
        return REAL_TIME
    finally:
        twin.close()


def is_twin(url: str) -> bool:
    """Whether the API server at `url` is a twin (it answers `/twin/clock`)."""
    twin = TwinControl(url, timeout_s=3)
    try:
        twin.clock()
    except TwinError:
        return False
    finally:
        twin.close()
    return True
