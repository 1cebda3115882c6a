// The Alertmanager configuration, from the catalog: one route per team (PagerDuty first for a critical
// alert of a team marked critical, then the team's chat: Slack, and Feishu/Lark cards through `gpuops relay`
// for a team with a Feishu group), the platform
// team as the default, the Watchdog to its dead man's switch, a region that is down silencing that region's
// per-service alerts, and each alert's graver form muting its milder one.
// Secrets are files Alertmanager reads (`*_file`), never values here.
//
// `config`: { teams: [{name, channel, pager, feishu}], alerting: {platform_team, secrets_dir, relay_url, ...} }
function(config)
  local a = config.alerting;
  local secret(name) = '%s/%s' % [a.secrets_dir, name];
  local teams = config.teams + [{
    name: a.platform_team,
    channel: '#%s-alerts' % a.platform_team,
    pager: true,
    feishu: a.platform_feishu_group,
  }];
  local chat(t) = {
    name: t.name + '-chat',
    slack_configs: [{
      api_url_file: secret('slack-' + t.name),
      channel: t.channel,
      send_resolved: true,
      title: '{{ .Status | toUpper }}: {{ .CommonLabels.severity }}: {{ .CommonLabels.alertname }}',
      text: |||
        {{ range .Alerts }}{{ .Annotations.summary }}
        runbook: {{ .Annotations.runbook_url }}
        dashboard: {{ .Annotations.dashboard_url }}
        {{ end }}
      |||,
    }],
    [if t.feishu != '' then 'webhook_configs']: [{
      url: '%s/feishu/%s' % [std.rstripChars(a.relay_url, '/'), t.name],
      send_resolved: true,
      http_config: { authorization: { type: 'Bearer', credentials_file: secret('relay-token') } },
    }],
  };
  // A graver alert mutes its milder form on the same object: [source, target, the labels that must match].
  local graver = [
    ['LatencySloFastBurn', 'LatencySloSlowBurn', ['service', 'region']],
    ['LatencySloFastBurn', 'LatencySloTicket', ['service', 'region']],
    ['LatencySloSlowBurn', 'LatencySloTicket', ['service', 'region']],
    ['AvailabilitySloFastBurn', 'AvailabilitySloSlowBurn', ['service', 'region']],
    ['AvailabilitySloFastBurn', 'AvailabilitySloTicket', ['service', 'region']],
    ['AvailabilitySloSlowBurn', 'AvailabilitySloTicket', ['service', 'region']],
    ['QuotaFull', 'QuotaNearlyFull', ['namespace', 'resource']],
    ['TeamBudgetProjected100', 'TeamBudgetProjected80', ['team']],
    ['GpuHardwareSlowdown', 'GpuThermalThrottling', ['Hostname', 'gpu']],
    ['GpuRowRemapFailure', 'GpuUncorrectableMemoryErrors', ['Hostname', 'gpu']],
  ];
  local pager(t) = {
    name: t.name + '-pagerduty',
    pagerduty_configs: [{ routing_key_file: secret('pagerduty-' + t.name), send_resolved: true }],
  };
  {
    global: { resolve_timeout: '5m' },
    route: {
      receiver: a.platform_team + '-chat',
      group_by: ['alertname', 'team', 'region'],
      group_wait: a.group_wait,
      group_interval: a.group_interval,
      repeat_interval: a.repeat_interval,
      routes: [{
        // Always firing: its receiver alarms when it stops arriving (a dead man's switch, e.g. healthchecks.io).
        matchers: ['alertname="Watchdog"'],
        receiver: 'watchdog',
        group_wait: '0s',
        group_interval: '1m',
        repeat_interval: '1m',
      }] + std.flattenArrays([
        (if t.pager then [{
           matchers: ['team="%s"' % t.name, 'severity="critical"'],
           receiver: t.name + '-pagerduty',
           continue: true,
         }] else [])
        + [{ matchers: ['team="%s"' % t.name], receiver: t.name + '-chat' }]
        for t in teams
      ]),
    },
    inhibit_rules: [
      {
        // A region that is down explains every per-service alert there: page for the region only.
        source_matchers: ['alertname="RegionDown"'],
        target_matchers: ['service=~".+"'],
        equal: ['region'],
      },
      {
        // Nor is a node of that region whose GPUs stopped reporting news.
        source_matchers: ['alertname="RegionDown"'],
        target_matchers: ['alertname="NodeGpusGone"'],
        equal: ['region'],
      },
    ] + [
      { source_matchers: ['alertname="%s"' % g[0]], target_matchers: ['alertname="%s"' % g[1]], equal: g[2] }
      for g in graver
    ],
    receivers: [chat(t) for t in teams] + [pager(t) for t in teams if t.pager] + [
      {
        name: 'watchdog',
        [if a.watchdog_url != '' then 'webhook_configs']: [{ url: a.watchdog_url, send_resolved: false }],
      },
    ],
  }
