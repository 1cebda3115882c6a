"""Run the console on connected sources, and close them when it quits."""

from __future__ import annotations

from console.tui.app import GpuopsApp
from console.wiring import Connections


def run_console(
    conn: Connections, *, interval: float = 2.0, readonly: bool = False, operator: str | None = None
) -> None:
    try:
        GpuopsApp(conn, interval=interval, readonly=readonly, operator=operator).run()
    finally:
        conn.close()
