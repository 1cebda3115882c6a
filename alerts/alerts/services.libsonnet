// Services: degraded, erroring, GPUs gone.
{
  local lib = (import '../lib/gpuops.libsonnet')($),
  local q = lib.q,
  local runbook = lib.runbook,
  local panel = lib.panel,
  prometheusAlerts+:: {
    groups+: [
      {
        name: 'gpuops.services',
        rules: [
          {
            alert: 'ServiceDegraded',
            expr: q.SERVICE_NOT_NORMAL,
            'for': $._config.degradedFor,
            labels: { severity: 'warning' },
            annotations: {
              summary: '{{ $labels.service }} in {{ $labels.region }} runs in {{ $labels.mode }} mode.',
              description: 'A fallback is on (rules model or CPU): restore normal mode when the cause is gone.',
              runbook_url: runbook('restore-normal'),
              dashboard_url: panel('gpuops-services/serving-mode', ['team', 'service', 'region']),
            },
          },
          {
            alert: 'ServiceErrorsHigh',
            expr: '%s > %g' % [q.SERVICE_ERROR_RATIO_BY_TEAM, $._config.errorRatio],
            'for': $._config.errorsFor,
            labels: { severity: 'critical' },
            annotations: {
              summary: '{{ $labels.service }} in {{ $labels.region }} fails {{ $value | humanizePercentage }} of its requests.',
              description: 'Over %g %% for %s: demand beyond what its replicas serve, or an outage. Add capacity or degrade.' % [$._config.errorRatio * 100, $._config.errorsFor],
              runbook_url: runbook('pre-scale'),
              dashboard_url: panel('gpuops-services/error-ratio', ['team', 'service', 'region']),
            },
          },
        ],
      },
    ],
  },
}
