"""Prometheus over its HTTP API, through prometheus-api-client."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from prometheus_api_client import PrometheusConnect
from urllib3.util.retry import Retry


@dataclass(frozen=True)
class Sample:
    labels: dict[str, str]
    value: float


class PrometheusSource:
    """Instant queries; counts the requests it makes so callers can prove their query count is fixed."""

    def __init__(self, url: str, timeout_s: float = 5.0, headers: dict[str, str] | None = None):
        self.url = url.rstrip("/")
        # One quick retry: a refresh must fail fast and keep the last good data, not hang.
        self._client = PrometheusConnect(
            self.url, headers=headers, retry=Retry(total=1, backoff_factor=0.1), timeout=int(timeout_s) or 1
        )
        self._lock = threading.Lock()
        self.requests = 0

    def query(self, promql: str) -> list[Sample]:
        with self._lock:
            self.requests += 1
        result = self._client.custom_query(promql)
        out = []
        for r in result:
            value = r.get("value")
            if value is None:
                continue
            out.append(Sample(dict(r.get("metric", {})), float(value[1])))
        return out
