"""Ops as code: Prometheus rules and (later) the Alertmanager config and dashboards, built from the catalog."""
