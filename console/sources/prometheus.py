"""Prometheus over its HTTP API, through prometheus-api-client."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from prometheus_api_client import PrometheusConnect
from urllib3.util.retry import Retry

MAX_RANGE_POINTS = 10_000  # steps per range query: Prometheus refuses over 11,000 points per series


@dataclass(frozen=True)
class Sample:
    labels: dict[str, str]
    value: float


@dataclass(frozen=True)
class Range:
    labels: dict[str, str]
    samples: tuple[tuple[float, float], ...]  # (Unix seconds, value)


class PrometheusSource:
    """Instant queries; counts the requests it makes so callers can prove their query count is fixed."""

    def __init__(
        self,
        url: str,
        timeout_s: float = 5.0,
        headers: dict[str, str] | None = None,
        rewrite: Callable[[str], str] | None = None,
    ):
        """`rewrite`: applied to every query sent (the catalog's selectors, console/fleet/scope.py)."""
        self.url = url.rstrip("/")
        self._rewrite = rewrite or (lambda q: q)
        # One quick retry: a refresh must fail fast and keep the last good data, not hang.
        self._client = PrometheusConnect(
            self.url, headers=headers, retry=Retry(total=1, backoff_factor=0.1), timeout=int(timeout_s) or 1
        )
        self._headers = headers or {}
        self._lock = threading.Lock()
        self.requests = 0

    def _api(self, path: str, **params: str) -> Any:
        """`data` of a GET on the HTTP API the client library does not cover (config, TSDB status, rules),
        with the same headers (a token, basic auth) as its queries."""
        import httpx

        with self._lock:
            self.requests += 1
        r = httpx.get(f"{self.url}{path}", params=params, headers=self._headers, timeout=5)
        r.raise_for_status()
        return r.json()["data"]

    def intervals(self) -> tuple[float, float]:
        """(scrape interval, rule evaluation interval) in seconds, from the server's loaded configuration."""
        import yaml

        glob = (yaml.safe_load(self._api("/api/v1/status/config")["yaml"]) or {}).get("global") or {}

        def secs(v: str) -> float:
            units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
            unit = next(u for u in ("ms", "s", "m", "h") if v.endswith(u))
            return float(v[: -len(unit)]) * units[unit]

        return secs(glob.get("scrape_interval", "1m")), secs(glob.get("evaluation_interval", "1m"))

    def history_s(self) -> float:
        """Seconds of samples the server holds (now minus its head block's oldest sample): a rate over a window
        longer than this reads low, as the window is not full yet."""
        import time

        min_ms = int(self._api("/api/v1/status/tsdb")["headStats"]["minTime"])
        return max(0.0, time.time() - min_ms / 1000) if min_ms > 0 else 0.0

    def rule_groups(self) -> list[str]:
        """The names of the rule groups Prometheus has loaded."""
        return [str(g.get("name", "")) for g in self._api("/api/v1/rules").get("groups", [])]

    def alert_rules(self) -> list[tuple[str, str, dict[str, str]]]:
        """The alerting rules the server has loaded: (name, query, labels)."""
        return [
            (rule["name"], rule.get("query", ""), dict(rule.get("labels") or {}))
            for group in self._api("/api/v1/rules", type="alert")["groups"]
            for rule in group.get("rules", [])
        ]

    def query_range(self, promql: str, start: float, end: float, step_s: float) -> list[Range]:
        """A range query (Unix seconds); each series' samples in time order."""
        from datetime import UTC, datetime

        with self._lock:
            self.requests += 1
        result = self._client.custom_query_range(
            self._rewrite(promql),
            start_time=datetime.fromtimestamp(start, UTC),
            end_time=datetime.fromtimestamp(end, UTC),
            step=f"{step_s:.3f}",  # seconds as a float: a duration string cannot say 0.065s
        )
        return [
            Range(dict(r.get("metric", {})), tuple((float(t), float(v)) for t, v in r.get("values", [])))
            for r in result
        ]

    def query_range_chunked(
        self,
        promql: str,
        start: float,
        end: float,
        step_s: float,
        progress: Callable[[int, int], None] = lambda done, total: None,
    ) -> list[Range]:
        """A range query of any length, read in pieces of at most MAX_RANGE_POINTS steps (Prometheus refuses
        more than 11,000 points per series in one query); the pieces of each series joined in time order."""
        per = MAX_RANGE_POINTS * step_s
        starts = [start + k * per for k in range(max(1, math.ceil((end - start) / per)))]
        joined: dict[tuple[tuple[str, str], ...], list[tuple[float, float]]] = {}
        for done, lo in enumerate(starts, start=1):
            # Each piece ends a step before the next begins: no sample is read twice.
            hi = min(end, lo + per - step_s)
            for r in self.query_range(promql, lo, hi, step_s):
                joined.setdefault(tuple(sorted(r.labels.items())), []).extend(r.samples)
            progress(done, len(starts))
        return [Range(dict(k), tuple(sorted(v))) for k, v in joined.items()]

    def query(self, promql: str, at: float | None = None) -> list[Sample]:
        """An instant query, now or at `at` (Unix seconds)."""
        with self._lock:
            self.requests += 1
        result = self._client.custom_query(
            self._rewrite(promql), params={"time": f"{at:.3f}"} if at is not None else None
        )
        out = []
        for r in result:
            value = r.get("value")
            if value is None:
                continue
            out.append(Sample(dict(r.get("metric", {})), float(value[1])))
        return out
