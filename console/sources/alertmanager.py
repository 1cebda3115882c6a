"""Alertmanager over API v2, through httpx."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx


@dataclass(frozen=True)
class Alert:
    name: str
    severity: str
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: datetime
    state: str  # active | suppressed | unprocessed
    fingerprint: str
    silenced_by: tuple[str, ...] = ()


@dataclass(frozen=True)
class Silence:
    id: str
    matchers: list[dict[str, Any]]
    created_by: str
    comment: str
    starts_at: datetime
    ends_at: datetime
    state: str  # active | pending | expired

    def exact_matchers(self) -> dict[str, str] | None:
        """The matchers as label=value pairs, or None when any is a regex or a negation (not ours to match)."""
        out: dict[str, str] = {}
        for m in self.matchers:
            if m.get("isRegex") or not m.get("isEqual", True):
                return None
            out[m["name"]] = m["value"]
        return out


def _ts(s: str) -> datetime:
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


def _silence(s: dict[str, Any]) -> Silence:
    return Silence(
        s["id"],
        s["matchers"],
        s["createdBy"],
        s["comment"],
        _ts(s["startsAt"]),
        _ts(s["endsAt"]),
        s["status"]["state"],
    )


class AlertmanagerSource:
    def __init__(self, url: str, timeout_s: float = 5.0):
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, timeout=timeout_s)
        self.requests = 0

    def close(self) -> None:
        self._http.close()

    def _get(self, path: str, **params: Any) -> Any:
        self.requests += 1
        r = self._http.get(path, params=params)
        r.raise_for_status()
        return r.json()

    def status(self) -> dict[str, Any]:
        """`GET /api/v2/status`: its version, cluster and configuration."""
        return dict(self._get("/api/v2/status"))

    def alerts(self, active: bool = True, silenced: bool = True, inhibited: bool = True) -> list[Alert]:
        data = self._get(
            "/api/v2/alerts",
            active=str(active).lower(),
            silenced=str(silenced).lower(),
            inhibited=str(inhibited).lower(),
        )
        return [
            Alert(
                a["labels"].get("alertname", ""),
                a["labels"].get("severity", "none"),
                a["labels"],
                a.get("annotations", {}),
                _ts(a["startsAt"]),
                a["status"]["state"],
                a["fingerprint"],
                tuple(a["status"].get("silencedBy") or ()),
            )
            for a in data
        ]

    def silences(self) -> list[Silence]:
        return [_silence(s) for s in self._get("/api/v2/silences")]

    def silence(self, silence_id: str) -> Silence | None:
        """One silence by id; None when Alertmanager no longer knows it."""
        self.requests += 1
        r = self._http.get(f"/api/v2/silence/{silence_id}")
        if r.status_code == 404:
            return None
        r.raise_for_status()
        return _silence(r.json())

    def create_silence(self, matchers: dict[str, str], duration: timedelta, created_by: str, comment: str) -> str:
        now = datetime.now(UTC)
        body = {
            "matchers": [
                {"name": k, "value": v, "isRegex": False, "isEqual": True} for k, v in sorted(matchers.items())
            ],
            "startsAt": now.isoformat(),
            "endsAt": (now + duration).isoformat(),
            "createdBy": created_by,
            "comment": comment,
        }
        self.requests += 1
        r = self._http.post("/api/v2/silences", json=body)
        r.raise_for_status()
        return str(r.json()["silenceID"])

    def expire_silence(self, silence_id: str) -> None:
        """End a silence now (what a runbook's rollback does with the silence its run made)."""
        self.requests += 1
        r = self._http.delete(f"/api/v2/silence/{silence_id}")
        # Gone, or ended already (Alertmanager answers 500 "already expired"): nothing to end.
        if r.status_code == 404 or (r.status_code == 500 and "already expired" in r.text):
            return
        r.raise_for_status()

    def post_alerts(self, alerts: list[dict[str, Any]]) -> None:
        """Send alerts as Prometheus does (used by drills and tests to reach Alertmanager directly)."""
        self.requests += 1
        self._http.post("/api/v2/alerts", json=alerts).raise_for_status()
