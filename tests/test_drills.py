"""Drill scenarios: the shipped ones load; a bad one is refused with file:line: field for every problem before
anything runs; the report's times are computed from the journal records alone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from console.cli import main
from console.drills.engine import scaled_window
from console.drills.load import ScenarioError, load_scenario, load_scenarios
from console.drills.report import build_report, mmss, render_html, render_markdown
from console.runbooks import load_runbooks
from console.runbooks.journal import Journal
from tests.fleetdoc import doc

ROOT = Path(__file__).resolve().parents[1]
RUNBOOKS = load_runbooks(ROOT / "runbooks")


def test_the_shipped_scenarios_load(catalog):
    scs = load_scenarios(ROOT / "runbooks" / "drills", catalog, RUNBOOKS)
    assert set(scs) == {"region-outage", "llm-event-spike", "gpu-xid-storm", "idle-batch-at-peak", "cluster-loss"}
    assert scs["region-outage"].detect.alert == "RegionDown" and scs["region-outage"].clusters == "one"
    assert scs["cluster-loss"].detect.alert == "ClusterDown" and scs["cluster-loss"].clusters == "per-region"
    assert [r.runbook for r in scs["llm-event-spike"].runbooks] == ["degrade-llm-to-rules", "pre-scale"]


GOOD = (ROOT / "runbooks" / "drills" / "region-outage.yaml").read_text()


def _write(tmp_path: Path, text: str, name: str = "region-outage") -> Path:
    p = tmp_path / f"{name}.yaml"
    p.write_text(text)
    return p


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


@pytest.mark.parametrize(
    ("old", "new", "field", "message"),
    [
        ("kind: region_outage", "kind: region_meltdown", "faults[0]", "kind: must be one of"),
        ("target: {region: eu-west}", "target: {region: mars-north}", "faults[0].target.region", "no region"),
        ("runbook: region-failover", "runbook: region-teleport", "runbooks[1].runbook", "no runbook 'region-teleport'"),
        ("replicas: 14}", "replicas: 9000}", "runbooks[0].params.replicas", "9000 is outside 1..500"),
        ("replicas: 14}", "replicas: lots}", "runbooks[0].params.replicas", "'lots' is not an integer"),
        (
            "params: {service: llm-chat, source: eu-west",
            "params: {service: nosuch, source: eu-west",
            "runbooks[1].params.service",
            "no service 'nosuch' in the catalog",
        ),
        (
            'args: {service: llm-chat, region: ".*", window: 3m}\n    expect: {max: 0.02}',
            'args: {service: "llm-chat\\"} or vector(1) #", region: ".*", window: 3m}\n    expect: {max: 0.02}',
            "steady_state[0].args",
            "is not allowed in a label matcher",
        ),
        ("window: 3m}\n    expect: {max: 0.02}", "window: soon}\n    expect: {max: 0.02}", "steady_state[0].args", ""),
        ("targets: {detect: 5m, mitigate: 45m}", "targets: {detect: 5 minutes, mitigate: 45m}", "targets.detect", ""),
        ("for: 20m", "for: a while", "abort[0].for", ""),
    ],
)
def test_a_bad_scenario_names_file_line_and_field(tmp_path, catalog, old, new, field, message):
    assert old in GOOD
    text = GOOD.replace(old, new, 1)
    path = _write(tmp_path, text)
    with pytest.raises(ScenarioError) as e:
        load_scenario(path, catalog, RUNBOOKS)
    issue = next((i for i in e.value.issues if i.field.startswith(field)), None)
    assert issue is not None, [str(i) for i in e.value.issues]
    assert str(issue).startswith(f"{path}:{issue.line}: {issue.field}: ")
    assert issue.line == _line_of(text, new.splitlines()[0].strip()[:20])
    assert message in issue.message


def test_a_cluster_fault_needs_clusters_per_region_and_a_cluster_of_them(tmp_path, catalog):
    good = (ROOT / "runbooks" / "drills" / "cluster-loss.yaml").read_text()
    for old, new, field, message in (
        ("clusters: per-region", "clusters: one", "", "a cluster_down fault needs clusters: per-region"),
        ("target: {cluster: eu-west}", "target: {cluster: mars}", "faults[0].target.cluster", "no cluster 'mars'"),
    ):
        assert old in good
        text = good.replace(old, new, 1)
        path = _write(tmp_path, text, "cluster-loss")
        with pytest.raises(ScenarioError) as e:
            load_scenario(path, catalog, RUNBOOKS)
        [issue] = e.value.issues
        assert str(issue).startswith(f"{path}:{issue.line}: ") and message in issue.message, str(issue)
        if field:
            assert issue.field == field and issue.line == _line_of(text, new)
    # Faults that take every cluster leave none to act through: refused at the last of them.
    regions = [r["name"] for r in doc()["regions"]]
    every = "".join(f"  - kind: cluster_down\n    target: {{cluster: {r}}}\n    duration: 3h\n" for r in regions)
    text = good.replace("  - kind: cluster_down\n    target: {cluster: eu-west}\n    duration: 3h\n", every, 1)
    assert text.count("kind: cluster_down") == len(regions)
    path = _write(tmp_path, text, "cluster-loss")
    with pytest.raises(ScenarioError) as e:
        load_scenario(path, catalog, RUNBOOKS)
    [issue] = e.value.issues
    assert issue.field == f"faults[{len(regions) - 1}].target.cluster" and "every cluster" in issue.message
    assert issue.line == _line_of(text, f"target: {{cluster: {regions[-1]}}}")
    # One standing is enough.
    text = good.replace("\nfaults:\n", f"\nfaults:\n{''.join(every.splitlines(True)[: 3 * (len(regions) - 2)])}", 1)
    load_scenario(_write(tmp_path, text, "cluster-loss"), catalog, RUNBOOKS)


def test_a_bad_fault_is_reported_on_its_own_line(tmp_path, catalog):
    text = GOOD.replace("kind: region_outage", "kind: region_meltdown")
    path = _write(tmp_path, text)
    with pytest.raises(ScenarioError) as e:
        load_scenario(path, catalog, RUNBOOKS)
    (issue,) = e.value.issues
    assert issue.line == _line_of(text, "- kind: region_meltdown")


def test_the_cli_refuses_a_bad_scenario_file_before_anything_runs(tmp_path):
    folder = tmp_path / "drills"
    folder.mkdir()
    text = GOOD.replace("runbook: region-failover", "runbook: region-teleport")
    _write(folder, text)
    r = CliRunner().invoke(
        main,
        ["drill", "run", "region-outage", "--scenarios", str(folder), "--prometheus", "http://127.0.0.1:9"],
        catch_exceptions=False,
    )
    assert r.exit_code == 2
    line = _line_of(text, "runbook: region-teleport")
    assert f"{folder / 'region-outage.yaml'}:{line}: runbooks[1].runbook: no runbook 'region-teleport'" in r.output
    assert "nothing was run" in r.output


def test_drill_list_shows_every_scenario_and_never_run(tmp_path, monkeypatch):
    monkeypatch.setenv("GPUOPS_DRILL_JOURNAL", str(tmp_path / "none.jsonl"))
    r = CliRunner().invoke(main, ["drill", "list"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    for name in ("region-outage", "llm-event-spike", "gpu-xid-storm", "idle-batch-at-peak"):
        assert name in r.output
    assert "RegionDown{region=eu-west}" in r.output and "never run" in r.output


def test_a_probe_window_is_read_at_the_twins_speed():
    assert scaled_window("3m", 20, 4) == "9s"
    assert scaled_window("10m", 1, 4) == "600s"
    assert scaled_window("30s", 50, 4) == "4s"  # never under a few scrapes


def _journal(tmp_path: Path) -> tuple[Journal, str]:
    j = Journal(tmp_path / "drills.jsonl")
    t0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)

    def at(s: float) -> str:
        return (t0 + timedelta(seconds=s)).isoformat()

    d = "d1"
    j.append(d, "drill_start", sim=at(-60), text="start", scenario="s", title="T <b>", context="twin", speed=20,
             operator="op", targets={"detect_s": 300, "mitigate_s": 600}, wall="2026-11-25T10:00:00+00:00")  # fmt: skip
    j.append(d, "probe", sim=at(-60), text="p: 0 (holds)", phase="before", name="p", value=0, holds=True, changed=True)
    j.append(d, "fault_start", sim=at(0), text="region_outage region=eu-west", kind="region_outage")
    j.append(
        d, "probe", sim=at(20), text="p: 0.3 (VIOLATED)", phase="during", name="p", value=0.3, holds=False, changed=True
    )
    j.append(d, "alert_firing", sim=at(146), text="RegionDown", alert="RegionDown", labels={}, detects=True)
    j.append(d, "runbook_start", sim=at(150), text="pre-scale", runbook="pre-scale", run_id="r1", by="alert X")
    j.append(d, "runbook_end", sim=at(400), text="pre-scale: succeeded", runbook="pre-scale", run_id="r1",
             status="succeeded", detail="")  # fmt: skip
    j.append(d, "probe", sim=at(420), text="p: 0 (holds)", phase="during", name="p", value=0, holds=True, changed=True)
    j.append(d, "steady_again", sim=at(420), text="steady")
    j.append(d, "drill_end", sim=at(500), text="passed", status="passed", reasons=[], ttd_s=146, ttm_s=420,
             wall="2026-11-25T10:01:10+00:00")  # fmt: skip
    return j, d


def test_the_report_computes_its_times_from_the_journal(tmp_path):
    j, d = _journal(tmp_path)
    rep = build_report(j.records(), d)
    assert rep is not None
    assert rep.ttd_s == 146 and rep.ttm_s == 420 and rep.wall_s == 70
    assert rep.probes == {"before": {"checked": 1, "violated": 0}, "during": {"checked": 2, "violated": 1}}
    md = render_markdown(rep)
    assert "| time to detect | 2:26 | 5:00 | pass |" in md
    assert "| time to mitigate | 7:00 | 10:00 | pass |" in md
    assert "| 2:26 | 2026-11-20 12:02:26 | alert_firing | RegionDown |" in md
    assert "started pre-scale (alert X), run r1" in md
    page = render_html(rep)
    assert "T &lt;b&gt;" in page and "T <b>" not in page  # the title is escaped


def test_drill_report_cli_lists_and_renders(tmp_path):
    j, d = _journal(tmp_path)
    r = CliRunner().invoke(main, ["drill", "report", "--journal", str(j.path)], catch_exceptions=False)
    assert r.exit_code == 0 and d in r.output and "passed" in r.output
    out = tmp_path / "r.html"
    r = CliRunner().invoke(main, ["drill", "report", d, "--journal", str(j.path), "--format", "html", "-o", str(out)])
    assert r.exit_code == 0 and "<h1>Drill d1" in out.read_text()
    r = CliRunner().invoke(main, ["drill", "report", "nosuch", "--journal", str(j.path)])
    assert r.exit_code == 2 and "no drill 'nosuch'" in r.output
    # The list honours --format and -o as a single report does.
    r = CliRunner().invoke(main, ["drill", "report", "--journal", str(j.path), "--format", "markdown"])
    assert r.exit_code == 0 and r.output.startswith("| drill | scenario | status |") and f"| {d} | " in r.output
    index = tmp_path / "index.html"
    r = CliRunner().invoke(main, ["drill", "report", "--journal", str(j.path), "--format", "html", "-o", str(index)])
    assert r.exit_code == 0 and "<h1>Drills</h1>" in index.read_text() and f"<td>{d}</td>" in index.read_text()


def test_an_edited_drill_journal_fails_its_chain(tmp_path):
    j, d = _journal(tmp_path)
    text = j.path.read_text().replace('"ttm_s": 420', '"ttm_s": 42')
    j.path.write_text(text)
    r = CliRunner().invoke(main, ["drill", "report", d, "--journal", str(j.path)])
    assert r.exit_code == 1 and "drills.jsonl:10" in r.output


def test_mmss():
    assert mmss(None) == "—" and mmss(146) == "2:26" and mmss(3725) == "1:02:05" and mmss(-0.2) == "0:00"
