"""The console under Textual's Pilot against the twin and a real Prometheus."""

from __future__ import annotations

from console.tui.app import GpuopsApp
from console.tui.pools import PoolsTable
from console.wiring import connect
from tests.e2e.conftest import wait_for


async def test_pools_screen_shows_every_pool_and_keeps_the_cursor(catalog, stack):
    conn = connect(catalog, stack.prom_url, str(stack.kubeconfig), None)
    wait_for(lambda: conn.builder.build().pools, what="Prometheus to have scraped the twin")
    app = GpuopsApp(conn.builder.build, conn.context, interval=0.5)
    async with app.run_test(size=(140, 40)) as pilot:
        table = app.query_one(PoolsTable)
        for _ in range(100):
            if table.row_count:
                break
            await pilot.pause(0.1)
        assert table.row_count == len({(p.name, r) for p in catalog.pools for r in p.nodes})
        row = table.get_row("infer-l4/ap-southeast")
        assert row[0] == "infer-l4" and row[2] == "T4" and str(row[4]) == "24"
        await pilot.press("down", "down", "down")
        cursor = table.cursor_row
        first = app.snapshot
        for _ in range(100):
            if app.snapshot is not first:
                break
            await pilot.pause(0.1)
        assert app.snapshot is not first, "a second refresh happened"
        assert table.cursor_row == cursor == 3
        header = str(app.query_one("#header").render())
        assert "ctx twin" in header and "old" in header
        await pilot.press("q")
    conn.close()
