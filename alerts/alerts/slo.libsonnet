// SLO burn rates: page fast, page slow, ticket (Google's SRE workbook).
{
  local lib = (import '../lib/gpuops.libsonnet')($),
  local burnAlert = lib.burnAlert,
  local burnTiers = lib.burnTiers,
  prometheusAlerts+:: {
    groups+: [
      {
        name: 'gpuops.slo',
        rules: [
          burnAlert('%sSlo%s' % [prefix, t[0]], s, std.asciiLower(prefix), $._config[t[1]])
          for s in $._config.slos
          for prefix in ['Latency', 'Availability']
          for t in burnTiers
        ],
      },
    ],
  },
}
