"""Every PromQL expression of every dashboard, sent to a real Prometheus that scrapes the twin and evaluates
the built rules: each parses, and on the demo fleet each returns data (no empty panel)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from console.cli import main
from console.codegen.dashboard_lint import Expression, check_promql_live, expressions
from console.codegen.dashboards import read_built
from tests.e2e.conftest import ROOT, Stack, start_stack, wait_for
from tests.fleetdoc import dashboard_files, dashboard_queries


@pytest.fixture(scope="module")
def dstack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, Path]]:
    workdir = tmp_path_factory.mktemp("dashboards")
    r = CliRunner().invoke(main, ["build", "--catalog", str(ROOT / "fleet.yaml"), "--out", str(workdir / "build")])
    assert r.exit_code == 0, r.output
    rules = [str(p) for p in sorted((workdir / "build" / "rules").glob("*.yaml"))]
    for s in start_stack(
        workdir, "--catalog", str(ROOT / "fleet.yaml"), "--warmup", "3", with_alertmanager=False, rule_files=rules
    ):
        yield s, workdir / "build"


def test_every_dashboard_query_returns_data_on_the_demo_fleet(dstack):
    stack, build = dstack
    exprs = list(expressions(read_built(build / "dashboards")))
    assert len(exprs) == len(dashboard_queries(dashboard_files(build / "dashboards"))) > 0

    def empty() -> list[str]:
        return [f.target for f in check_promql_live(exprs, stack.prom_url) if not f.ok]

    # Rates and recorded series need a few scrapes and rule evaluations first.
    wait_for(lambda: not empty(), timeout=120, every=2, what="every dashboard query to return data")
    r = CliRunner().invoke(
        main, ["lint", "--catalog", str(ROOT / "fleet.yaml"), "--out", str(build), "--prometheus", stack.prom_url]
    )
    assert r.exit_code == 0, r.output
    assert r.output.count("ok   prometheus query: ") == len(exprs)
    assert 'gpuops-pool-detail.json: panel "MIG instances busy" query A' in r.output


def test_a_broken_or_empty_query_is_caught(dstack):
    stack, _ = dstack
    broken = Expression("d", "d.json", 'panel "P" query A', "x", "sum(rate(service_requests_total[5m])")
    missing = Expression("d", "d.json", 'panel "Q" query A', "x", 'gpuops:no_such_series{region=~".*"}')
    bad, empty = check_promql_live([broken, missing], stack.prom_url)
    assert not bad.ok and "parse error" in bad.output and bad.target == 'd.json: panel "P" query A'
    assert not empty.ok and "returns no data" in empty.output
