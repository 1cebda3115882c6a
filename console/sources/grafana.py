"""Grafana over its HTTP API (httpx): folders and dashboards by uid, search, and annotations.

Reads are retried on a 5xx or a dropped connection; a write is retried only when the caller says it is safe
(a dashboard posted with the version it was read at cannot overwrite someone else's edit). The token is sent
as a bearer header and appears in no message.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, cast

import httpx


class GrafanaError(Exception):
    """What Grafana answered, as an operator reads it: the status, Grafana's message and its `status` word."""

    def __init__(self, method: str, path: str, status: int, message: str, status_word: str = ""):
        self.method, self.path, self.status, self.message, self.status_word = method, path, status, message, status_word
        super().__init__(f"{method} {path}: {status} {message}" + (f" ({status_word})" if status_word else ""))


@dataclass(frozen=True)
class RemoteDashboard:
    model: dict[str, Any]
    folder_uid: str
    version: int


class GrafanaClient:
    def __init__(
        self,
        url: str,
        token: str | None,
        timeout_s: float = 10.0,
        tries: int = 3,
        retry_delay_s: float = 0.5,
        transport: httpx.BaseTransport | None = None,
    ):
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout_s, transport=transport)
        self.tries, self.retry_delay_s = max(1, tries), retry_delay_s
        self.requests: Counter[str] = Counter()  # by method: what a publish cost

    def close(self) -> None:
        self._http.close()

    def _request(self, method: str, path: str, body: Any = None, retry: bool = True) -> Any:
        last: Exception | None = None
        for attempt in range(self.tries if retry else 1):
            if attempt:
                time.sleep(self.retry_delay_s * 2 ** (attempt - 1))
            self.requests[method] += 1
            try:
                r = self._http.request(method, path, json=body)
            except httpx.TransportError as e:
                last = GrafanaError(method, path, 0, f"no answer from {self.url}: {type(e).__name__}: {e}")
                continue
            if r.status_code < 300:
                return r.json()
            last = self._error(method, path, r)
            if r.status_code < 500:
                break
        assert last is not None
        raise last

    @staticmethod
    def _error(method: str, path: str, r: httpx.Response) -> GrafanaError:
        try:
            body = r.json()
        except ValueError:
            body = {"message": r.text[:200]}
        if not isinstance(body, dict):
            body = {"message": str(body)[:200]}
        return GrafanaError(method, path, r.status_code, str(body.get("message", "")), str(body.get("status", "")))

    # --- folders ---------------------------------------------------------------------------------------
    def folder(self, uid: str) -> dict[str, Any] | None:
        try:
            return cast("dict[str, Any] | None", self._request("GET", f"/api/folders/{uid}"))
        except GrafanaError as e:
            if e.status == 404:
                return None
            raise

    def create_folder(self, uid: str, title: str) -> dict[str, Any]:
        return cast("dict[str, Any]", self._request("POST", "/api/folders", {"uid": uid, "title": title}, retry=False))

    # --- dashboards ------------------------------------------------------------------------------------
    def dashboard(self, uid: str) -> RemoteDashboard | None:
        try:
            body = self._request("GET", f"/api/dashboards/uid/{uid}")
        except GrafanaError as e:
            if e.status == 404:
                return None
            raise
        meta = body.get("meta", {})
        model = body["dashboard"]
        return RemoteDashboard(model, str(meta.get("folderUid", "")), int(model.get("version", meta.get("version", 0))))

    def save_dashboard(
        self, model: dict[str, Any], folder_uid: str, message: str, overwrite: bool, retry: bool
    ) -> dict[str, Any]:
        body = {"dashboard": model, "folderUid": folder_uid, "message": message, "overwrite": overwrite}
        return cast("dict[str, Any]", self._request("POST", "/api/dashboards/db", body, retry=retry))

    def search_title(self, title: str, folder_uid: str) -> list[dict[str, Any]]:
        q = httpx.QueryParams({"query": title, "type": "dash-db", "folderUIDs": folder_uid})
        return cast("list[dict[str, Any]]", self._request("GET", f"/api/search?{q}"))

    # --- annotations: when a runbook or a drill ran, on every dashboard that shows the tags -----------------
    def add_annotation(self, time_ms: int, tags: list[str], text: str) -> int:
        """An organisation-wide annotation (no dashboard): the dashboards' tag query shows it. Its id."""
        body = {"time": time_ms, "tags": tags, "text": text}
        # Not retried: a second post after a lost answer would add a second annotation.
        return int(self._request("POST", "/api/annotations", body, retry=False)["id"])

    def patch_annotation(self, annotation_id: int, **fields: Any) -> None:
        """Update `time_end` (ms), `text` or `tags` (which replace the old ones)."""
        names = {"time_end": "timeEnd"}
        self._request("PATCH", f"/api/annotations/{annotation_id}", {names.get(k, k): v for k, v in fields.items()})
