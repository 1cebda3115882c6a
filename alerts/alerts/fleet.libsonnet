// The fleet: regions, nodes, exporters, capacity.
{
  local lib = (import '../lib/gpuops.libsonnet')($),
  local q = lib.q,
  local over = lib.over,
  local runbook = lib.runbook,
  local panel = lib.panel,
  prometheusAlerts+:: {
    groups+: [
      {
        name: 'gpuops.fleet',
        rules: [
          {
            alert: 'RegionDown',
            expr: q.REGION_DOWN,
            'for': $._config.regionDownFor,
            labels: { severity: 'critical', team: $._config.platformTeam },
            annotations: {
              summary: 'No node is Ready in region {{ $labels.region }}.',
              description: 'Every node of {{ $labels.region }} has been NotReady for %s: its traffic must move.' % $._config.regionDownFor,
              runbook_url: runbook('region-failover'),
              dashboard_url: panel('gpuops-fleet-overview/ready-nodes-by-region', ['region']),
            },
          },
          {
            alert: 'GpuXidErrors',
            expr: over(q.GPU_XID_NEW, $._config.xidWindow),
            'for': $._config.xidFor,
            labels: { severity: 'critical', team: $._config.platformTeam },
            annotations: {
              summary: 'GPU {{ $labels.gpu }} on {{ $labels.Hostname }} reports XID {{ $value }}.',
              description: 'A hardware XID (application XIDs 13, 31, 43, 45 excepted) appeared in the last %s: the node should leave the pool. The exporter keeps the last XID until it restarts, so the alert ends %s after the XID changed.' % [$._config.xidWindow, $._config.xidWindow],
              runbook_url: runbook('gpu-node-xid'),
              dashboard_url: panel('gpuops-pool-detail/xid-errors-by-gpu', ['Hostname']),
            },
          },
          {
            alert: 'GpuHardwareSlowdown',
            expr: q.GPU_HW_SLOWDOWN,
            'for': $._config.slowdownFor,
            labels: { severity: 'critical', team: $._config.platformTeam },
            annotations: {
              summary: 'GPU {{ $labels.gpu }} on {{ $labels.Hostname }} has its clocks cut by hardware protection.',
              description: 'HW slowdown, HW thermal or power-brake throttling for %s: the GPU runs at a fraction of its speed, and its replicas miss their latency. Check cooling and power; take the node out if it stays.' % $._config.slowdownFor,
              runbook_url: runbook('gpu-node-xid'),
              dashboard_url: panel('gpuops-pool-detail/gpu-temperature', ['Hostname']),
            },
          },
          {
            alert: 'GpuThermalThrottling',
            expr: '%s > %g' % [over(q.GPU_THERMAL_THROTTLED_SHARE, $._config.throttleWindow), $._config.throttleShare],
            'for': $._config.throttleFor,
            labels: { severity: 'warning', team: $._config.platformTeam },
            annotations: {
              summary: 'GPU {{ $labels.gpu }} on {{ $labels.Hostname }} is slowed for heat {{ $value | humanizePercentage }} of the time.',
              description: 'Over %g %% of the last %s throttled for temperature, for %s: a fan, the airflow or the room.' % [$._config.throttleShare * 100, $._config.throttleWindow, $._config.throttleFor],
              runbook_url: runbook('gpu-node-xid'),
              dashboard_url: panel('gpuops-pool-detail/gpu-temperature', ['Hostname']),
            },
          },
          {
            alert: 'GpuRowRemapFailure',
            expr: q.GPU_ROW_REMAP_FAILURE,
            'for': $._config.remapFor,
            labels: { severity: 'critical', team: $._config.platformTeam },
            annotations: {
              summary: 'GPU {{ $labels.gpu }} on {{ $labels.Hostname }} could not remap a row after an uncorrectable memory error.',
              description: 'Its memory is unsafe until the GPU is reset: drain the node, reset the GPU, and replace it if it fails again.',
              runbook_url: runbook('gpu-node-xid'),
              dashboard_url: panel('gpuops-pool-detail/xid-errors-by-gpu', ['Hostname']),
            },
          },
          {
            alert: 'GpuUncorrectableMemoryErrors',
            expr: '%s > 0' % over(q.GPU_UNCORRECTABLE_ROWS, $._config.eccWindow),
            'for': $._config.eccFor,
            labels: { severity: 'warning', team: $._config.platformTeam },
            annotations: {
              summary: 'GPU {{ $labels.gpu }} on {{ $labels.Hostname }} remapped {{ $value }} memory rows for uncorrectable errors.',
              description: 'Within %s: the work on it was hit, and the remap takes effect at the next GPU reset. Schedule one.' % $._config.eccWindow,
              runbook_url: runbook('gpu-node-xid'),
              dashboard_url: panel('gpuops-pool-detail/xid-errors-by-gpu', ['Hostname']),
            },
          },
          {
            alert: 'GpuLinkErrors',
            expr: '%s > %g' % [over(q.GPU_LINK_ERRORS, $._config.linkWindow), $._config.linkErrors],
            'for': $._config.linkFor,
            labels: { severity: 'warning', team: $._config.platformTeam },
            annotations: {
              summary: 'GPU {{ $labels.gpu }} on {{ $labels.Hostname }} had {{ $value | printf "%.0f" }} NVLink and PCIe errors and replays.',
              description: 'Over %g within %s, for %s: a link is going bad (a cable, a riser, a switch). Collectives on it slow down, then fail.' % [$._config.linkErrors, $._config.linkWindow, $._config.linkFor],
              runbook_url: runbook('gpu-node-xid'),
              dashboard_url: panel('gpuops-pool-detail/xid-errors-by-gpu', ['Hostname']),
            },
          },
          {
            alert: 'StorageSaturated',
            // Either sign of a store that does not keep up: the disks always have IO in flight (writers
            // blocked behind it), or the traffic presses the catalog's ceiling for the pool's store.
            // Both recorded (gpuops.rules): Prometheus evaluates each expression once.
            expr: '(gpuops:pool_region:disk_busy:max > %g) or (gpuops:pool_region:storage_ceiling:ratio > %g)' % [$._config.storageBusy, $._config.storageCeiling],
            'for': $._config.storageFor,
            labels: { severity: 'warning', team: $._config.platformTeam },
            annotations: {
              summary: 'Storage IO of pool {{ $labels.pool }} in {{ $labels.region }} is saturated ({{ $value | humanizePercentage }}).',
              description: 'For %s its busiest disk had IO in flight over %g %% of the time, or its traffic was over %g %% of its store\'s ceiling: transcode slows and fails. Check the store (NFS server, object-store throttling) and shed or move transcode work.' % [$._config.storageFor, $._config.storageBusy * 100, $._config.storageCeiling * 100],
              dashboard_url: panel('gpuops-pool-detail/storage-traffic-against-the-ceiling', ['pool', 'region']),
            },
          },
          {
            alert: 'GpuExporterAbsent',
            expr: q.GPU_EXPORTER_ABSENT,
            'for': $._config.exporterAbsentFor,
            labels: { severity: 'critical', team: $._config.platformTeam },
            annotations: {
              summary: 'No GPU of the fleet is reported: dcgm-exporter is gone or not scraped.',
              description: 'For %s no DCGM_FI_DEV_GPU_UTIL series at all: every GPU alert and view is blind.' % $._config.exporterAbsentFor,
              runbook_url: runbook('gpu-node-xid'),
              dashboard_url: panel('gpuops-fleet-overview/ready-nodes-by-region'),
            },
          },
        ] + [
          {
            // `up` per scrape target: a dcgm-exporter pod of a node, kube-state-metrics, OpenCost.
            alert: 'ExporterDown',
            expr: 'up{%s} == 0' % e.selector,
            'for': $._config.exporterDownFor,
            labels: { severity: 'warning', team: $._config.platformTeam, exporter: e.name },
            annotations: {
              summary: '{{ $labels.instance }} of %s ({{ $labels.job }}) cannot be scraped.' % e.name,
              description: 'For %s: what it exports is missing or stale in every view and alert that reads it.' % $._config.exporterDownFor,
              runbook_url: runbook('gpu-node-xid'),
              dashboard_url: panel('gpuops-fleet-overview/ready-nodes-by-region'),
            },
          }
          for e in $._config.exporters
        ] + [
          {
            // The dead man's switch: always firing, so a receiver that stops hearing it knows alerting broke.
            alert: 'Watchdog',
            expr: 'vector(1)',
            labels: { severity: 'none', team: $._config.platformTeam },
            annotations: {
              summary: 'Alerting works: this alert always fires.',
              description: 'Prometheus evaluates rules and Alertmanager delivers. Its receiver alarms when it stops arriving.',
            },
          },
        ],
      },
      // Alerts that need every cluster's series: a global view evaluates them (with the records alone there,
      // the clusters run every other group). In one cluster's own Prometheus they never fire.
      {
        name: 'gpuops.clusters',
        rules: [
          {
            alert: 'ClusterDown',
            expr: over($._config.clusterDown, $._config.clusterWindow),
            'for': $._config.clusterDownFor,
            labels: { severity: 'critical', team: $._config.platformTeam },
            annotations: {
              summary: 'Cluster {{ $labels.%s }} is lost to the global view.' % $._config.clusterLabel,
              description: 'For %s every scrape in cluster {{ $labels.%s }} has failed, or its Prometheus has stopped sending: its API and its regions are likely gone. Move its regions\' traffic to the other clusters.' % [$._config.clusterDownFor, $._config.clusterLabel],
              runbook_url: runbook('region-failover'),
              dashboard_url: panel('gpuops-fleet-overview/ready-nodes-by-region', [$._config.clusterLabel]),
            },
          },
        ],
      },
    ],
  },
}
