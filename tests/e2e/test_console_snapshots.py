"""SVG snapshots of every view at 120x40 and 80x24, on a paused twin at a fixed clock, with fixed alerts.

The twin's clock is stopped (`--speed 0`), so every reading Prometheus scrapes repeats; the console's clock is
fixed too. Rates still move in their last digit with scrape timing (a scrape answered 50 ms late on a loaded
machine reads a counter 50 ms further on), so numbers on screen match within 2 % or one unit of their last
digit; every other character, colour and position must match exactly. A snapshot that differs fails and
leaves the new SVG beside the old one for a look. After a change meant to alter the screens, refresh them
with `GPUOPS_UPDATE_SNAPSHOTS=1 ./dev test`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from console.sources.alertmanager import AlertmanagerSource
from console.tui.app import GpuopsApp
from console.wiring import Connections, connect
from tests.e2e.conftest import PAUSED_AT, Stack, wait_for
from tests.e2e.console_helpers import until
from tests.svg_screens import differences, same_screen

SNAPSHOTS = Path(__file__).parent / "snapshots"
NOW = PAUSED_AT + timedelta(minutes=5)
SIZES = ((120, 40), (80, 24))
VIEWS = ("pools", "quotas", "services", "alerts")
ALERTS = (
    ("GpuNodeXidErrors", "critical", "sre", {"node": "train-h100-us-east-001"}, "XID 79 on 8 GPUs", 12),
    ("LatencySloFastBurn", "critical", "media-ai", {"service": "tts-dub", "region": "us-east"}, "p95 over SLO", 4),
    ("QuotaNearlyFull", "warning", "research", {"namespace": "team-research"}, "GPU quota at 83 %", 40),
    ("GpusIdleAllocated", "warning", "research", {"namespace": "team-research-batch"}, "6 GPUs idle for 30m", 95),
)


@pytest.fixture
def conn(catalog, paused_stack: Stack) -> Iterator[Connections]:
    am = AlertmanagerSource(paused_stack.am_url or "")
    am.post_alerts(
        [
            {
                "labels": {"alertname": name, "severity": sev, "team": team, **labels},
                "annotations": {"summary": summary, "runbook_url": f"runbooks/{name}.yaml"},
                "startsAt": (NOW - timedelta(minutes=minutes)).isoformat(),
            }
            for name, sev, team, labels, summary, minutes in ALERTS
        ]
    )
    wait_for(lambda: [a.state for a in am.alerts()] == ["active"] * len(ALERTS), what="the alerts to be active")
    am.close()
    c = connect(catalog, paused_stack.prom_url, str(paused_stack.kubeconfig), "twin", paused_stack.am_url)
    c.builder.clock = lambda: NOW
    # A full minute of samples: before that, `rate(...[1m])` reads low by the part of the minute not yet seen.
    wait_for(
        lambda: c.builder.prometheus.query("count_over_time(up[2m]) >= 65"), timeout=90, what="a minute of samples"
    )
    yield c
    c.close()


async def _matches(pilot, app: GpuopsApp, view: str, size: tuple[int, int], timeout: float = 15.0) -> None:
    """Looks at the screen every 0.2 s until it matches the stored snapshot, and fails with the last look
    beside the old one if none did within `timeout`. On a loaded machine a look can catch the table before
    its columns are laid out (names cut to four letters), even two looks in a row."""
    name = f"{view}-{size[0]}x{size[1]}"
    path = SNAPSHOTS / f"{name}.svg"
    update = bool(os.environ.get("GPUOPS_UPDATE_SNAPSHOTS"))
    assert update or path.exists(), f"no snapshot {path}; make it with GPUOPS_UPDATE_SNAPSHOTS=1"
    old = path.read_text() if path.exists() else ""
    svg, deadline = "", time.monotonic() + timeout
    while time.monotonic() < deadline:
        await pilot.pause(0.2)
        svg = app.export_screenshot(title=f"gpuops {view}")
        if old and same_screen(old, svg):
            return
    if update:  # the last look, after the whole wait: laid out by then
        # Update mode still compares: a screen that changed is written and the test fails, so a run with the
        # variable left set can never pass over a difference unseen.
        SNAPSHOTS.mkdir(exist_ok=True)
        path.write_text(svg)
        pytest.fail(f"{name}: snapshot written at {path}; review it and run again")
    new = path.with_suffix(".new.svg")
    new.write_text(svg)
    # The rows that differ go into the message: on CI the new screen's file is gone with the runner.
    pytest.fail(f"{name} differs from {path} for {timeout:g}s; the last screen is in {new}\n{differences(old, svg)}")


@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
async def test_views_match_their_snapshots(conn, size):
    app = GpuopsApp(conn, interval=3600, operator="tester", clock=lambda: NOW)
    async with app.run_test(size=size) as pilot:
        await until(pilot, lambda: app.snapshot is not None and not app.snapshot.failing(), what="a snapshot")
        for i, view in enumerate(VIEWS, start=1):
            await pilot.press(str(i))
            await _matches(pilot, app, view, size)
