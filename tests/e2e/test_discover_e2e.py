"""`gpuops catalog discover` against a twin labelled as Karpenter labels nodes, and `gpuops init --discover` on
it: the repository it makes builds and lints, and the console run on its catalog shows the twin's pools with the
twin's GPUs (read through its Kubernetes API)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from console.catalog import load_catalog
from tests.e2e.conftest import ROOT, start_stack
from tests.e2e.console_helpers import TwinTruth, pools_view_on
from tests.fleetdoc import gpus_per_pool

pytestmark = pytest.mark.e2e


def gpuops(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "console.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=300
    )


async def test_discover_on_a_karpenter_twin_then_build_lint_and_the_console(tmp_path: Path):
    gen = start_stack(tmp_path, "--catalog", str(ROOT / "fleet.yaml"), "--labels", "karpenter", "--warmup", "0")
    stack = next(gen)
    try:
        draft = tmp_path / "discovered.yaml"
        r = gpuops("catalog", "discover", "--kubeconfig", str(stack.kubeconfig), "--context", "twin", "-o", str(draft))
        assert r.returncode == 0, r.stderr
        assert "placeholders to replace" in r.stderr
        # A second run does not overwrite the draft someone may be editing.
        again = gpuops(
            "catalog", "discover", "--kubeconfig", str(stack.kubeconfig), "--context", "twin", "-o", str(draft)
        )
        assert again.returncode == 2 and "--force" in again.stderr
        check = gpuops("catalog", "check", str(draft))
        assert check.returncode == 0 and "monthly_budget: placeholder" in check.stderr, check.stderr
        assert gpuops("catalog", "check", "--strict", str(draft)).returncode == 1

        # A team's repository from the same cluster: the draft as its catalog, without the example's tests.
        kube = ("--kubeconfig", str(stack.kubeconfig), "--context", "twin")
        made = gpuops("init", "--discover", *kube, "team", cwd=tmp_path)
        assert made.returncode == 0, made.stderr
        team = tmp_path / "team"
        assert not (team / "alerts" / "tests").exists()
        b = gpuops("build", cwd=team)
        assert b.returncode == 0, b.stderr
        assert "(from dashboards)" in b.stdout, b.stdout
        lint = gpuops("lint", cwd=team)
        assert lint.returncode == 0, lint.stdout + lint.stderr
        assert "FAIL" not in lint.stdout and "ok   schema" in lint.stdout, lint.stdout
        assert load_catalog(team / "fleet.yaml").pools == load_catalog(draft).pools

        catalog = load_catalog(team / "fleet.yaml")
        assert catalog.node_labels.pool == "karpenter.sh/nodepool"
        truth = {k: v[0] for k, v in TwinTruth(str(stack.kubeconfig), catalog).pools().items()}
        # And the twin holds what the original catalog plans (read plainly): nothing was lost on the way.
        planned = {f"{p}/{r}": float(g) for (p, r), g in gpus_per_pool(cpu=True).items()}
        assert truth == planned
        async with pools_view_on(stack, catalog, truth, "the twin's GPUs"):
            pass  # entered once the console's Pools view equals the twin's GPUs (it fails after 30 s otherwise)
    finally:
        gen.close()
