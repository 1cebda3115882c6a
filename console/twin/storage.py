"""Storage IO on the twin: what the storage-bound services (transcode) move to and from their pool's store, the
store's ceiling (cut by `storage_slow`), and node-exporter's disk, network and NFS counters on every node.

The store is reached over the network, so a pool's storage throughput is its nodes' network bytes. Each request
stages its source on the node's local scratch and writes its renditions back: the disks are busy in proportion
to how hard the pipeline presses the store, and fully busy (IO always in flight) once the store falls behind.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from console.catalog.model import Catalog
from console.twin.faults import Effects

MB = 1e6
BASE_MB_S = 0.4  # what a node moves with no work: logs, images, metrics
BASE_BUSY = 0.02  # the disk's own background share of time busy
BUSY_PER_PRESSURE = 0.9  # disk busy share per unit of the store's pressure (demand over its sustained rate)
# node-exporter's counters, in this order in NodeIO.
COUNTERS = ("disk_read", "disk_written", "disk_busy_s", "net_rx", "net_tx", "nfs_read", "nfs_write")


@dataclass
class NodeIO:
    """A node's counters at its last tick and the rates (per second) in effect since: they grow smoothly between
    ticks, as the services' do, so a `rate()` does not depend on when the scrape came."""

    totals: list[float] = field(default_factory=lambda: [0.0] * len(COUNTERS))
    rates: list[float] = field(default_factory=lambda: [0.0] * len(COUNTERS))

    def at(self, dt: float) -> list[float]:
        return [t + r * dt for t, r in zip(self.totals, self.rates, strict=True)]

    def advance(self, dt: float) -> None:
        self.totals = self.at(dt)


@dataclass(frozen=True)
class StoreLoad:
    """One pool's store in one region at the last tick, MB/s."""

    demand: float  # what the services asked of it
    read: float  # what it served
    write: float
    sustained: float  # its ceiling now (the catalog's, times a storage_slow share)

    @property
    def pressure(self) -> float:
        return self.demand / self.sustained if self.sustained > 0 else 0.0


def io_limits(
    catalog: Catalog, routed: dict[str, dict[str, float]], effects: Effects
) -> tuple[dict[tuple[str, str], float], dict[tuple[str, str], float]]:
    """(the requests a second each storage-bound service may serve in each region, at most: its share of its
    pool's store, by what it asks; the store's sustained MB/s per (pool, region))."""
    ceilings = {p.name: p.storage.ceiling_mb_s for p in catalog.pools if p.storage}
    asked: dict[tuple[str, str], float] = {}
    for svc in catalog.services:
        if svc.storage_io and svc.pool in ceilings:
            for region, rps in routed.get(svc.name, {}).items():
                asked[(svc.pool, region)] = asked.get((svc.pool, region), 0.0) + rps * svc.storage_io.total_mb
    sustained = {(p, r): ceilings[p] * effects.storage_share(p, r) for p, r in asked}
    limits = {}
    for svc in catalog.services:
        if svc.storage_io and svc.storage_io.total_mb > 0 and svc.pool in ceilings:
            for region, rps in routed.get(svc.name, {}).items():
                key = (svc.pool, region)
                share = rps * svc.storage_io.total_mb / asked[key] if asked[key] > 0 else 1.0
                limits[(svc.name, region)] = sustained[key] * share / svc.storage_io.total_mb
    return limits, sustained


def store_loads(
    catalog: Catalog,
    asked: Iterable[tuple[str, str, float, float]],
    sustained: dict[tuple[str, str], float],
) -> dict[tuple[str, str], StoreLoad]:
    """Each store's load from (service, region, requests a second asked, served)."""
    services = {s.name: s for s in catalog.services}
    out: dict[tuple[str, str], StoreLoad] = {}
    for name, region, demand_rps, served_rps in asked:
        svc = services[name]
        io = svc.storage_io
        if io is None or (svc.pool, region) not in sustained:
            continue
        key = (svc.pool, region)
        was = out.get(key, StoreLoad(0.0, 0.0, 0.0, sustained[key]))
        out[key] = StoreLoad(
            was.demand + demand_rps * io.total_mb,
            was.read + served_rps * io.read_mb,
            was.write + served_rps * io.write_mb,
            was.sustained,
        )
    return out


def node_rates(load: StoreLoad | None, nodes: int, nfs: bool) -> list[float]:
    """One ready node's counter rates (bytes or busy seconds a second), its pool's store `load` shared evenly
    over the pool's `nodes` ready nodes in the region."""
    read = (load.read / nodes if load and nodes else 0.0) * MB
    write = (load.write / nodes if load and nodes else 0.0) * MB
    base = BASE_MB_S * MB
    if load is None:
        busy = BASE_BUSY
    else:
        busy = 1.0 if load.pressure >= 1 else min(1.0, BASE_BUSY + BUSY_PER_PRESSURE * load.pressure)
    # Scratch: the source is written once and read once; renditions are written to the store directly.
    return [read + base, read + base, busy, read + base, write + base, read if nfs else 0.0, write if nfs else 0.0]
