// GPU health: XID errors, throttling, ECC and row remapping, NVLink and PCIe.
{
  local lib = (import '../lib/gpuops.libsonnet')($),
  local q = lib.q,
  local over = lib.over,
  local runbook = lib.runbook,
  local panel = lib.panel,
  prometheusAlerts+:: {
    groups+: [
      {
        name: 'gpuops.gpus',
        rules: [
          {
            alert: 'GpusAllocatedIdle',
            expr: '%s > 0' % over(q.NAMESPACE_GPUS_IDLE, $._config.idleWindow),
            'for': $._config.idleFor,
            labels: { severity: 'warning' },
            annotations: {
              summary: '{{ $value }} GPUs in {{ $labels.namespace }} are allocated but under 5 % busy.',
              description: 'Under 5 %% busy on average over %s: reclaim them for the services that need them.' % $._config.idleWindow,
              runbook_url: runbook('reclaim-idle-gpus'),
              dashboard_url: panel('gpuops-fleet-overview/idle-gpus-by-pool'),
            },
          },
          {
            alert: 'GpuMemoryNearFull',
            expr: '%s > %g' % [q.GPU_MEMORY_USED_RATIO, $._config.gpuMemoryFull],
            'for': $._config.gpuMemoryFor,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'GPU {{ $labels.gpu }} on {{ $labels.Hostname }} ({{ $labels.pod }}) uses {{ $value | humanizePercentage }} of its memory.',
              description: 'Over %g %% for %s: the next batch may fail with out-of-memory.' % [$._config.gpuMemoryFull * 100, $._config.gpuMemoryFor],
              runbook_url: runbook('pre-scale'),
              dashboard_url: panel('gpuops-pool-detail/gpu-memory-used', ['Hostname']),
            },
          },
          {
            alert: 'NodeGpusGone',
            expr: '%s > 0' % q.NODE_GPUS_MISSING,
            'for': $._config.gpusGoneFor,
            labels: { severity: 'critical', team: $._config.platformTeam },
            annotations: {
              summary: '{{ $value }} GPUs of node {{ $labels.node }} are no longer reported.',
              description: 'The node advertises GPUs its exporter does not see: a GPU fell off the bus, or the exporter is down.',
              runbook_url: runbook('gpu-node-xid'),
              dashboard_url: panel('gpuops-pool-detail/gpus-missing-by-node', ['node']),
            },
          },
        ],
      },
    ],
  },
}
