"""Rules as code: the mixin builds deterministically, and the real promtool checks and unit-tests it."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import yaml
from click.testing import CliRunner

from console.cli import main
from console.codegen.mixin import build_alertmanager, build_rules
from tests.fleetdoc import doc

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str) -> tuple[int, str]:
    r = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return r.exit_code, r.output


def test_two_builds_give_the_same_bytes(catalog, tmp_path):
    a, b = build_rules(catalog, tmp_path / "a"), build_rules(catalog, tmp_path / "b")
    assert a.rules.read_bytes() == b.rules.read_bytes() and a.alerts.read_bytes() == b.alerts.read_bytes()
    # The counts reported are the files' own, read plainly; the per-catalog rules are there once for each
    # service, team and event of fleet.yaml read plainly, with its figure.
    records = [r for g in yaml.safe_load(a.rules.read_text())["groups"] for r in g["rules"]]
    alerts = [r for g in yaml.safe_load(a.alerts.read_text())["groups"] for r in g["rules"]]
    assert a.recording == len(records) and a.alerting == len(alerts)
    fleet = doc()

    def labelled(record: str, label: str) -> list[str]:
        return sorted(r["labels"][label] for r in records if r["record"] == record)

    services, teams = sorted(s["name"] for s in fleet["services"]), sorted(t["name"] for t in fleet["teams"])
    for record in ("gpuops:service_team:info", "gpuops:service:latency_slo:seconds"):
        assert labelled(record, "service") == services, record
    for window in ("5m", "30m", "1h", "6h"):
        # Per service, over its window, against its SLO's bucket.
        misses = [
            r["expr"] for r in records if r["record"] == f"gpuops:service_region:latency_slo_miss:ratio_rate{window}"
        ]
        assert sorted(re.search(r'service="([^"]+)"', e)[1] for e in misses) == services, window
        for s in fleet["services"]:
            e = next(e for e in misses if f'service="{s["name"]}"' in e)
            # Either spelling of the bound: the first is the exporter's own.
            le = re.search(r'le=~"([^"|]+)', e)[1].replace("[.]", ".")
            assert f"[{window}]" in e and float(le) == s["latency_slo_ms"] / 1000, e
    assert labelled("gpuops:team_budget:monthly", "team") == teams
    assert labelled("gpuops:team_price:multiplier", "team") == teams
    assert labelled("gpuops:event:upcoming", "event") == sorted(e["name"] for e in fleet["events"])
    budgets = {r["labels"]["team"]: r["expr"] for r in records if r["record"] == "gpuops:team_budget:monthly"}
    assert budgets == {t["name"]: f"vector({t['monthly_budget']:g})" for t in fleet["teams"]}
    slos = {r["labels"]["service"]: r["expr"] for r in records if r["record"] == "gpuops:service:latency_slo:seconds"}
    assert {k: float(v.removeprefix("vector(").removesuffix(")")) for k, v in slos.items()} == {
        s["name"]: s["latency_slo_ms"] / 1000 for s in fleet["services"]
    }
    # One capacity alert per service of each event; two burn-rate alerts per service.
    capacity = [r for r in alerts if r["alert"] == "CapacityHeadroomLow"]
    assert len(capacity) == sum(len(e["services"]) for e in fleet["events"])
    fast = [r["expr"] for r in alerts if r["alert"] == "LatencySloFastBurn"]
    assert sorted(re.search(r'service="([^"]+)"', e)[1] for e in fast) == services
    for r in alerts:
        assert r["labels"]["severity"] in ("critical", "warning", "info", "none") and r["annotations"]["summary"], r


def test_lint_passes_on_the_build_and_fails_on_a_changed_threshold(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    code, out = _run("build", "--out", str(tmp_path / "ok"))
    assert code == 0, out
    # Built files are for CI and Grafana to read: world-readable, as any build output.
    assert {oct(p.stat().st_mode & 0o777) for p in (tmp_path / "ok").rglob("*") if p.is_file()} == {"0o644"}
    code, out = _run("lint", "--out", str(tmp_path / "ok"))
    assert code == 0, out
    assert "FAIL" not in out and "promtool test rules: alerts/tests/fleet.yaml" in out
    assert "promtool check rules --lint-fatal" in out
    assert "llm-platform-pagerduty,llm-platform-chat: team=llm-platform severity=critical" in out
    # The same tests against rules whose quota warning moved from 80 % to 81 %: promtool catches it.
    changed = tmp_path / "alerts"
    shutil.copytree(ROOT / "alerts", changed)
    config = (changed / "config.libsonnet").read_text()
    assert "quotaWarning: 0.80" in config
    (changed / "config.libsonnet").write_text(config.replace("quotaWarning: 0.80", "quotaWarning: 0.81"))
    assert _run("build", "--alerts", str(changed), "--out", str(tmp_path / "bad"))[0] == 0
    code, out = _run("lint", "--out", str(tmp_path / "bad"))
    assert code == 1 and "FAIL promtool test rules: alerts/tests/fleet.yaml" in out and "QuotaNearlyFull" in out


MIXIN = """
local lib = import 'lib.libsonnet';
{
  _config+:: { threshold: 0.9 },
  prometheusAlerts+:: { groups+: [{ name: 'other', rules: [
    { alert: 'OtherTeamHighLoad', expr: lib.expr % $._config.threshold, 'for': '5m',
      labels: { severity: 'warning', team: 'other' }, annotations: { summary: 'load' } },
  ] }] },
}
"""


def test_another_mixin_builds_and_lints_with_ours(no_unit_tests, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    (tmp_path / "vendor").mkdir()
    (tmp_path / "vendor/lib.libsonnet").write_text("{ expr: 'avg(DCGM_FI_DEV_GPU_UTIL) / 100 > %g' }")
    (tmp_path / "other.libsonnet").write_text(MIXIN)
    out_dir = tmp_path / "out"
    code, out = _run(
        "build",
        "--out",
        str(out_dir),
        "--mixin",
        str(tmp_path / "other.libsonnet"),
        "--jpath",
        str(tmp_path / "vendor"),
    )
    assert code == 0, out
    assert "other-alerts.yaml: 1 alerts" in out
    assert "avg(DCGM_FI_DEV_GPU_UTIL) / 100 > 0.9" in (out_dir / "rules/other-alerts.yaml").read_text()
    code, out = _run("lint", *no_unit_tests, "--out", str(out_dir))
    assert code == 0, out


def test_a_broken_mixin_names_its_error(no_unit_tests, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    broken = tmp_path / "broken.libsonnet"
    broken.write_text("{\n  prometheusAlerts: { groups: [ }\n}\n")
    code, out = _run("build", "--out", str(tmp_path / "out"), "--mixin", str(broken))
    assert code == 1 and "broken.libsonnet:2" in out
    # Compiles, but its PromQL does not parse: lint names the file and the rule.
    bad = tmp_path / "badexpr.libsonnet"
    bad.write_text(
        "{ prometheusAlerts: { groups: [{ name: 'g', rules: [{ alert: 'Nonsense', expr: 'sum by (' }] }] } }"
    )
    assert _run("build", "--out", str(tmp_path / "out2"), "--mixin", str(bad))[0] == 0
    code, out = _run("lint", *no_unit_tests, "--out", str(tmp_path / "out2"))
    assert code == 1 and "FAIL promtool check rules" in out and "badexpr-alerts.yaml" in out and "Nonsense" in out


def test_a_lint_finding_of_promtool_fails_lint(no_unit_tests, tmp_path, monkeypatch):
    # Two alerts of one name and one label set: promtool's "duplicate rule(s)" lint, which is fatal here.
    monkeypatch.chdir(ROOT)
    twice = "{ alert: 'Twice', expr: 'vector(1) > 2', labels: { severity: 'warning', team: 'sre' } }"
    (tmp_path / "dup.libsonnet").write_text(
        f"{{ prometheusAlerts: {{ groups: [{{ name: 'g', rules: [{twice}, {twice}] }}] }} }}"
    )
    assert _run("build", "--out", str(tmp_path / "out"), "--mixin", str(tmp_path / "dup.libsonnet"))[0] == 0
    code, out = _run("lint", *no_unit_tests, "--out", str(tmp_path / "out"))
    assert code == 1 and "FAIL promtool check rules --lint-fatal" in out and "duplicate rule" in out, out


def test_alertmanager_config_routes_by_team_and_keeps_secrets_in_files(no_unit_tests, catalog, tmp_path, monkeypatch):
    a, b = build_alertmanager(catalog, tmp_path / "a"), build_alertmanager(catalog, tmp_path / "b")
    assert a.read_bytes() == b.read_bytes()
    text = a.read_text()
    assert "api_url_file: /etc/gpuops/secrets/slack-llm-platform" in text
    assert "routing_key_file: /etc/gpuops/secrets/pagerduty-sre" in text
    assert "credentials_file: /etc/gpuops/secrets/relay-token" in text
    assert "api_url:" not in text and "routing_key:" not in text  # no secret inline
    assert 'source_matchers:\n  - alertname="RegionDown"' in text
    # A route that no longer matches its contract is named by lint.
    monkeypatch.chdir(ROOT)
    assert _run("build", "--out", str(tmp_path / "out"))[0] == 0
    monkeypatch.setattr(
        "console.codegen.mixin.expected_receivers", lambda cat: {("search", "critical"): ["search-pagerduty"]}
    )
    code, out = _run("lint", *no_unit_tests, "--out", str(tmp_path / "out"))
    assert code == 1 and "FAIL amtool config routes test → search-pagerduty: team=search severity=critical" in out


def test_a_fast_twin_gets_each_alert_for_divided_by_its_speed(catalog, tmp_path):
    import yaml

    exprs: dict[float, dict[str, str]] = {}

    def fors(speed: float) -> dict[str, str]:
        built = build_rules(catalog, tmp_path / f"x{speed:g}", speed=speed)
        doc = yaml.safe_load(built.alerts.read_text())
        exprs[speed] = {r["alert"]: r["expr"] for g in doc["groups"] for r in g["rules"]}
        return {r["alert"]: r.get("for") for g in doc["groups"] for r in g["rules"]}

    normal, fast = fors(1), fors(20)
    assert normal["RegionDown"] == "2m" and fast["RegionDown"] == "6s"
    assert normal["GpusAllocatedIdle"] == "5m" and fast["GpusAllocatedIdle"] == "15s"
    # Windows shrink with the clock too, down to 30s so that they still hold several scrapes.
    assert "[30m]" in exprs[1]["GpusAllocatedIdle"] and "[90s]" in exprs[20]["GpusAllocatedIdle"]
    assert "[10m]" in exprs[1]["GpuXidErrors"] and "[30s]" in exprs[20]["GpuXidErrors"]
    assert normal["ServiceErrorsHigh"] == "2m" and fast["ServiceErrorsHigh"] == "6s"
    # The burn-rate alerts keep theirs: their windows are not scaled either.
    assert normal["LatencySloFastBurn"] == fast["LatencySloFastBurn"]


def test_the_rules_record_every_series_the_console_reads_recorded_as_it_reads_them_raw(catalog, tmp_path):
    from console.fleet import queries as q
    from console.fleet.scope import for_rules, node_map

    built = build_rules(catalog, tmp_path)
    doc = yaml.safe_load(built.rules.read_text())
    recorded = {r["record"]: r["expr"] for g in doc["groups"] for r in g["rules"] if "record" in r}
    rewrite = for_rules(catalog.monitoring, node_map(catalog))
    raw = {name: q.POOLS[part] for part, name in q.POOL_RECORDS.items()}
    raw |= {name: q.SERVICES[part] for part, name in q.SERVICE_RECORDS.items()}
    assert len(raw) == len(q.POOL_RECORDS) + len(q.SERVICE_RECORDS)  # no name read for two parts
    for name, expr in raw.items():
        assert recorded.get(name) == rewrite(expr), name
