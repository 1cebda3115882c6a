// The gpuops monitoring mixin, in the kubernetes-mixin convention: `prometheusRules` (recording rules) and
// `prometheusAlerts`, with a `_config` for selectors and thresholds.
//
// `gpuops build` overrides `_config` from fleet.yaml and passes every PromQL expression by its name from
// console/fleet/queries.py (`_config.queries`), so each expression is written once, in Python.
//
// This file only imports: config.libsonnet the settings, lib/ what the others share, rules/ the recording
// rules and alerts/ the alerts, one file per group (groups in this order).
(import 'config.libsonnet')
+ (import 'rules/slo.libsonnet')
+ (import 'rules/fleet.libsonnet')
+ (import 'rules/budgets.libsonnet')
+ (import 'alerts/fleet.libsonnet')
+ (import 'alerts/gpus.libsonnet')
+ (import 'alerts/services.libsonnet')
+ (import 'alerts/slo.libsonnet')
+ (import 'alerts/events.libsonnet')
+ (import 'alerts/budgets.libsonnet')
+ (import 'alerts/quotas.libsonnet')
