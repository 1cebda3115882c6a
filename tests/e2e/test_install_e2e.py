"""An installed gpuops, away from this repository: the wheel built from the checkout, installed into a fresh
virtual environment, makes a team's repository with `gpuops init`, and the steps of that repository's own CI
workflow (catalog check, build, lint with Grafana's schema, promtool and amtool) pass there. Nothing of the
checkout, nor `../shared`, is on the way: the content comes from the wheel."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import yaml

from tests.e2e.conftest import ROOT

pytestmark = pytest.mark.e2e


def _sources(dest: Path) -> None:
    """The checkout's files as a clone has them (tracked, and new ones not ignored): no build outputs."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, check=True,
    ).stdout.decode().split("\0")  # fmt: skip
    for rel in filter(None, listed):
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("install")
    src, wheels, env = base / "src", base / "wheels", base / "venv"
    _sources(src)
    run = dict(capture_output=True, text=True, timeout=600)
    w = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(src)], **run)
    assert w.returncode == 0, w.stderr
    (wheel,) = wheels.glob("gpuops-*.whl")
    assert subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env)], **run).returncode == 0
    # The dependencies are this environment's, reached through a .pth (read after the new venv's own
    # site-packages, and without running this environment's .pth files, so its editable gpuops stays out).
    site = Path(subprocess.check_output([env / "bin/python", "-c", "import site; print(site.getsitepackages()[0])"],
                                        text=True).strip())  # fmt: skip
    (site / "gpuops-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    i = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(env / "bin/python"), "install", "-q", "--no-deps", str(wheel)],
        **run,
    )
    assert i.returncode == 0, i.stderr
    return env


def _env(venv: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = os.pathsep.join([str(venv / "bin"), "/usr/local/bin", "/usr/bin", "/bin"])
    return env


def _sh(command: str, cwd: Path, venv: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-c", command], cwd=cwd, env=_env(venv), capture_output=True, text=True, timeout=300)


def test_the_installed_wheel_inits_a_repository_whose_ci_steps_pass(venv: Path, tmp_path: Path):
    where = _sh("python -c 'import console, sys; print(console.__file__)'", tmp_path, venv)
    assert where.stdout.strip().startswith(str(venv)), where.stdout + where.stderr

    made = _sh("gpuops init team", tmp_path, venv)
    assert made.returncode == 0, made.stderr
    team = tmp_path / "team"
    # The content it wrote is the wheel's: the same bytes as the checkout's (read here plainly).
    shipped = (
        "alerts/mixin.libsonnet",
        "alerts/config.libsonnet",
        "alerts/lib/gpuops.libsonnet",
        "alerts/alerts/slo.libsonnet",
    )
    for rel in ("fleet.yaml", *shipped, "alerts/alertmanager.libsonnet", "dashboards/services.py"):
        assert (team / rel).read_bytes() == (ROOT / rel).read_bytes(), rel

    workflow = yaml.safe_load((team / ".github/workflows/gpuops.yml").read_text())
    steps = [s for s in workflow["jobs"]["check"]["steps"] if s.get("run", "").startswith("gpuops ") and "if" not in s]
    commands = [s["run"] for s in steps]
    assert [shlex.split(c)[1] for c in commands] == ["catalog", "build", "lint"]
    for command in commands:
        r = _sh(command, team, venv)
        assert r.returncode == 0, f"{command}\n{r.stdout}\n{r.stderr}"
        if command.startswith("gpuops lint"):
            schema = [line for line in r.stdout.splitlines() if line.startswith("ok   schema")]
            assert len(schema) == len(list(ROOT.glob("dashboards/*.py"))), r.stdout
            assert "FAIL" not in r.stdout
            tests = sorted(p.name for p in ROOT.glob("alerts/tests/*.yaml"))
            assert all(f"tests/{t}" in r.stdout for t in tests), r.stdout


def test_away_from_any_repository_it_builds_from_the_content_it_ships(venv: Path, tmp_path: Path):
    (tmp_path / "fleet.yaml").write_bytes((ROOT / "fleet.yaml").read_bytes())
    r = _sh("gpuops build", tmp_path, venv)
    assert r.returncode == 0, r.stderr
    shipped = [line for line in r.stdout.splitlines() if "(from " in line]
    assert len(shipped) == 2 and all(f"(from {venv}" in line and "/console/shipped/" in line for line in shipped)
    lint = _sh("gpuops lint", tmp_path, venv)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    assert "note: no promtool unit tests (alerts/tests: no *.yaml)" in lint.stderr, lint.stderr
    # A folder of tests named that is not there is a mistake, not a choice to run none.
    lint = _sh("gpuops lint --tests alerts/tset", tmp_path, venv)
    assert lint.returncode == 2 and "'alerts/tset' does not exist" in lint.stderr, lint.stderr


def test_the_readiness_checklist_checks_the_dashboards_with_the_schema_it_ships(venv: Path, tmp_path: Path):
    """What the demo's Readiness view shows as "dashboards build and lint", from the install: no "not found"."""
    (tmp_path / "fleet.yaml").write_bytes((ROOT / "fleet.yaml").read_bytes())
    probe = (
        "from console.catalog import load_catalog\n"
        "from console.codegen.schema import DEFAULT_SCHEMA\n"
        "from console.readiness.gather import dashboards_problem\n"
        "print(DEFAULT_SCHEMA)\n"
        "print(repr(dashboards_problem(load_catalog('fleet.yaml'), DEFAULT_SCHEMA)))\n"
    )
    r = subprocess.run([venv / "bin/python", "-c", probe], cwd=tmp_path, env=_env(venv), capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    schema, problem = r.stdout.splitlines()
    assert schema.startswith(str(venv)) and problem == "''"
