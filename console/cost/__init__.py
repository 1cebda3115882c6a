"""Cost: GPU-hours attributed to pods, teams and pools from Prometheus, priced from the catalog; budgets,
savings and exports (FOCUS). Pure modules except `gather`, which reads Prometheus."""
