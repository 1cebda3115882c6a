// The gpuops monitoring mixin, in the kubernetes-mixin convention: `prometheusRules` (recording rules) and
// `prometheusAlerts`, with a `_config` for selectors and thresholds.
//
// `gpuops build` overrides `_config` from fleet.yaml and passes every PromQL expression by its name from
// console/fleet/queries.py (`_config.queries`), so each expression is written once, in Python.
{
  _config+:: {
    queries: error '_config.queries: the named PromQL expressions come from `gpuops build`',
    services: [],  // [{service, team}] from the catalog
    slos: [],
    budgets: [],  // [{team, monthly}] from the catalog
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
  },

  local q = $._config.queries,
  // A named expression over one of the `_config` windows (`__WINDOW__` in console/fleet/queries.py).
  local over(expr, window) = std.strReplace(expr, '__WINDOW__', window),
  local runbook(name) = '%s/%s.yaml' % [$._config.runbookBase, name],
  // A panel's URL by dashboard uid and panel anchor; a link to a panel no dashboard has fails the build.
  // `labels`: the alert's labels that name a dashboard variable, which the link sets (`var-service=…`), so
  // the panel opens on the alert's service, node or team; a variable takes the first of its labels present.
  local varLabels = { node: ['Hostname', 'node'] },
  // `fixed`: values the rule itself sets (its `labels:`), which annotation templates cannot read.
  local panel(key, labels=[], fixed={}) =
    local uid = std.split(key, '/')[0];
    local vars = if std.objectHas($._config.panelVars, uid) then $._config.panelVars[uid] else [];
    local from(v) = [l for l in (if std.objectHas(varLabels, v) then varLabels[v] else [v]) if std.member(labels, l)];
    if !std.objectHas($._config.panels, key) then error 'dashboard_url: no built dashboard panel %s' % key
    else $._config.panels[key] + std.join('', [
      if std.objectHas(fixed, v) then '&var-%s=%s' % [v, fixed[v]]
      else '&var-%s={{ $labels.%s | urlquery }}' % [v, from(v)[0]]
      for v in vars
      if std.objectHas(fixed, v) || std.length(from(v)) > 0
    ]),

  // The two SLOs of each service, spent by the same burn-rate alerts: latency (requests slower than its
  // objective) and availability (requests that failed).
  local missRecord(kind, w) = 'gpuops:service_region:%s_slo_miss:ratio_rate%s' % [kind, w],
  local sloKinds(s) = {
    latency: {
      target: s.target,
      miss: s.miss,
      what: 'latency',
      spent: 'took longer than %ss' % s.le,
      objective: '%g %% within it' % (s.target * 100),
      panel: 'gpuops-services/latency-slo-misses',
    },
    availability: {
      target: s.availability.target,
      miss: s.availability.miss,
      what: 'availability',
      spent: 'failed',
      objective: '%g %% succeed' % (s.availability.target * 100),
      panel: 'gpuops-services/error-ratio',
    },
  },
  local burnAlert(name, s, kind, b) = {
    local k = sloKinds(s)[kind],
    local budget = 1 - k.target,
    alert: name,
    expr: '%s{service="%s"} > %g and %s{service="%s"} > %g' % [
      missRecord(kind, b.long), s.service, b.factor * budget, missRecord(kind, b.short), s.service, b.factor * budget,
    ],
    'for': b['for'],
    labels: { severity: b.severity, team: s.team, service: s.service },
    annotations: {
      summary: '{{ $labels.service }} in {{ $labels.region }} spends its %s error budget %gx too fast.' % [k.what, b.factor],
      description: 'Over %s and %s, more than %g %% of requests %s (objective: %s).' % [
        b.long, b.short, b.factor * budget * 100, k.spent, k.objective,
      ],
      runbook_url: runbook('pre-scale'),
      dashboard_url: panel(k.panel, ['service', 'region'], { team: s.team }),
    },
  },
  // Page fast, page slow, ticket: each tier by the name of its alert, per SLO kind.
  local burnTiers = [['FastBurn', 'fastBurn'], ['SlowBurn', 'slowBurn'], ['Ticket', 'ticketBurn']],

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
      {
        name: 'gpuops.rules',
        rules: [
          { record: 'gpuops:node_pool:info', expr: q.NODE_POOL_INFO },
          { record: 'gpuops:pool_region:gpu_busy:avg', expr: q.POOL_GPU_BUSY_AVG },
          { record: 'gpuops:pool_region:gpus_idle:sum', expr: q.POOL_GPUS_IDLE },
          { record: 'gpuops:pool_region:gpu_memory_used:ratio', expr: q.POOL_GPU_MEMORY_RATIO },
          { record: 'gpuops:namespace_resource:gpu_requests:sum', expr: q.NAMESPACE_GPU_REQUESTS },
          { record: 'gpuops:namespace_resource:quota_used:ratio', expr: q.QUOTA_USED_RATIO },
          { record: 'gpuops:service_region:requests:rate1m', expr: q.SERVICE_RPS },
          { record: 'gpuops:service_region:errors:ratio_rate1m', expr: q.SERVICE_ERROR_RATIO },
          { record: 'gpuops:service_region:latency_p95:seconds', expr: q.SERVICE_P95_SECONDS },
          { record: 'gpuops:namespace:gpu_cost_per_hour:sum', expr: $._config.namespaceGpuCost },
        ] + [
          // Each team's SLA tier multiplier, from the catalog, before the team cost that reads it.
          { record: 'gpuops:team_price:multiplier', expr: 'vector(%g)' % t.multiplier, labels: { team: t.team } }
          for t in $._config.tiers
        ] + [
          { record: 'gpuops:team:gpu_cost_per_hour:sum', expr: q.TEAM_GPU_COST_PER_HOUR },
          { record: 'gpuops:team:gpus:sum', expr: $._config.teamGpus },
          // The same with the month they were read in, for the budget's month to date.
          { record: 'gpuops:team_month:gpu_cost_per_hour:sum', expr: q.TEAM_COST_BY_MONTH },
          { record: 'gpuops:team_month:gpus:sum', expr: q.TEAM_GPUS_BY_MONTH },
          // What the dashboards read.
          { record: 'gpuops:region:nodes_ready:sum', expr: q.REGION_NODES_READY },
          { record: 'gpuops:pool_region:gpus:count', expr: q.POOL_GPUS },
          { record: 'gpuops:pool_region:gpus_allocatable:sum', expr: q.POOL_GPUS_ALLOCATABLE },
          { record: 'gpuops:pool_region:gpus_requested:sum', expr: q.POOL_GPUS_REQUESTED },
          { record: 'gpuops:pool_region:gpu_power:watts', expr: q.POOL_GPU_POWER_WATTS },
          { record: 'gpuops:namespace_team:info', expr: q.NAMESPACE_TEAM },
          { record: 'gpuops:team:gpu_requests:sum', expr: q.TEAM_GPU_REQUESTS },
          { record: 'gpuops:node:gpus_missing:sum', expr: q.NODE_GPUS_MISSING },
          { record: 'gpuops:service_region:mode:code', expr: q.SERVICE_MODE_CODE },
          { record: 'gpuops:service_region:gpu_busy:avg', expr: q.SERVICE_GPU_BUSY },
          { record: 'gpuops:service_region:replicas_available:sum', expr: q.SERVICE_REPLICAS_AVAILABLE },
          { record: 'gpuops:service_region:replicas_desired:sum', expr: q.SERVICE_REPLICAS_DESIRED },
        ] + [
          // Each service's latency objective, in seconds, beside its p95.
          {
            record: 'gpuops:service:latency_slo:seconds',
            expr: 'vector(%s)' % s.le,
            labels: { service: s.service },
          }
          for s in $._config.slos
        ] + [
          // Which team owns a service: a constant series per service, from the catalog.
          {
            record: 'gpuops:service_team:info',
            expr: 'vector(1)',
            labels: { service: s.service, team: s.team },
          }
          for s in $._config.services
        ] + [
          { record: 'gpuops:service_region:capacity_rps', expr: c.expr, labels: { service: c.service } }
          for c in $._config.capacity
        ] + [
          // 1 from a week before an event until its end: when its capacity alerts apply.
          { record: 'gpuops:event:upcoming', expr: e.window, labels: { event: e.event } }
          for e in $._config.events
        ] + [
          // Each team's monthly budget, from the catalog, as a series the budget alerts divide by.
          { record: 'gpuops:team_budget:monthly', expr: 'vector(%g)' % b.monthly, labels: { team: b.team } }
          for b in $._config.budgets
        ] + std.flattenArrays([
          // A monthly package's price and the GPU-hours it includes, for the team's projected month.
          [
            { record: 'gpuops:team_package:price', expr: 'vector(%g)' % p.price, labels: { team: p.team } },
            { record: 'gpuops:team_package:included_hours', expr: 'vector(%g)' % p.included, labels: { team: p.team } },
          ]
          for p in $._config.packages
        ]),
      },
      {
        // Each team's projected month, after the cost rates it reads: 31 days of them sampled each hour,
        // read per month in one subquery each (milliseconds).
        name: 'gpuops.budget.rules',
        rules: [
          { record: 'gpuops:team:gpu_cost:month_to_date', expr: q.TEAM_COST_MONTH_TO_DATE },
          { record: 'gpuops:team:gpu_hours:month_to_date', expr: q.TEAM_GPU_HOURS_MONTH_TO_DATE },
          { record: 'gpuops:team:hours_measured:month_to_date', expr: q.TEAM_HOURS_MEASURED },
          { record: 'gpuops:team:gpu_cost:projected', expr: q.TEAM_PROJECTED_COST },
          { record: 'gpuops:team:budget_projected:ratio', expr: q.TEAM_BUDGET_PROJECTED_RATIO },
        ],
      },
    ],
  },

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
      {
        name: 'gpuops.slo',
        rules: [
          burnAlert('%sSlo%s' % [prefix, t[0]], s, std.asciiLower(prefix), $._config[t[1]])
          for s in $._config.slos
          for prefix in ['Latency', 'Availability']
          for t in burnTiers
        ],
      },
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
      {
        name: 'gpuops.budgets',
        rules: [
          {
            alert: 'TeamBudgetProjected80',
            expr: '%s >= %g < 1' % [q.TEAM_BUDGET_PROJECTED_RATIO, $._config.budgetWarning],
            'for': $._config.budgetFor,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'Team {{ $labels.team }} is on course to spend {{ $value | humanizePercentage }} of its monthly GPU budget.',
              description: 'Each hour of the month so far at its GPU cost (an hour before the data Prometheus holds: at the rate now), and the hours left at the rate now (a monthly package: its price plus the hours beyond it), come to over %g %% of the budget.' % ($._config.budgetWarning * 100),
              runbook_url: runbook('reclaim-idle-gpus'),
              dashboard_url: panel('gpuops-teams/budget-projected-for-the-month', ['team']),
            },
          },
          {
            alert: 'TeamBudgetProjected100',
            expr: '%s >= 1' % q.TEAM_BUDGET_PROJECTED_RATIO,
            'for': $._config.budgetFor,
            labels: { severity: 'critical' },
            annotations: {
              summary: 'Team {{ $labels.team }} is on course to spend {{ $value | humanizePercentage }} of its monthly GPU budget.',
              description: 'Each hour of the month so far at its GPU cost (an hour before the data Prometheus holds: at the rate now), and the hours left at the rate now (a monthly package: its price plus the hours beyond it), come to over the budget.',
              runbook_url: runbook('reclaim-idle-gpus'),
              dashboard_url: panel('gpuops-teams/budget-projected-for-the-month', ['team']),
            },
          },
        ],
      },
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
