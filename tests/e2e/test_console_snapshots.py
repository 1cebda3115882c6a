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
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from console.sources.alertmanager import AlertmanagerSource
from console.tui.app import GpuopsApp
from console.wiring import Connections, connect
from tests.e2e.conftest import PAUSED_AT, Stack, wait_for
from tests.e2e.console_helpers import until
from tests.svg_screens import same_screen

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


def _compare(name: str, svg: str) -> None:
    path = SNAPSHOTS / f"{name}.svg"
    same = path.exists() and same_screen(path.read_text(), svg)
    if os.environ.get("GPUOPS_UPDATE_SNAPSHOTS"):
        # Update mode still compares: a screen that changed is written and the test fails, so a run with
        # the variable left set can never pass over a difference unseen.
        if not same:
            SNAPSHOTS.mkdir(exist_ok=True)
            path.write_text(svg)
            pytest.fail(
                f"{name}: snapshot {'updated' if path.exists() else 'written'} at {path}; review it and run again"
            )
        return
    assert path.exists(), f"no snapshot {path}; make it with GPUOPS_UPDATE_SNAPSHOTS=1"
    if not same:
        new = path.with_suffix(".new.svg")
        new.write_text(svg)
        pytest.fail(f"{name} differs from {path}; the new screen is in {new}")


async def _settled(pilot, app: GpuopsApp, view: str) -> str:
    """The screen once two looks 0.2 s apart agree: on a loaded machine a first look can catch the table
    before its columns are laid out (names cut to four letters, rows missing)."""
    last = ""
    for _ in range(25):
        await pilot.pause(0.2)
        svg = app.export_screenshot(title=f"gpuops {view}")
        if last and same_screen(last, svg):
            return svg
        last = svg
    raise AssertionError(f"the {view} screen never settled: two looks 0.2 s apart differed 25 times in a row")


@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
async def test_views_match_their_snapshots(conn, size):
    app = GpuopsApp(conn, interval=3600, operator="tester", clock=lambda: NOW)
    async with app.run_test(size=size) as pilot:
        await until(pilot, lambda: app.snapshot is not None and not app.snapshot.failing(), what="a snapshot")
        for i, view in enumerate(VIEWS, start=1):
            await pilot.press(str(i))
            svg = await _settled(pilot, app, view)
            _compare(f"{view}-{size[0]}x{size[1]}", svg)
