// What the console, the dashboards and the alerts read: pools, quotas, services, costs, catalog constants.
{
  local lib = (import '../lib/gpuops.libsonnet')($),
  local q = lib.q,
  prometheusRules+:: {
    groups+: [
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
        ] + [
          // Every part of a pool's row, as the console reads it where these rules run (and the dashboards).
          { record: r.record, expr: r.expr }
          for r in $._config.poolRecords
        ] + [
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
        ] + std.flattenArrays([
          // Each pool store's ceiling (read + write, bytes a second, per region), from the catalog, and the
          // pool's storage traffic over it (what StorageSaturated and the pool detail's panel read).
          [
            { record: 'gpuops:store:ceiling_bytes', expr: 'vector(%g)' % p.ceiling, labels: { pool: p.pool } },
            { record: 'gpuops:pool_region:storage_ceiling:ratio', expr: p.ratio },
          ]
          for p in $._config.storage
        ]) + [
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
    ],
  },
}
