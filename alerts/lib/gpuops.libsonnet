// What the rule and alert files share: the named expressions, windows, and the runbook and panel links an
// alert carries, and the SLO burn-rate alerts. A function of the mixin's root, for its `_config`:
//   local lib = (import '../lib/gpuops.libsonnet')($),
function(root)
  local q = root._config.queries;
  // A named expression over one of the `_config` windows (`__WINDOW__` in console/fleet/queries.py).
  local over(expr, window) = std.strReplace(expr, '__WINDOW__', window);
  local runbook(name) = '%s/%s.yaml' % [root._config.runbookBase, name];
  // A panel's URL by dashboard uid and panel anchor; a link to a panel no dashboard has fails the build.
  // `labels`: the alert's labels that name a dashboard variable, which the link sets (`var-service=…`), so
  // the panel opens on the alert's service, node or team; a variable takes the first of its labels present.
  local varLabels = { node: ['Hostname', 'node'] };
  // `fixed`: values the rule itself sets (its `labels:`), which annotation templates cannot read.
  local panel(key, labels=[], fixed={}) =
    local uid = std.split(key, '/')[0];
    local vars = if std.objectHas(root._config.panelVars, uid) then root._config.panelVars[uid] else [];
    local from(v) = [l for l in (if std.objectHas(varLabels, v) then varLabels[v] else [v]) if std.member(labels, l)];
    if !std.objectHas(root._config.panels, key) then error 'dashboard_url: no built dashboard panel %s' % key
    else root._config.panels[key] + std.join('', [
      if std.objectHas(fixed, v) then '&var-%s=%s' % [v, fixed[v]]
      else '&var-%s={{ $labels.%s | urlquery }}' % [v, from(v)[0]]
      for v in vars
      if std.objectHas(fixed, v) || std.length(from(v)) > 0
    ]);

  // The two SLOs of each service, spent by the same burn-rate alerts: latency (requests slower than its
  // objective) and availability (requests that failed).
  local missRecord(kind, w) = 'gpuops:service_region:%s_slo_miss:ratio_rate%s' % [kind, w];
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
  };
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
  };
  // Page fast, page slow, ticket: each tier by the name of its alert, per SLO kind.
  local burnTiers = [['FastBurn', 'fastBurn'], ['SlowBurn', 'slowBurn'], ['Ticket', 'ticketBurn']];
  {
    q: q,
    over: over,
    runbook: runbook,
    varLabels: varLabels,
    panel: panel,
    missRecord: missRecord,
    sloKinds: sloKinds,
    burnAlert: burnAlert,
    burnTiers: burnTiers,
  }
