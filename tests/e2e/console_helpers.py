"""Helpers for the console's Pilot tests: waiting on the screen, and the twin's own state to compare with."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from kubernetes import client, config
from rich.text import Text
from textual.pilot import Pilot

from console.catalog.model import Catalog, deployment_name, routing_configmap
from console.tui.table import KeyedTable


async def until(pilot: Pilot, cond: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = cond()
            if last:
                return last
        except Exception as e:  # a row not there yet
            last = e
        await pilot.pause(0.1)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; last: {last!r}")


async def until_pools_view(app: Any, pilot: Pilot, want: dict[str, float], what: str) -> KeyedTable:
    """The Pools view once its rows are `want`'s keys (`pool/region`) and each row's GPUs its value."""
    pools = app.query_one("#table-pools", KeyedTable)

    def same() -> bool:
        return set(rows(pools)) == set(want) and all(float(cell(pools, k, "total")) == v for k, v in want.items())

    await until(pilot, same, what=f"the pools view to equal {what} {want}")
    return pools


@asynccontextmanager
async def pools_view_on(stack: Any, catalog: Catalog, want: dict[str, float], what: str) -> AsyncIterator[KeyedTable]:
    """The console on `stack` read through `catalog`, run under Pilot; its Pools view once it equals `want`."""
    from console.tui.app import GpuopsApp
    from console.wiring import connect
    from tests.e2e.conftest import wait_for

    conn = connect(catalog, stack.prom_url, str(stack.kubeconfig), "twin", stack.am_url)
    try:
        wait_for(lambda: conn.snapshot().pools, what="the console's first pools")
        app = GpuopsApp(conn, interval=0.5, operator="tester")
        async with app.run_test(size=(140, 40)) as pilot:
            yield await until_pools_view(app, pilot, want, what)
    finally:
        conn.close()


def cell(table: KeyedTable, row: str, col: str) -> str:
    v = table.get_cell(row, col)
    return (v.plain if isinstance(v, Text) else str(v)).strip()


def rows(table: KeyedTable) -> list[str]:
    return [str(table.coordinate_to_cell_key((i, 0)).row_key.value) for i in range(table.row_count)]


class TwinTruth:
    """What the twin holds, read through the same Kubernetes API the console could use."""

    def __init__(self, kubeconfig: str, catalog: Catalog):
        api = config.new_client_from_config(config_file=kubeconfig, context="twin")
        self.core, self.apps = client.CoreV1Api(api), client.AppsV1Api(api)
        self.catalog = catalog
        self._mig = {f"nvidia.com/mig-{p.mig.profile}": p.mig.instances_per_gpu for p in catalog.pools if p.mig}

    def _gpus(self, resources: dict[str, str] | None) -> float:
        total = 0.0
        for k, v in (resources or {}).items():
            if k == "nvidia.com/gpu":
                total += float(v)
            elif k in self._mig:
                total += float(v) / self._mig[k]
        return total

    def pools(self) -> dict[str, tuple[float, float]]:
        """(GPUs allocatable, GPUs requested) per `pool/region`."""
        where: dict[str, str] = {}
        out: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
        for n in self.core.list_node().items:
            lab = n.metadata.labels
            key = f"{lab[self.catalog.node_labels.pool]}/{lab['topology.kubernetes.io/region']}"
            where[n.metadata.name] = key
            out[key][0] += self._gpus(n.status.allocatable)
        for p in self.core.list_pod_for_all_namespaces().items:
            if p.spec.node_name in where:
                for c in p.spec.containers:
                    out[where[p.spec.node_name]][1] += self._gpus(c.resources.requests)
        return {k: (v[0], v[1]) for k, v in out.items()}

    def quotas(self) -> dict[str, tuple[float, float]]:
        out = {}
        for q in self.core.list_resource_quota_for_all_namespaces().items:
            hard, used = q.status.hard or {}, q.status.used or {}
            if "requests.nvidia.com/gpu" in hard:
                out[q.metadata.namespace] = (
                    float(used["requests.nvidia.com/gpu"]),
                    float(hard["requests.nvidia.com/gpu"]),
                )
        return out

    def services(self) -> dict[str, tuple[int, str, float]]:
        """(desired replicas, mode, traffic weight) per `service/region`."""
        out = {}
        for svc in self.catalog.services:
            routing = self.core.read_namespaced_config_map(routing_configmap(svc), svc.namespace).data
            for region in svc.regions:
                dep = self.apps.read_namespaced_deployment(deployment_name(svc, region), svc.namespace)
                out[f"{svc.name}/{region}"] = (
                    dep.spec.replicas,
                    routing.get("mode", "normal"),
                    float(routing.get(f"weight.{region}", 0)),
                )
        return out
