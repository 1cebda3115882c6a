"""Storage IO end to end: the twin's node-exporter series in a real Prometheus with the built rules; `storage_slow`
on the transcode pool's store in one region fires StorageSaturated there (and nowhere else), and the console's
Pools view shows that pool's disks saturated and its traffic against the ceiling, under Pilot."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from console.catalog import load_catalog
from console.sources.twin import TwinControl
from console.tui.app import GpuopsApp
from console.tui.table import KeyedTable
from console.wiring import connect
from tests.e2e.conftest import ROOT, Stack, built_rules, start_stack, wait_for
from tests.e2e.console_helpers import cell, until
from tests.fleetdoc import named

CATALOG = load_catalog(ROOT / "fleet.yaml")


@pytest.fixture(scope="module")
def sstack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp("storage")
    rules = built_rules(workdir, CATALOG, storageFor="15s")  # the alert's wait, shortened for the test
    yield from start_stack(workdir, "--catalog", str(ROOT / "fleet.yaml"), "--warmup", "0", rule_files=rules)


def firing(stack: Stack) -> set[tuple[str, str]]:
    r = httpx.get(f"{stack.prom_url}/api/v1/alerts", timeout=10).json()
    return {
        (a["labels"].get("pool", ""), a["labels"].get("region", ""))
        for a in r["data"]["alerts"]
        if a["labels"]["alertname"] == "StorageSaturated" and a["state"] == "firing"
    }


def query(stack: Stack, promql: str) -> dict[tuple[str, str], float]:
    r = httpx.get(f"{stack.prom_url}/api/v1/query", params={"query": promql}, timeout=10).json()
    return {
        (x["metric"].get("pool", ""), x["metric"].get("region", "")): float(x["value"][1]) for x in r["data"]["result"]
    }


async def test_a_slow_store_fires_the_io_alert_and_the_pools_view_shows_it(sstack: Stack) -> None:
    # A plain fleet first: the store under its ceiling, no alert. The ratio is computed here from the raw series
    # and the catalog's ceiling read plainly.
    ceiling = named("pools", "cpu-transcode")["storage"]["ceiling_mb_s"] * 1e6
    traffic = (
        'sum by (pool, region) (label_replace(rate(node_network_receive_bytes_total{device="eth0"}[1m])'
        ' + rate(node_network_transmit_bytes_total{device="eth0"}[1m]), "node", "$1", "instance", "(.+)")'
        " * on (node) group_left (pool, region) label_replace(label_replace(kube_node_labels,"
        ' "pool", "$1", "label_gpuops_io_pool", "(.+)"), "region", "$1", "label_topology_kubernetes_io_region", "(.+)"))'
    )
    # A whole minute of scrapes in the rate's window (before that it reads part of a minute).
    full = 'count_over_time(node_network_receive_bytes_total{instance="cpu-transcode-us-east-000"}[1m]) >= 55'
    wait_for(lambda: query(sstack, full), timeout=120, what="a minute of node-exporter's samples")
    plain = query(sstack, traffic)[("cpu-transcode", "us-east")]
    assert 0.1 < plain / ceiling < 0.9
    assert firing(sstack) == set()

    twin = TwinControl(sstack.twin_url)
    fault = twin.inject(
        {"kind": "storage_slow", "target": {"pool": "cpu-transcode", "region": "us-east"}, "duration_s": 3600}
    )
    try:
        # The rate's minute fills with the saturated disks, then the alert's 15 s.
        wait_for(lambda: ("cpu-transcode", "us-east") in firing(sstack), timeout=180, every=2, what="StorageSaturated")
        assert firing(sstack) == {("cpu-transcode", "us-east")}
        slowed = query(sstack, traffic)[("cpu-transcode", "us-east")]
        assert slowed < plain and slowed <= 0.1 * ceiling * 1.05  # a tenth of the ceiling, and the base traffic

        conn = connect(CATALOG, sstack.prom_url, str(sstack.kubeconfig), "twin", sstack.am_url)
        try:
            app = GpuopsApp(conn, interval=0.5, operator="tester")
            async with app.run_test(size=(180, 40)) as pilot:
                pools = app.query_one("#table-pools", KeyedTable)
                key = "cpu-transcode/us-east"
                await until(pilot, lambda: float(cell(pools, key, "io")) >= 99, what="the slow store's disks busy")
                assert "bold red" in str(pools.get_cell(key, "io").style)
                # Elsewhere: the traffic against the same ceiling, or the disks, whichever is higher; both plain.
                assert float(cell(pools, "cpu-transcode/eu-west", "io")) < 90
                # Into the pool: each of its nodes with its disk fully busy, and its share of a tenth of the ceiling.
                pools.move_cursor(row=pools.get_row_index(key))
                await pilot.press("enter")
                nodes = [
                    f"cpu-transcode-us-east-{i:03d}" for i in range(named("pools", "cpu-transcode")["nodes"]["us-east"])
                ]
                await until(pilot, lambda: sorted(cell(pools, n, "node") for n in nodes) == nodes, what="its nodes")
                await until(pilot, lambda: all(float(cell(pools, n, "disk")) >= 99 for n in nodes), what="busy disks")
                per_node = sum(float(cell(pools, n, "io")) for n in nodes)
                assert per_node == pytest.approx(slowed / 1e6, rel=0.1, abs=len(nodes))
        finally:
            conn.close()
    finally:
        twin.end(fault.id)
        twin.close()
