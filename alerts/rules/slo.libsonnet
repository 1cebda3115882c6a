// Each service's SLO miss ratios over the burn-rate windows.
{
  local lib = (import '../lib/gpuops.libsonnet')($),
  local missRecord = lib.missRecord,
  local sloKinds = lib.sloKinds,
  prometheusRules+:: {
    groups+: [
      {
        name: 'gpuops.slo.rules',
        rules: [
          // The service as a rule label too: one rule per service and window, each one of a kind for promtool.
          { record: missRecord(kind, w), expr: sloKinds(s)[kind].miss[w], labels: { service: s.service } }
          for s in $._config.slos
          for kind in ['latency', 'availability']
          for w in std.objectFields(sloKinds(s)[kind].miss)
        ],
      },
    ],
  },
}
