"""Incident drills end to end, the other half: a broken scenario (failover without the pre-scale that gives the
target headroom) is stopped by its abort condition, its rollbacks run and the twin ends as it started;
idle-batch-at-peak passes on a running twin; the console's Drills view runs a scenario live and `x` stops one.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from console.runbooks.journal import Journal
from tests.e2e.conftest import ROOT, Stack
from tests.e2e.drill_helpers import (
    CATALOG,
    assert_passed_and_agrees_with_the_journal,
    drill_on,
    drill_stack,
    twin_state,
)


@pytest.fixture(scope="module")
def dstack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    yield from drill_stack(tmp_path_factory)


def test_a_broken_scenario_is_stopped_by_its_abort_condition_and_the_twin_ends_as_it_started(dstack, tmp_path):
    scenarios = tmp_path / "scenarios"
    scenarios.mkdir()
    text = (ROOT / "runbooks" / "drills" / "region-outage.yaml").read_text()
    # Without the pre-scale, us-east has no headroom for llm-chat's traffic: the failover is refused.
    broken = re.sub(r"  - runbook: pre-scale\n(    .*\n)+?(?=  - runbook)", "", text)
    assert "pre-scale" not in broken.split("runbooks:")[1].split("abort:")[0]
    (scenarios / "region-outage.yaml").write_text(broken)
    before = twin_state(dstack)
    r = drill_on(dstack, "region-outage", tmp_path, "--scenarios", str(scenarios))
    assert r.returncode == 1, r.stdout + r.stderr
    assert "FAILED: region-outage" in r.stdout and "aborted: llm-chat fails a fifth of its requests" in r.stdout
    records = Journal(tmp_path / "drills.jsonl").records()
    events = [rec["event"] for rec in records]
    refused = next(rec for rec in records if rec["event"] == "runbook_end")
    assert refused["runbook"] == "region-failover" and refused["status"] == "refused"
    assert events.index("abort") < events.index("fault_end") < events.index("rollbacks_done")
    assert "steady_again" not in events
    assert twin_state(dstack) == before


def test_idle_batch_at_peak_passes_on_a_running_twin_and_leaves_it_as_it_was(dstack, tmp_path):
    scenario = "idle-batch-at-peak"
    before = twin_state(dstack)
    r = drill_on(dstack, scenario, tmp_path, "--move-clock")  # to the year-end gala, a month ahead
    assert_passed_and_agrees_with_the_journal(r, scenario, tmp_path)
    after = twin_state(dstack)
    assert after == before


# --- the console ----------------------------------------------------------------------------------------
@asynccontextmanager
async def drill_started_in_console(stack: Stack, tmp_path: Path, scenario: str) -> AsyncIterator[tuple[Any, Any]]:
    """The console on `stack`: view 6, the scenario selected, Enter, the confirmation read and accepted.
    Yields (app, pilot) while the drill runs."""
    from textual.widgets import Static

    from console.tui.app import GpuopsApp
    from console.tui.drills import ConfirmDrill
    from console.wiring import connect
    from tests.e2e.console_helpers import until

    conn = connect(
        CATALOG, stack.prom_url, str(stack.kubeconfig), "twin", stack.am_url,
        runbooks_dir=ROOT / "runbooks", journal=tmp_path / "runbooks.jsonl", drill_journal=tmp_path / "drills.jsonl",
    )  # fmt: skip
    app = GpuopsApp(conn, interval=1.0, operator="pilot")
    try:
        async with app.run_test(size=(160, 50)) as pilot:
            await pilot.press("6")
            table = app.query_one("#table-drills")
            await until(pilot, lambda: table.get_row_index(scenario) >= 0, what="the drills table")
            table.move_cursor(row=table.get_row_index(scenario))
            await pilot.press("enter")
            confirm = await until(pilot, lambda: isinstance(app.screen, ConfirmDrill) and app.screen, what="confirm")
            kinds = {f.kind for f in conn.drills()[scenario].faults}
            assert all(k in str(confirm.query_one("Static", Static).render()) for k in kinds)
            await pilot.click("#drill-start")
            yield app, pilot
    finally:
        conn.close()


async def test_console_drills_view_runs_a_scenario_with_a_live_timeline(dstack, tmp_path):
    from textual.widgets import Static

    from tests.e2e.console_helpers import until

    before = twin_state(dstack)
    async with drill_started_in_console(dstack, tmp_path, "gpu-xid-storm") as (app, pilot):
        timeline = app.query_one("#drill-timeline", Static)
        await until(pilot, lambda: "fault_start" in str(timeline.render()), timeout=120, what="the fault")
        await until(pilot, lambda: "alert_firing" in str(timeline.render()), timeout=120, what="the alert")
        await until(pilot, lambda: "PASSED" in str(timeline.render()), timeout=300, what="the drill to pass")
        shown = str(timeline.render())
        for event in ("runbook_start", "runbook_end", "steady_again", "fault_end", "rollbacks_done"):
            assert event in shown, shown
        # The table's last result comes from the journal.
        table = app.query_one("#table-drills")
        await until(pilot, lambda: "passed" in str(table.get_cell("gpu-xid-storm", "last")), what="last result")
    after = twin_state(dstack)
    assert after["cordoned"] == before["cordoned"] == [] and after["active_faults"] == []
    assert after["configmaps"] == before["configmaps"]


async def test_console_x_stops_a_running_drill_and_its_rollbacks_run(dstack, tmp_path):
    from textual.widgets import Static

    from tests.e2e.console_helpers import until

    before = twin_state(dstack)
    async with drill_started_in_console(dstack, tmp_path, "idle-batch-at-peak") as (app, pilot):
        timeline = app.query_one("#drill-timeline", Static)
        await until(pilot, lambda: "fault_start" in str(timeline.render()), timeout=120, what="the fault")
        assert twin_state(dstack)["active_faults"], "the job_stall fault is on"
        await pilot.press("x")
        await until(pilot, lambda: "FAILED" in str(timeline.render()), timeout=120, what="the drill to stop")
        shown = str(timeline.render())
        assert "stopped by the operator" in shown and "rollbacks_done" in shown, shown
    assert twin_state(dstack) == before
