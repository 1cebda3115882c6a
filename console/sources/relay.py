"""`gpuops relay` over its HTTP API (httpx): which alert groups reached which team's chat, and when."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import httpx


@dataclass(frozen=True)
class Notified:
    fingerprint: str
    channel: str  # feishu:#llm-oncall
    at: datetime
    status: str  # the alert's, as sent: firing | resolved


class RelaySource:
    def __init__(self, url: str, timeout_s: float = 5.0):
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, timeout=timeout_s)
        self.requests = 0

    def close(self) -> None:
        self._http.close()

    def notified(self) -> dict[str, Notified]:
        """Each alert's last delivered notification, by fingerprint (failed ones are not "notified")."""
        self.requests += 1
        r = self._http.get("/notified")
        r.raise_for_status()
        return {
            fp: Notified(fp, n["channel"], datetime.fromisoformat(n["at"]), n["status"])
            for fp, n in r.json().get("notified", {}).items()
        }
