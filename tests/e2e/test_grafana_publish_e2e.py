"""The publisher against a local server that follows Grafana's documented HTTP API (tests/fake_grafana.py):
create, no-op, one update, drift, and every documented failure with its message."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from console.cli import main
from tests.fake_grafana import FakeGrafana

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "glsa_test_secret_token"
UIDS = ["gpuops-event-readiness", "gpuops-fleet-overview", "gpuops-pool-detail", "gpuops-services", "gpuops-teams"]


@pytest.fixture
def grafana() -> Iterator[FakeGrafana]:
    with FakeGrafana({TOKEN: "Editor", "viewer-token": "Viewer"}) as g:
        yield g


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("build")
    r = CliRunner().invoke(main, ["build", "--catalog", str(ROOT / "fleet.yaml"), "--out", str(out)])
    assert r.exit_code == 0, r.output
    return out


def gpuops(*args: str, token: str = TOKEN) -> tuple[int, str]:
    r = CliRunner().invoke(main, [*args, "--catalog", str(ROOT / "fleet.yaml")], env={"GRAFANA_TOKEN": token})
    assert TOKEN not in r.output and (not token or token not in r.output)  # never echoed
    return r.exit_code, r.output


def test_first_publish_creates_the_second_reads_only_a_change_updates_one(grafana, build, tmp_path):
    code, out = gpuops("publish", "--out", str(build), "--grafana-url", grafana.url)
    assert code == 0, out
    assert "folder gpuops ('GPU fleet'): created" in out
    assert all(f"{uid}: created" in out for uid in UIDS)
    assert "5 created, 0 updated, 0 unchanged, 0 failed" in out
    assert grafana.state.folders["gpuops"]["title"] == "GPU fleet"
    stored = grafana.state.dashboards["gpuops-services"]
    assert stored["folderUid"] == "gpuops" and stored["message"].startswith("gpuops publish ")
    built = json.loads((build / "dashboards" / "gpuops-services.json").read_text())
    assert {k: v for k, v in stored["dashboard"].items() if k not in ("id", "version")} == built

    # Unchanged: one read per dashboard, no write.
    grafana.state.log.clear()
    code, out = gpuops("publish", "--out", str(build), "--grafana-url", grafana.url)
    assert code == 0 and "0 created, 0 updated, 5 unchanged" in out and "(5 GET)" in out
    assert grafana.posts() == [] and len(grafana.state.log) == 5

    # One dashboard changed in the build: only it is posted, with the version it was read at.
    changed = tmp_path / "changed"
    shutil.copytree(build, changed)
    path = changed / "dashboards" / "gpuops-teams.json"
    model = json.loads(path.read_text())
    model["description"] = "Changed in the repository."
    path.write_text(json.dumps(model))
    grafana.state.log.clear()
    code, out = gpuops("publish", "--out", str(changed), "--grafana-url", grafana.url)
    assert code == 0 and "gpuops-teams: updated" in out and "0 created, 1 updated, 4 unchanged" in out, out
    assert grafana.posts() == ["/api/dashboards/db"]
    assert grafana.state.dashboards["gpuops-teams"]["dashboard"]["version"] == 2
    assert grafana.state.dashboards["gpuops-services"]["dashboard"]["version"] == 1


def test_diff_shows_a_remote_edit_as_drift(grafana, build):
    assert gpuops("publish", "--out", str(build), "--grafana-url", grafana.url)[0] == 0
    code, out = gpuops("diff", "--out", str(build), "--grafana-url", grafana.url)
    assert code == 0 and "gpuops-teams: same" in out
    grafana.state.edit("gpuops-teams", title="GPU teams (edited by hand)")
    code, out = gpuops("diff", "--out", str(build), "--grafana-url", grafana.url)
    assert code == 1
    assert "--- grafana:/d/gpuops-teams" in out and '-  "title": "GPU teams (edited by hand)",' in out
    assert '+  "title": "GPU teams",' in out and "gpuops-teams: differs" in out and "gpuops-services: same" in out
    assert '"version"' not in out and '"id"' not in out  # Grafana's own fields are not drift
    grafana.state.dashboards.pop("gpuops-pool-detail")
    code, out = gpuops("diff", "--out", str(build), "--grafana-url", grafana.url)
    assert code == 1 and "gpuops-pool-detail: missing in Grafana" in out


def test_dry_run_writes_nothing(grafana, build):
    code, out = gpuops("publish", "--out", str(build), "--grafana-url", grafana.url, "--dry-run")
    assert code == 0 and "folder gpuops ('GPU fleet'): would be created" in out
    assert "gpuops-teams: would be created" in out and "+++ " in out
    assert grafana.posts() == [] and grafana.state.dashboards == {}


def test_an_edit_racing_the_publish_is_not_overwritten_unless_forced(grafana, build, tmp_path):
    assert gpuops("publish", "--out", str(build), "--grafana-url", grafana.url)[0] == 0
    changed = tmp_path / "changed"
    shutil.copytree(build, changed)
    path = changed / "dashboards" / "gpuops-teams.json"
    path.write_text(path.read_text().replace('"GPU teams"', '"GPU teams and budgets"'))
    grafana.state.edit_before_post = "gpuops-teams"  # someone saves it between our read and our post
    code, out = gpuops("publish", "--out", str(changed), "--grafana-url", grafana.url)
    assert code == 1
    assert "FAIL gpuops-teams: changed in Grafana since it was read (412 version-mismatch)" in out
    assert grafana.state.dashboards["gpuops-teams"]["dashboard"]["description"] == "edited in the UI"
    code, out = gpuops("publish", "--out", str(changed), "--grafana-url", grafana.url, "--force")
    assert code == 0 and "gpuops-teams: updated" in out
    assert grafana.state.dashboards["gpuops-teams"]["dashboard"]["title"] == "GPU teams and budgets"


def test_a_title_held_by_another_dashboard_is_named(grafana, build):
    grafana.state.folders["gpuops"] = {"id": 99, "uid": "gpuops", "title": "GPU fleet"}
    grafana.state.dashboards["hand-made"] = {
        "dashboard": {"id": 98, "uid": "hand-made", "title": "GPU teams", "version": 3},
        "folderUid": "gpuops",
        "message": "",
    }
    code, out = gpuops("publish", "--out", str(build), "--grafana-url", grafana.url)
    assert code == 1 and "4 created, 0 updated, 0 unchanged, 1 failed" in out
    assert (
        "FAIL gpuops-teams: another dashboard titled 'GPU teams' is already in folder 'gpuops' (uid hand-made)" in out
    )
    assert "412 name-exists" in out


def test_credentials_permissions_and_server_errors(grafana, build):
    code, out = gpuops("publish", "--out", str(build), "--grafana-url", grafana.url, token="wrong")
    assert code == 2 and "401 Unauthorized" in out and "GRAFANA_TOKEN or --token-file" in out
    code, out = gpuops("publish", "--out", str(build), "--grafana-url", grafana.url, token="viewer-token")
    assert code == 2 and "403 Forbidden" in out and "Editor role on folder 'gpuops'" in out
    assert grafana.state.dashboards == {}
    # Two 503s in a row are retried; the publish then goes through.
    grafana.state.fail_next = [503, 503]
    code, out = gpuops("publish", "--out", str(build), "--grafana-url", grafana.url)
    assert code == 0 and "5 created" in out
    # A Grafana that keeps failing: the reads give up after three tries with its status.
    grafana.state.fail_next = [503] * 3
    code, out = gpuops("diff", "--out", str(build), "--grafana-url", grafana.url)
    assert code == 2 and "503" in out


def test_the_token_can_come_from_a_file(grafana, build, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    code, out = gpuops(
        "publish", "--out", str(build), "--grafana-url", grafana.url, "--token-file", str(token_file), token=""
    )
    assert code == 0 and "5 created" in out
