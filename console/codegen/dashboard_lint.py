"""Check built dashboards: Grafana's JSON schema, and every PromQL expression of every panel and variable.

The expressions are checked in two ways. Offline, each one becomes a recording rule in a temporary file that
`promtool check rules` parses (one group per panel query, so an error names the dashboard, panel and query).
With a Prometheus (`--prometheus`), each is also run as an instant query: it must parse there and, on a
fleet that is up, return data. Grafana's variables are replaced first: `$region` and the like by `.*`
(All), `$__rate_interval` and friends by fixed durations.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

from console.codegen.dashboards import BuiltDashboard
from console.codegen.lint import Finding, run_tool

# Grafana's built-in interval variables, as a Prometheus datasource would fill them on a 6h dashboard.
_BUILTINS = {
    "__rate_interval": "1m",
    "__interval": "30s",
    "__range": "1h",
    "__range_s": "3600",
    "__range_ms": "3600000",
}
_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]")
_LABEL_VALUES = re.compile(r"^\s*label_values\((.*),\s*\w+\s*\)\s*$", re.S)
_QUERY_RESULT = re.compile(r"^\s*query_result\((.*)\)\s*$", re.S)


@dataclass(frozen=True)
class Expression:
    dashboard: str  # uid
    source: str  # the built file
    where: str  # panel "<title>" query A, or variable $name
    expr: str  # as written in the dashboard
    promql: str  # variables replaced: what Prometheus gets

    @property
    def name(self) -> str:
        return f"{self.dashboard}: {self.where}"


def substitute(expr: str, variables: set[str]) -> str:
    """`expr` as Prometheus would get it with every variable on All. Like Grafana, only names the dashboard
    defines (and the built-ins) are replaced: `$1` in a label_replace stays `$1`."""

    def fill(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2) or m.group(3)
        if name in _BUILTINS:
            return _BUILTINS[name]
        return ".*" if name in variables else m.group(0)

    return _VARIABLE.sub(fill, expr)


def expressions(dashboards: list[BuiltDashboard]) -> Iterator[Expression]:
    """Every panel query and every query variable's selector, in file order."""
    for d in dashboards:
        src = str(d.path or d.source)
        names = {v["name"] for v in d.model.get("templating", {}).get("list", [])}
        for p in d.panels():
            for t in p.get("targets", []):
                expr = t.get("expr", "")
                where = f'panel "{p.get("title", "")}" query {t.get("refId", "?")}'
                yield Expression(d.uid, src, where, expr, substitute(expr, names))
        for v in d.model.get("templating", {}).get("list", []):
            if v.get("type") != "query":
                continue
            q = v.get("query", "")
            q = q.get("query", "") if isinstance(q, dict) else q
            m = _LABEL_VALUES.match(q) or _QUERY_RESULT.match(q)
            if m:  # Grafana's functions around a selector or expression: check what Prometheus runs
                yield Expression(d.uid, src, f"variable ${v['name']}", q, substitute(m.group(1), names))


def check_schema(dashboards: list[BuiltDashboard], schema_path: Path) -> list[Finding]:
    """Each dashboard against Grafana's dashboard JSON schema: every error with its JSON path."""
    import jsonschema

    validator = jsonschema.Draft7Validator(json.loads(schema_path.read_text()))
    out = []
    for d in dashboards:
        errors = []
        for e in sorted(validator.iter_errors(d.model), key=lambda e: list(map(str, e.absolute_path))):
            leaves = e.context or [e]  # a oneOf failure: the reasons inside it
            for c in leaves:
                path = "/".join(str(x) for x in c.absolute_path) or "(top)"
                errors.append(f"{path}: {c.message[:300]}")
        out.append(Finding("schema", f"{d.path or d.source}", not errors, "\n".join(errors)))
    return out


def check_promql_offline(exprs: list[Expression]) -> list[Finding]:
    """`promtool check rules` on one rule per expression: PromQL that does not parse names its panel."""
    if not exprs:
        return []
    groups = [
        {"name": f"{i}: {e.name}", "rules": [{"record": "gpuops_lint:check", "expr": e.promql}]}
        for i, e in enumerate(exprs)
    ]
    with tempfile.TemporaryDirectory(prefix="gpuops-lint-") as tmp:
        path = Path(tmp) / "dashboard-queries.yaml"
        path.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False, width=10_000))
        found = run_tool("promtool", ["check", "rules", str(path)], "dashboard queries")
    if found.ok:
        return [Finding("promtool check rules", f"{len(exprs)} dashboard queries", True, "")]
    out = []
    for i, e in enumerate(exprs):
        # promtool names the failing group; keep its message for that one expression.
        lines = [ln for ln in found.output.splitlines() if f'group "{i}: ' in ln]
        if lines:
            msg = "\n".join(ln.split('"gpuops_lint:check": ', 1)[-1] for ln in lines)
            out.append(Finding("promtool check rules", f"{e.source}: {e.where}", False, f"{msg}\n{e.expr}"))
    if not out:  # a failure promtool did not tie to a group
        out.append(found)
    return out


def check_promql_live(exprs: list[Expression], prometheus_url: str) -> list[Finding]:
    """Each expression as an instant query: it must parse in Prometheus and return at least one series."""
    from prometheus_api_client.exceptions import PrometheusApiClientException

    from console.sources.prometheus import PrometheusSource

    prom = PrometheusSource(prometheus_url, timeout_s=30)
    out = []
    for e in exprs:
        target = f"{e.source}: {e.where}"
        try:
            n = len(prom.query(e.promql))
        except PrometheusApiClientException as err:
            out.append(Finding("prometheus query", target, False, f"{err}\n{e.expr}"))
            continue
        ok = n > 0
        out.append(Finding("prometheus query", target, ok, "" if ok else f"returns no data\n{e.promql}"))
    return out
