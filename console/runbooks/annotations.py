"""Grafana annotations of runbook runs and drills: one region from the start to the end, its outcome in the
text and the tags, so a dashboard shows when a pre-scale or a failover happened beside what it did.

Written only when a Grafana URL and token are configured (GRAFANA_URL or the catalog's `grafana.url`, and
GRAFANA_TOKEN or GRAFANA_TOKEN_FILE). Annotating never stops or slows a run: each failure is kept as a
warning, which the run's journal records, and Grafana gets one short try.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from console.catalog.model import Catalog
    from console.sources.grafana import GrafanaClient

TAG = "gpuops"  # every dashboard's annotation query shows this tag (console/codegen/dashboards.py)


@dataclass
class Mark:
    id: int
    tags: list[str]
    text: str


@dataclass
class Annotations:
    client: GrafanaClient
    warnings: list[str] = field(default_factory=list)

    def begin(self, kind: str, name: str, text: str, tags: list[str]) -> Mark | None:
        every = [TAG, kind, name, *tags]
        try:
            return Mark(self.client.add_annotation(int(time.time() * 1000), every, text), every, text)
        except Exception as e:  # Grafana down or refusing: the run goes on, the journal says so
            self.warnings.append(f"no Grafana annotation for the start of {kind} {name}: {e}")
            return None

    def end(self, mark: Mark | None, outcome: str, detail: str = "") -> None:
        if mark is None:
            return
        text = f"{mark.text} — {outcome}" + (f": {detail}" if detail else "")
        try:
            self.client.patch_annotation(
                mark.id, time_end=int(time.time() * 1000), text=text, tags=[*mark.tags, outcome]
            )
        except Exception as e:
            self.warnings.append(f"no Grafana annotation for the end ({outcome}): {e}")

    def take_warnings(self) -> list[str]:
        out, self.warnings = self.warnings, []
        return out


def grafana_token(env: dict[str, str] | None = None) -> str | None:
    env = dict(os.environ) if env is None else env
    if env.get("GRAFANA_TOKEN"):
        return env["GRAFANA_TOKEN"]
    if path := env.get("GRAFANA_TOKEN_FILE"):
        try:
            return Path(path).read_text(encoding="utf-8").strip() or None
        except (OSError, UnicodeDecodeError):
            return None
    return None


def from_config(catalog: Catalog, env: dict[str, str] | None = None) -> Annotations | None:
    """Annotations to the configured Grafana, or None when there is no URL or no token."""
    from console.sources.grafana import GrafanaClient

    env = dict(os.environ) if env is None else env
    url = env.get("GRAFANA_URL") or catalog.grafana.url
    token = grafana_token(env)
    if not url or not token:
        return None
    return Annotations(GrafanaClient(url, token, timeout_s=3.0, tries=1))
