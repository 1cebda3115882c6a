// Quotas and idle GPUs.
{
  local lib = (import '../lib/gpuops.libsonnet')($),
  local q = lib.q,
  local runbook = lib.runbook,
  local panel = lib.panel,
  prometheusAlerts+:: {
    groups+: [
      {
        name: 'gpuops.quotas',
        rules: [
          {
            alert: 'QuotaNearlyFull',
            expr: '%s >= %g < %g' % [q.QUOTA_USED_RATIO_BY_TEAM, $._config.quotaWarning, $._config.quotaCritical],
            'for': $._config.quotaFor,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'Namespace {{ $labels.namespace }} uses {{ $value | humanizePercentage }} of its {{ $labels.resource }} quota.',
              description: 'At %g %% of the quota, the next scale-up of {{ $labels.namespace }} may be refused.' % ($._config.quotaWarning * 100),
              runbook_url: runbook('reclaim-idle-gpus'),
              dashboard_url: panel('gpuops-teams/quota-used-by-namespace', ['team', 'namespace']),
            },
          },
          {
            alert: 'QuotaFull',
            expr: '%s >= %g' % [q.QUOTA_USED_RATIO_BY_TEAM, $._config.quotaCritical],
            'for': $._config.quotaFor,
            labels: { severity: 'critical' },
            annotations: {
              summary: 'Namespace {{ $labels.namespace }} uses {{ $value | humanizePercentage }} of its {{ $labels.resource }} quota.',
              description: 'At %g %% of the quota, scale-ups of {{ $labels.namespace }} are about to be refused.' % ($._config.quotaCritical * 100),
              runbook_url: runbook('reclaim-idle-gpus'),
              dashboard_url: panel('gpuops-teams/quota-used-by-namespace', ['team', 'namespace']),
            },
          },
        ],
      },
    ],
  },
}
