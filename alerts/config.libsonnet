// The mixin's settings: thresholds, windows and `for` durations, with the lists `gpuops build` fills from
// fleet.yaml (services, SLOs, budgets, events, the exporters' selectors) and every named PromQL expression
// from console/fleet/queries.py (`queries`). A team tunes a threshold here.
{
  _config+:: {
    queries: error '_config.queries: the named PromQL expressions come from `gpuops build`',
    poolRecords: [],  // [{record, expr}]: each part of a pool's row, by the name the console reads it
    services: [],  // [{service, team}] from the catalog
    slos: [],
    budgets: [],  // [{team, monthly}] from the catalog
    storage: [],  // [{pool, ceiling, ratio}]: each pool store's ceiling (bytes a second per region) from the catalog
    packages: [],  // [{team, price, included}]: the teams billed a monthly package, from the catalog
    tiers: [],  // [{team, multiplier}]: each team's SLA tier price multiplier, from the catalog
    // The namespace GPU cost expression: `gpuops build` passes one that counts the catalog's MIG instances.
    namespaceGpuCost: self.queries.NAMESPACE_GPU_COST_PER_HOUR,
    teamGpus: self.queries.TEAM_GPUS,  // the same, for the GPUs each team holds
    capacity: [],  // [{service, team, expr}]: requests a second each service's ready replicas serve
    events: [],  // [{event, multiplier, buffer, services: [{service, team, headroom, panel}], window}] from the catalog
    // '<dashboard uid>/<panel anchor>': URL, from the built dashboards; each alert links its panel.
    panels: {},
    panelVars: {},  // '<dashboard uid>': [its template variables], from the built dashboards
    capacityFor: '15m',
    budgetWarning: 0.8,
    budgetFor: '1h',
    fastBurn: { factor: 14.4, long: '1h', short: '5m', 'for': '2m', severity: 'critical' },
    slowBurn: { factor: 6, long: '6h', short: '30m', 'for': '15m', severity: 'warning' },
    ticketBurn: { factor: 1, long: '3d', short: '6h', 'for': '1h', severity: 'info' },
    platformTeam: 'sre',  // fleet-wide alerts (a region, a node) go to this team
    runbookBase: 'runbooks',  // the catalog's grafana.runbooks_url
    quotaWarning: 0.80,
    quotaCritical: 0.95,
    regionDownFor: '2m',
    // A cluster lost to the global view (every scrape failing, or its Prometheus silent within the window).
    clusterLabel: 'cluster',
    clusterDown: self.queries.CLUSTER_DOWN,
    clusterDownFor: '2m',
    clusterWindow: '1h',  // a cluster silent this long is forgotten: the alert ends (its clusters are not in the rules)
    xidFor: '1m',
    xidWindow: '10m',  // a new hardware XID alerts this long after it appeared (the gauge keeps the last XID)
    throttleWindow: '5m',
    throttleShare: 0.10,  // of the time slowed for heat
    throttleFor: '10m',
    slowdownFor: '2m',
    remapFor: '1m',
    eccWindow: '30m',
    eccFor: '1m',
    linkWindow: '10m',
    linkErrors: 10,  // NVLink CRC errors, retries and PCIe replays within linkWindow
    linkFor: '5m',
    exporterAbsentFor: '5m',
    exporterDownFor: '5m',
    exporters: [],  // [{name, selector}]: the scrape jobs the fleet's views read, from the catalog's selectors
    quotaFor: '15m',
    idleWindow: '30m',  // GPUs idle on average over this window
    idleFor: '5m',
    gpuMemoryFull: 0.95,
    gpuMemoryFor: '10m',
    gpusGoneFor: '5m',
    degradedFor: '5m',
    errorRatio: 0.05,
    errorsFor: '2m',
    storageBusy: 0.9,  // a pool's busiest disk with IO in flight this share of the time
    storageCeiling: 0.9,  // a pool's storage traffic at this share of its store's ceiling
    storageFor: '5m',
  },
}
