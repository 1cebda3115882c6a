// Budgets: a team's projected month against its budget.
{
  local lib = (import '../lib/gpuops.libsonnet')($),
  local q = lib.q,
  local over = lib.over,
  local runbook = lib.runbook,
  local panel = lib.panel,
  prometheusAlerts+:: {
    groups+: [
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
    ],
  },
}
