// Each team's month to date and projected month, against its budget.
{
  local lib = (import '../lib/gpuops.libsonnet')($),
  local q = lib.q,
  prometheusRules+:: {
    groups+: [
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
}
