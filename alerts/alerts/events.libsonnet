// Events: capacity headroom before and during a traffic event.
{
  local lib = (import '../lib/gpuops.libsonnet')($),
  local runbook = lib.runbook,
  local panel = lib.panel,
  prometheusAlerts+:: {
    groups+: [
      {
        name: 'gpuops.events',
        rules: [
          {
            alert: 'CapacityHeadroomLow',
            // Headroom left if the last day's peak came back multiplied: under the buffer, pre-scale.
            expr: '%s < %g and on () gpuops:event:upcoming{event="%s"}' % [svc.headroom, e.buffer, e.event],
            'for': $._config.capacityFor,
            labels: { severity: 'warning', team: svc.team, event: e.event, service: svc.service },
            annotations: {
              summary: '{{ $labels.service }} in {{ $labels.region }} would keep {{ $value | humanizePercentage }} headroom at %s (needs %g %%).' % [e.event, e.buffer * 100],
              description: 'The last day\'s peak x %g against the ready replicas: pre-scale before the event.' % e.multiplier,
              runbook_url: runbook('pre-scale'),
              dashboard_url: panel(svc.panel, ['region']),
            },
          }
          for e in $._config.events
          for svc in e.services
        ],
      },
    ],
  },
}
