"""Where Grafana's dashboard JSON schema lives: shipped in the package, so an installed gpuops reads nothing
outside itself."""

from pathlib import Path

DEFAULT_SCHEMA = Path(__file__).resolve().parent / "grafana-dashboard.jsonschema.json"
