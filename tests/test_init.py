"""`gpuops init`: a team's repository made whole from what gpuops ships, or not at all."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

import console.scaffold as scaffold
from console.cli.entry import main

ROOT = Path(__file__).resolve().parents[1]


def _listing(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _expected() -> set[str]:
    """The repository's own content, listed plainly: what a team starts from."""
    names = {"fleet.yaml", "README.md", ".gitignore", ".github/workflows/gpuops.yml"}
    for pattern in ("alerts/**/*.libsonnet", "alerts/tests/*.yaml", "dashboards/*.py", "runbooks/*.yaml"):
        names |= {p.relative_to(ROOT).as_posix() for p in ROOT.glob(pattern)}
    names |= {p.relative_to(ROOT).as_posix() for p in ROOT.glob("runbooks/drills/*.yaml")}
    return names


def test_init_makes_the_repository_from_the_shipped_content(tmp_path: Path):
    target = tmp_path / "team"
    r = CliRunner().invoke(main, ["init", str(target)])
    assert r.exit_code == 0, r.output
    got = _listing(target)
    assert set(got) == _expected()
    for name in ("fleet.yaml", "alerts/mixin.libsonnet", "dashboards/pool_detail.py", "runbooks/pre-scale.yaml"):
        assert got[name] == (ROOT / name).read_bytes(), name
    assert [p.name for p in tmp_path.iterdir()] == ["team"]  # no temporary folder left beside it

    workflow = yaml.safe_load(got[".github/workflows/gpuops.yml"])
    from importlib.metadata import version

    assert workflow["env"]["GPUOPS"] == f"gpuops=={version('gpuops')}"
    check = [s.get("run", "") for s in workflow["jobs"]["check"]["steps"]]
    assert any("gpuops build" in c for c in check) and any(c.startswith("gpuops lint") for c in check)
    assert any(c.startswith("gpuops diff") for c in check)
    publish = workflow["jobs"]["publish"]
    assert publish["needs"] == "check" and "refs/heads/main" in publish["if"]
    step = next(s for s in publish["steps"] if s.get("run") == "gpuops publish")
    assert step["env"]["GRAFANA_TOKEN"] == "${{ secrets.GRAFANA_TOKEN }}"
    assert b"@VERSION@" not in got["README.md"] and b"@ORIGIN@" not in got["README.md"]


def test_init_into_a_clone_adds_files_and_touches_nothing_there(tmp_path: Path):
    target = tmp_path / "clone"
    (target / ".git").mkdir(parents=True)
    (target / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (target / "notes.txt").write_text("ours\n")
    r = CliRunner().invoke(main, ["init", str(target)])
    assert r.exit_code == 0, r.output
    got = _listing(target)
    assert set(got) == _expected() | {".git/HEAD", "notes.txt"}
    assert got["notes.txt"] == b"ours\n"


def test_init_refuses_when_any_file_exists_and_writes_nothing(tmp_path: Path):
    target = tmp_path / "team"
    (target / "dashboards").mkdir(parents=True)
    (target / "dashboards" / "teams.py").write_text("# ours\n")
    before = _listing(target)
    r = CliRunner().invoke(main, ["init", str(target)])
    assert r.exit_code == 2
    assert "dashboards/teams.py" in r.output and "nothing written" in r.output
    assert _listing(target) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["team"]


def test_a_stop_part_way_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    target = tmp_path / "clone"
    target.mkdir()
    (target / "keep").write_text("x")
    placed: list[Path] = []
    real = scaffold._place

    def place_then_stop(src: Path, dest: Path) -> None:
        real(src, dest)
        placed.append(dest)
        if len(placed) == 5:
            raise KeyboardInterrupt  # what SIGINT, SIGTERM and SIGHUP raise inside interrupts()

    monkeypatch.setattr(scaffold, "_place", place_then_stop)
    r = CliRunner().invoke(main, ["init", str(target)])
    assert r.exit_code == 130 and "nothing written" in r.output
    assert len(placed) == 5 and not any(p.exists() for p in placed)
    assert _listing(target) == {"keep": b"x"}
    assert [p.name for p in target.iterdir()] == ["keep"]  # the folders it made are gone too
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clone"]


def test_a_discovered_catalog_comes_without_the_example_fleets_tests(tmp_path: Path):
    draft = "# drafted\nclusters: []\n"
    files = scaffold.files("9.9.9", draft)
    assert files["fleet.yaml"] == draft.encode()
    assert not [n for n in files if n.startswith("alerts/tests/")]
    assert b"catalog discover" in files["README.md"]


def test_build_reads_the_working_directory_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A team's own dashboard, beside the copies init made, is built: its repository is what `build` reads."""
    target = tmp_path / "team"
    assert CliRunner().invoke(main, ["init", str(target)]).exit_code == 0
    ours = (target / "dashboards" / "teams.py").read_text()
    (target / "dashboards" / "our_teams.py").write_text(ours)
    monkeypatch.chdir(target)
    r = CliRunner().invoke(main, ["build"])
    assert r.exit_code == 0, r.output
    shipped = {f"gpuops-{p.stem.replace('_', '-')}.json" for p in (ROOT / "dashboards").glob("*.py")}
    assert set(os.listdir(target / "build" / "dashboards")) == shipped | {"gpuops-our-teams.json"}
    assert "(from dashboards)" in r.output and "(from alerts/mixin.libsonnet)" in r.output
