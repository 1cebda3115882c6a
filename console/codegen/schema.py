"""Where Grafana's dashboard JSON schema lives: shipped in the package, so an installed gpuops reads nothing
outside itself.

`grafana-dashboard.jsonschema.json` is Grafana's own dashboard schema (JSON Schema draft-07), generated from
Grafana's schemas, from grafana/grafana-foundation-sdk `jsonschema/` (Apache License 2.0), shipped unchanged:
its "TODO" descriptions are Grafana's text. `gpuops lint` and the Readiness checklist validate built dashboards
against it.
"""

from pathlib import Path

DEFAULT_SCHEMA = Path(__file__).resolve().parent / "grafana-dashboard.jsonschema.json"
