"""Pool detail: each node and GPU of the selected pools, MIG instances, XID errors, temperature, missing GPUs,
the GPU health counters the hardware alerts read (throttling, NVLink and PCIe errors, row remapping), and
storage IO (a pool store's traffic against its ceiling, disks busy, network by node)."""

from __future__ import annotations

from grafanalib.core import Dashboard

from console.catalog.model import Catalog
from console.codegen import panels as kit
from console.fleet.queries import PANEL_QUERIES as Q


def build(catalog: Catalog) -> Dashboard:
    runbooks = catalog.grafana.runbooks_url
    gpu = "{{node}} GPU {{gpu}}"
    return kit.dashboard(
        "GPU pool detail",
        "The nodes and GPUs of the selected pools and regions: load, memory, MIG instances, XID errors, heat.",
        [
            kit.table(
                "Nodes",
                [
                    (Q["node_busy"], "GPU busy %"),
                    (Q["node_power"], "Power W"),
                    (Q["node_temp_max"], "Hottest GPU °C"),
                    (Q["node_xid_max"], "Last XID"),
                ],
            ),
            kit.row("GPUs"),
            kit.timeseries("GPU busy", [(Q["gpu_busy"], gpu)], unit="percent", max_value=100),
            kit.timeseries(
                "GPU memory used",
                [(Q["gpu_memory"], gpu + " {{GPU_I_ID}}")],
                unit="percentunit",
                max_value=1,
                thresholds=[(None, kit.GREEN), (0.95, kit.RED)],
            ),
            kit.timeseries(
                "MIG instances busy",
                [(Q["mig_active"], gpu + " {{GPU_I_PROFILE}} #{{GPU_I_ID}}")],
                unit="percentunit",
                max_value=1,
                description="Graphics engine activity of each MIG instance (DCGM_FI_PROF_GR_ENGINE_ACTIVE).",
            ),
            kit.heatmap(
                "GPU temperature",
                Q["gpu_temp"],
                unit="celsius",
                buckets=False,
                description="How many GPUs run at each temperature over time.",
            ),
            kit.row("Faults"),
            kit.state_timeline(
                "XID errors by GPU",
                Q["gpu_xid"],
                gpu,
                [
                    (0, "OK", kit.GREEN),
                    (13, "XID 13", kit.ORANGE),
                    (48, "XID 48 (ECC)", kit.RED),
                    (79, "XID 79 (off the bus)", kit.RED),
                ],
                description="The last XID a GPU reported; any non-zero value means a driver-reported fault.",
                thresholds=[(None, kit.GREEN), (1, kit.RED)],
            ),
            kit.row("GPU health"),
            kit.timeseries(
                "Time throttled for heat",
                [(Q["gpu_thermal_throttled"], gpu)],
                unit="percentunit",
                max_value=1,
                description="The share of the time each GPU's clocks were slowed for heat "
                "(DCGM_FI_DEV_THERMAL_VIOLATION); GpuThermalThrottling fires over 10 %.",
                thresholds=[(None, kit.GREEN), (0.10, kit.RED)],
                links=[kit.runbook(runbooks, "gpu-node-xid", "a GPU node with hardware faults")],
            ),
            kit.timeseries(
                "NVLink and PCIe errors",
                [
                    (Q["gpu_nvlink_crc"], gpu + " NVLink CRC"),
                    (Q["gpu_nvlink_replay"], gpu + " NVLink replay"),
                    (Q["gpu_pcie_replay"], gpu + " PCIe replay"),
                ],
                unit="short",
                description="Errors and retries a second on each GPU's links; a rising line is a cable, riser or "
                "switch going bad (GpuLinkErrors).",
            ),
            kit.timeseries(
                "Memory rows remapped",
                [
                    (Q["gpu_uncorrectable_rows"], gpu + " uncorrectable"),
                    (Q["gpu_row_remap_failure"], gpu + " remap failed"),
                ],
                unit="short",
                description="Rows remapped after uncorrectable ECC errors, and whether a remap failed "
                "(the GPU's memory is unsafe until a reset: GpuRowRemapFailure).",
                thresholds=[(None, kit.GREEN), (1, kit.RED)],
            ),
            kit.timeseries(
                "GPUs missing by node",
                [(Q["node_gpus_missing"], "{{node}}")],
                description="GPUs a node has that its exporter no longer reports.",
                thresholds=[(None, kit.GREEN), (1, kit.RED)],
                links=[kit.runbook(runbooks, "gpu-node-xid", "a GPU node with XID errors")],
            ),
            kit.row("Storage IO"),
            kit.timeseries(
                "Storage traffic against the ceiling",
                [(Q["pool_storage_ratio"], "{{pool}} {{region}}")],
                unit="percentunit",
                description="Each pool's network bytes a second (its store's traffic: NFS or an object store) over "
                "the catalog's ceiling for the store; StorageSaturated fires over 90 % for 5 minutes.",
                thresholds=[(None, kit.GREEN), (0.9, kit.RED)],
            ),
            kit.timeseries(
                "Storage traffic",
                [(Q["pool_storage_bytes"], "{{pool}} {{region}}"), (Q["pool_storage_ceiling"], "{{pool}} ceiling")],
                unit="Bps",
                description="Network bytes a second in and out of each pool's nodes, and its store's ceiling.",
            ),
            kit.timeseries(
                "Disk busy by node",
                [(Q["node_disk_busy"], "{{node}}")],
                unit="percentunit",
                max_value=1,
                description="The share of time each node's busiest disk had IO in flight "
                "(node_disk_io_time_seconds_total); StorageSaturated fires over 90 %.",
                thresholds=[(None, kit.GREEN), (0.9, kit.RED)],
            ),
            kit.timeseries(
                "Network by node",
                [(Q["node_network_bytes"], "{{node}}")],
                unit="Bps",
                description="Bytes a second in and out of each node's network devices.",
            ),
        ],
        kit.variables("region", "pool", "node"),
    )
