"""Load drill scenarios, reporting every problem as file:line: field: message, before anything runs.

Beyond the file's shape: each probe's PromQL arguments are checked as label values, each runbook named
exists and its parameters resolve against the catalog, and each fault's target names a catalog region,
service or job.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from console.catalog.model import Catalog
from console.catalog.yamlpos import CatalogIssue, Path_, dotted
from console.drills.model import Response, Rollback, Scenario
from console.fleet.queries import runbook_query
from console.runbooks.load import FileIssues, load_folder, load_located
from console.runbooks.model import Check, Runbook
from console.runbooks.params import ParameterError, resolve


class ScenarioError(FileIssues):
    pass


def default_folder(runbooks_dir: Path) -> Path:
    return runbooks_dir / "drills"


def default_journal() -> Path:
    """The drill journal: $GPUOPS_DRILL_JOURNAL, else drills.jsonl beside the runbook journal."""
    env = os.environ.get("GPUOPS_DRILL_JOURNAL")
    if env:
        return Path(env)
    from console.runbooks.journal import default_path

    return default_path().with_name("drills.jsonl")


def load_scenario(path: Path, catalog: Catalog, runbooks: dict[str, Runbook]) -> Scenario:
    name = str(path)
    try:
        sc, loc = load_located(path, Scenario, "a drill scenario")
    except FileIssues as e:
        raise ScenarioError(e.issues) from None
    issues: list[CatalogIssue] = []

    def problem(where: Path_, message: str) -> None:
        issues.append(CatalogIssue(name, loc.line_of(where), dotted(where), message))

    if sc.name != path.stem:
        problem(("name",), f"must match the file name {path.stem!r}")
    checks: list[tuple[str, list[Check]]] = [("steady_state", sc.steady_state), ("abort", list(sc.abort))]
    for section, items in checks:
        for i, c in enumerate(items):
            try:
                runbook_query(c.query, **c.args)
            except ValueError as e:
                problem((section, i, "args"), str(e))
    _check_faults(problem, sc, catalog)
    named: list[tuple[str, int, Response | Rollback]] = [
        *(("runbooks", i, r) for i, r in enumerate(sc.runbooks)),
        *(("rollbacks", i, r) for i, r in enumerate(sc.rollbacks)),
    ]
    for section, i, r in named:
        _check_runbook(problem, (section, i), r.runbook, r.params, runbooks, catalog)
    if issues:
        raise ScenarioError(issues)
    return sc


def _check_faults(problem: Any, sc: Scenario, catalog: Catalog) -> None:
    """Each fault's target names what the catalog has; cluster faults leave a cluster standing."""
    known = {
        "region": set(catalog.region_names()),
        "service": {s.name for s in catalog.services},
        "job": {j.name for j in catalog.jobs},
        # A cluster per region, named after it: what a drill of several clusters starts.
        "cluster": set(catalog.region_names()),
    }
    for i, f in enumerate(sc.faults):
        for field, value in f.target.items():
            if field in known and value not in known[field]:
                problem(("faults", i, "target", field), f"no {field} {value!r} in the catalog")
    lost = [(i, f.target.get("cluster")) for i, f in enumerate(sc.faults) if f.kind == "cluster_down"]
    if lost and known["cluster"] <= {c for _, c in lost}:
        # The drill acts (and reads the twin) through a cluster its faults leave standing.
        problem(("faults", lost[-1][0], "target", "cluster"), "the cluster_down faults take every cluster: "
                "the drill needs one standing to act through")  # fmt: skip


def _check_runbook(
    problem: Any, where: Path_, name: str, params: dict[str, Any], runbooks: dict[str, Runbook], catalog: Catalog
) -> None:
    rb = runbooks.get(name)
    if rb is None:
        problem((*where, "runbook"), f"no runbook {name!r}; known: {', '.join(sorted(runbooks))}")
        return
    try:
        resolve(rb, catalog, {k: str(v) for k, v in params.items()})
    except ParameterError as e:
        for param, message in e.named:
            at = (*where, "params", param) if param in params else (*where, "params")
            problem(at, f"{name}: {message}")


def load_scenarios(folder: Path, catalog: Catalog, runbooks: dict[str, Runbook]) -> dict[str, Scenario]:
    """Every scenario in `folder` by name; every file's problems together."""
    return load_folder(folder, lambda path: load_scenario(path, catalog, runbooks), ScenarioError)
