"""Dashboards as code: built from the catalog with grafanalib, current Grafana JSON that validates against
Grafana's schema, byte-identical across builds, and every query checked by the real promtool."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner
from grafanalib import core as G

from console.catalog.model import Catalog
from console.cli import main
from console.codegen import panels
from console.codegen.dashboard_lint import expressions, substitute
from console.codegen.dashboards import BuiltDashboard, DashboardError, build_all, panel_urls, read_built
from console.codegen.normalise import SCHEMA_VERSION, normalise, to_json
from tests.fleetdoc import dashboard_queries

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT.parent / "shared" / "reference" / "grafana-dashboard.jsonschema.json"
MODERN = {"timeseries", "stat", "gauge", "bargauge", "table", "heatmap", "state-timeline", "row"}


def _run(*args: str) -> tuple[int, str]:
    r = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return r.exit_code, r.output


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(json.loads(SCHEMA.read_text()))


@pytest.fixture(scope="module")
def built(catalog: Catalog) -> list[BuiltDashboard]:
    return build_all(catalog)


def _errors(validator: jsonschema.Draft7Validator, model: dict) -> list[str]:
    return [f"{list(c.absolute_path)}: {c.message}" for e in validator.iter_errors(model) for c in (e.context or [e])]


def test_every_dashboard_validates_against_grafanas_schema(built, validator):
    assert sorted(b.uid for b in built) == [
        "gpuops-event-readiness",
        "gpuops-fleet-overview",
        "gpuops-pool-detail",
        "gpuops-services",
        "gpuops-teams",
    ]
    for b in built:
        assert _errors(validator, b.model) == [], b.uid


def test_dashboards_are_current_grafana_json(built):
    for b in built:
        m = b.model
        assert m["schemaVersion"] == SCHEMA_VERSION >= 39
        assert m["uid"] == "gpuops-" + b.source.stem.replace("_", "-")
        for legacy in ("rows", "__inputs", "hideControls", "sharedCrosshair", "style", "id", "version"):
            assert legacy not in m
        names = [v["name"] for v in m["templating"]["list"]]
        assert names[0] == "datasource" and len(names) >= 2
        assert m["links"][0]["type"] == "dashboards" and m["links"][0]["tags"] == ["gpuops"]
        for p in m["panels"]:
            assert p["type"] in MODERN
        for p in b.panels():
            assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, p["title"]
            for t in p["targets"]:
                assert t["datasource"] == p["datasource"] and t["expr"]
                assert not {"target", "metric", "step", "intervalFactor", "query"} & set(t)
            for step in p["fieldConfig"]["defaults"]["thresholds"]["steps"]:
                assert set(step) == {"color", "value"}
    variables = {v["name"] for b in built for v in b.model["templating"]["list"]}
    assert variables == {"datasource", "cluster", "region", "pool", "node", "team", "service", "namespace"}
    types = {p["type"] for b in built for p in b.panels()}
    assert {"timeseries", "stat", "bargauge", "table", "heatmap", "state-timeline"} <= types


def test_grafanalib_output_is_refused_by_the_schema_until_normalised(validator):
    """The normaliser is what makes grafanalib's gauge, bar gauge, heatmap and table current."""
    dash = panels.dashboard(
        "t",
        "",
        [
            G.GaugePanel(title="g", dataSource=panels.DATASOURCE, targets=[panels.target("up")]),
            panels.bargauge("b", "up", "{{job}}"),
            panels.heatmap("h", "up", "s", buckets=False),
            panels.table("t", [("up", "Up")]),
        ],
        panels.variables("region"),
    ).auto_panel_ids()
    raw = to_json(dash)
    assert _errors(validator, raw)  # `rows`, `style`, nulls, the gauge's legacy thresholds, ...
    model = normalise(raw)
    assert _errors(validator, model) == []
    gauge = model["panels"][0]
    assert gauge["options"]["reduceOptions"]["calcs"] == ["mean"] and "calcs" not in gauge["fieldConfig"]["defaults"]
    bar = model["panels"][1]
    assert "fieldOptions" not in bar["options"] and bar["options"]["reduceOptions"]["calcs"] == ["lastNotNull"]
    assert "cards" not in model["panels"][2] and model["panels"][2]["options"]["calculate"] is True


def test_two_builds_are_byte_identical(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    for out in ("a", "b"):
        code, text = _run("build", "--out", str(tmp_path / out))
        assert code == 0, text
    files_a = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*") if p.is_file())
    assert files_a == files_b and len([f for f in files_a if f.parts[0] == "dashboards"]) == 5
    for f in files_a:
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f
    text = (tmp_path / "a" / "dashboards" / "gpuops-services.json").read_text()
    assert text == json.dumps(json.loads(text), sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def test_panel_ids_and_alert_links_survive_a_new_panel(catalog, tmp_path):
    """Ids come from titles: a panel added in front moves none of the others' links."""
    folder = tmp_path / "dashboards"
    shutil.copytree(ROOT / "dashboards", folder)
    before = panel_urls(build_all(catalog, folder), catalog.grafana.url)
    src = folder / "teams.py"
    new = 'kit.timeseries("A new panel", [(Q["team_gpus"], "x")]),\n            kit.timeseries("GPUs requested",'
    src.write_text(src.read_text().replace('kit.timeseries("GPUs requested",', new))
    after = panel_urls(build_all(catalog, folder), catalog.grafana.url)
    assert set(after) - set(before) == {"gpuops-teams/a-new-panel"}
    assert {k: after[k] for k in before} == before


def test_a_broken_dashboard_file_names_itself(catalog, tmp_path):
    (tmp_path / "broken.py").write_text("def build(catalog):\n    return 1 / 0\n")
    with pytest.raises(DashboardError, match=r"broken\.py: build\(catalog\) failed: ZeroDivisionError"):
        build_all(catalog, tmp_path)
    (tmp_path / "broken.py").write_text("def build(catalog):\n    return (\n")
    with pytest.raises(DashboardError, match=r"broken\.py: SyntaxError"):
        build_all(catalog, tmp_path)
    dup = (ROOT / "dashboards" / "teams.py").read_text().replace('"Monthly budget"', '"GPUs requested"')
    (tmp_path / "broken.py").write_text(dup)
    with pytest.raises(DashboardError, match="GPUs requested"):
        build_all(catalog, tmp_path)


def test_variables_are_replaced_as_grafana_would(built):
    assert substitute('rate(x{a=~"$region"}[$__rate_interval])', {"region"}) == 'rate(x{a=~".*"}[1m])'
    # `$1` in label_replace is no variable of the dashboard: it stays.
    assert (
        substitute('label_replace(x, "n", "$1", "h", "(.+)")', {"region"}) == 'label_replace(x, "n", "$1", "h", "(.+)")'
    )
    assert substitute("${pool:regex} [[node]]", {"pool", "node"}) == ".* .*"
    exprs = list(expressions(built))
    assert len(exprs) == len(dashboard_queries([d.model for d in built])) > 0 and all(
        "$region" not in e.promql and "$__" not in e.promql for e in exprs
    )
    assert any(e.where == "variable $pool" and e.promql.startswith("gpuops:node_pool:info") for e in exprs)


def test_lint_checks_dashboards_and_names_a_broken_query(no_unit_tests, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert _run("build", "--out", str(tmp_path / "ok"))[0] == 0
    code, out = _run("lint", *no_unit_tests, "--out", str(tmp_path / "ok"))
    assert code == 0, out
    assert "ok   schema: " in out and "ok   promtool check rules: " in out and "dashboard queries" in out
    # A panel whose PromQL does not parse: promtool names the dashboard file, the panel and the query.
    folder = tmp_path / "dashboards"
    shutil.copytree(ROOT / "dashboards", folder)
    src = folder / "services.py"
    src.write_text(
        src.read_text().replace('[(Q["service_errors"], legend)]', '[("sum(rate(service_requests_total[5m])", legend)]')
    )
    assert _run("build", "--out", str(tmp_path / "bad"), "--dashboards", str(folder))[0] == 0
    code, out = _run("lint", *no_unit_tests, "--out", str(tmp_path / "bad"))
    assert code == 1
    assert "FAIL promtool check rules: " in out and 'gpuops-services.json: panel "Error ratio" query A' in out
    assert "unclosed left parenthesis" in out
    # A dashboard hand-edited into a shape Grafana's schema refuses.
    path = tmp_path / "ok" / "dashboards" / "gpuops-teams.json"
    model = json.loads(path.read_text())
    model["panels"][0]["gridPos"]["w"] = 30
    path.write_text(json.dumps(model))
    code, out = _run("lint", *no_unit_tests, "--out", str(tmp_path / "ok"))
    assert code == 1 and "FAIL schema: " in out and "panels/0/gridPos/w: 30 is greater than the maximum of 24" in out


def test_read_built_gives_back_what_was_written(catalog, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert _run("build", "--out", str(tmp_path))[0] == 0
    back = {b.uid: b.model for b in read_built(tmp_path / "dashboards")}
    assert back == {b.uid: b.model for b in build_all(catalog)}


def test_lint_resolves_every_runbook_and_dashboard_link(no_unit_tests, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    build = tmp_path / "build"
    assert _run("build", "--out", str(build))[0] == 0
    code, out = _run("lint", *no_unit_tests, "--out", str(build))
    assert code == 0, out
    shipped = len(list((ROOT / "runbooks").glob("*.yaml")))
    assert (
        f"ok   runbooks: runbooks ({shipped} runbooks)" in out
        and f"ok   links: {build}/rules/gpuops-alerts.yaml" in out
    )
    # A runbook file gone: every alert and panel that links it is named.
    folder = tmp_path / "runbooks"
    shutil.copytree(ROOT / "runbooks", folder)
    (folder / "region-failover.yaml").unlink()
    code, out = _run("lint", *no_unit_tests, "--out", str(build), "--runbooks", str(folder))
    assert code == 1
    assert f"FAIL links: {build}/rules/gpuops-alerts.yaml" in out
    assert f"RegionDown (group gpuops.fleet): runbook_url: no runbook {folder}/region-failover.yaml" in out
    assert f"FAIL links: {build}/dashboards/gpuops-services.json" in out
    assert "panel \"Traffic weight\": link 'Runbook: region failover': no runbook" in out
    # An alert pointing at a panel the dashboards no longer have.
    alerts = build / "rules" / "gpuops-alerts.yaml"
    text = alerts.read_text()
    first = text.index("viewPanel=") + len("viewPanel=")
    alerts.write_text(text[:first] + "999999999" + text[text.index("\n", first) :])
    code, out = _run("lint", *no_unit_tests, "--out", str(build))
    assert code == 1 and "dashboard_url: dashboard 'gpuops-" in out and "has no panel 999999999" in out
    # A link that sets a variable its dashboard does not have (the alert would open on nothing).
    alerts.write_text(text.replace("&var-node=", "&var-host=", 1))
    code, out = _run("lint", *no_unit_tests, "--out", str(build))
    assert code == 1 and "has no variable host (the link sets var-host)" in out, out


def test_alert_links_open_the_panel_on_the_alerts_own_objects(catalog):
    """Each dashboard_url sets the variables of its dashboard that the alert's labels name."""
    from console.codegen.mixin import OUR_MIXIN, compile_mixin, gpuops_config

    built = {b.uid: set(b.variables()) for b in build_all(catalog)}
    rules = compile_mixin(OUR_MIXIN, config=gpuops_config(catalog))["prometheusAlerts"]
    urls = {
        r["alert"] + r["labels"].get("service", ""): r["annotations"]["dashboard_url"]
        for g in rules["groups"]
        for r in g["rules"]
        if r["annotations"].get("dashboard_url")
    }
    # The team is the rule's own label, which annotation templates cannot read: written in.
    assert urls["LatencySloFastBurntts-dub"].endswith(
        "&var-team=media-ai&var-service={{ $labels.service | urlquery }}&var-region={{ $labels.region | urlquery }}"
    )
    assert urls["GpuHardwareSlowdown"].endswith("&var-node={{ $labels.Hostname | urlquery }}")
    assert urls["QuotaFull"].endswith(
        "&var-team={{ $labels.team | urlquery }}&var-namespace={{ $labels.namespace | urlquery }}"
    )
    assert "var-" not in urls["GpuExporterAbsent"]  # absent() has no labels to fill one with
    for name, url in urls.items():
        uid = url.split("/d/", 1)[1].split("?", 1)[0]
        assert {v.split("=")[0] for v in url.split("&var-")[1:]} <= built[uid], name


def test_the_schema_gpuops_ships_is_grafanas_reference():
    """An installed gpuops lints with its own copy (it reads nothing outside itself); that copy is the
    reference beside the repository, byte for byte."""
    from console.codegen.schema import DEFAULT_SCHEMA

    assert DEFAULT_SCHEMA.read_bytes() == SCHEMA.read_bytes()
    assert "shared" not in DEFAULT_SCHEMA.relative_to(ROOT).parts
