"""One Lease (coordination.k8s.io/v1) per target a run changes, so two operators cannot run conflicting
runbooks on one service, node or namespace. Held leases are renewed while the run lasts; a run that dies
leaves them to expire, and its own rollback may take them over at once.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from console.runbooks.changes import Lock
from console.sources.kube import KubeError

if TYPE_CHECKING:
    from console.sources.kube import KubeObjects


class LeaseHeld(Exception):
    """Another run holds a target: says who, since when, and until when."""


def _micro(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(s: str) -> datetime:
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


@dataclass
class Leases:
    kube: KubeObjects
    holder: str  # operator@host run RUN_ID
    run_id: str
    duration_s: int = 60
    kubes: dict[str, KubeObjects] = field(default_factory=dict)  # each cluster's API, when locks name one
    held: list[Lock] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def acquire(self, locks: list[Lock]) -> None:
        """All or none: on a refusal the ones already taken are given back."""
        try:
            for lk in locks:
                self._take(lk)
                self.held.append(lk)
        except BaseException:
            self.release()
            raise
        if self.held and self._thread is None:
            self._thread = threading.Thread(target=self._renew_loop, name="lease-renew", daemon=True)
            self._thread.start()

    def _kube(self, lk: Lock) -> KubeObjects:
        return self.kubes.get(lk.cluster, self.kube) if lk.cluster else self.kube

    def _spec(self, now: datetime, acquired: str | None = None) -> dict[str, Any]:
        return {
            "holderIdentity": self.holder,
            "leaseDurationSeconds": self.duration_s,
            "acquireTime": acquired or _micro(now),
            "renewTime": _micro(now),
        }

    def _take(self, lk: Lock) -> None:
        now = datetime.now(UTC)
        body = {"metadata": {"name": lk.lease, "labels": {"gpuops.io/lock": "runbook"}}, "spec": self._spec(now)}
        try:
            self._kube(lk).create("lease", lk.namespace, body)
            return
        except KubeError as e:
            if e.code != 409:
                raise
        cur = self._kube(lk).get("lease", lk.namespace, lk.lease)
        spec = cur.get("spec") or {}
        holder = spec.get("holderIdentity") or ""
        renewed = spec.get("renewTime") or spec.get("acquireTime")
        expires = _parse(renewed) + timedelta(seconds=int(spec.get("leaseDurationSeconds") or 0)) if renewed else now
        ours = holder.endswith(f" run {self.run_id}")
        if holder and not ours and expires > now:
            since = spec.get("acquireTime", "?")
            raise LeaseHeld(
                f"{lk.subject} is held by {holder} since {since} (lease {lk.namespace}/{lk.lease}, "
                f"expires in {(expires - now).total_seconds():.0f}s unless renewed)"
            )
        cur["spec"] = self._spec(now)
        try:
            self._kube(lk).replace("lease", lk.namespace, lk.lease, cur)  # carries the resourceVersion read
        except KubeError as e:
            if e.code == 409:
                raise LeaseHeld(f"{lk.subject}: another run took the lease at the same moment") from None
            raise

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.duration_s / 3):
            for lk in list(self.held):
                try:
                    cur = self._kube(lk).get("lease", lk.namespace, lk.lease)
                    cur["spec"]["renewTime"] = _micro(datetime.now(UTC))
                    self._kube(lk).replace("lease", lk.namespace, lk.lease, cur)
                except KubeError:
                    pass  # the next renewal tries again; the run itself reports API trouble

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        for lk in reversed(self.held):
            try:
                cur = self._kube(lk).get("lease", lk.namespace, lk.lease)
                if (cur.get("spec") or {}).get("holderIdentity") == self.holder:
                    self._kube(lk).delete("lease", lk.namespace, lk.lease)
            except KubeError:
                pass  # it expires on its own
        self.held.clear()
