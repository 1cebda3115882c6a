"""Plain-text rendering of a snapshot, for the headless CLI."""

from __future__ import annotations

from console.fleet.snapshot import FleetSnapshot


def pools_table(snap: FleetSnapshot) -> str:
    head = (
        f"{'POOL':<18} {'REGION':<13} {'MODEL':<10} {'NODES':>7} {'GPUS':>7} {'ALLOC':>7} {'IDLE':>6} "
        f"{'UTIL%':>6} {'MEM%':>6} {'POWER W':>9} {'IO MB/S':>8} {'STORE%':>7} {'DISK%':>6}"
    )
    lines = [head]
    for p in snap.pools:
        mem = 100 * p.fb_used_mib / p.fb_total_mib if p.fb_total_mib else 0.0
        store = "-" if p.storage_ratio is None else f"{100 * p.storage_ratio:.1f}"
        lines.append(
            f"{p.pool:<18} {p.region:<13} {p.model:<10} {p.nodes_ready:>3}/{p.nodes:<3} {p.gpus_total:>7g} "
            f"{p.gpus_allocated:>7.4g} {p.gpus_idle:>6.3g} {p.util:>6.1f} {mem:>6.1f} {p.power_w:>9.0f} "
            f"{p.io_bytes_s / 1e6:>8.0f} {store:>7} {100 * p.disk_busy:>6.1f}"
        )
    total = sum(p.gpus_total for p in snap.pools)
    alloc = sum(p.gpus_allocated for p in snap.pools)
    lines.append(
        f"{len(snap.nodes)} nodes, {total:g} GPUs, {alloc:.4g} allocated; built in {snap.build_s * 1000:.0f} ms "
        f"with {snap.requests} requests" + (f" ({snap.read_as()} series)" if snap.reads else "")
    )
    return "\n".join(lines)
