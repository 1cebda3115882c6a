"""The headless CLI starts without Textual or the kubernetes client (as harlequin proves for its CLI)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HEAVY = ("textual", "kubernetes", "prometheus_api_client", "httpx", "console.tui", "console.twin")


def test_cli_import_graph_has_no_textual_nor_kubernetes():
    code = f"import sys, console.cli\nheavy = [m for m in {HEAVY!r} if m in sys.modules]\nprint(','.join(heavy))\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "", f"importing console.cli pulled in: {out}"


def test_help_lists_commands_without_loading_them():
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from console.cli import main\n"
        "r = CliRunner().invoke(main, ['--help'])\n"
        "assert r.exit_code == 0, r.output\n"
        "for c in ('catalog', 'twin', 'demo', 'console', 'snapshot'): assert c in r.output, c\n"
        "print(','.join(m for m in ('textual', 'kubernetes') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""


def test_version_and_each_shells_completion_script():
    from click.testing import CliRunner

    from console.cli import main

    r = CliRunner().invoke(main, ["--version"])
    assert r.exit_code == 0 and r.output.startswith("gpuops, version "), r.output
    heads = {"bash": "_gpuops_completion()", "zsh": "#compdef gpuops", "fish": "function _gpuops_completion"}
    for shell, head in heads.items():
        r = CliRunner().invoke(main, ["completion", shell])
        assert r.exit_code == 0 and head in r.output and "_GPUOPS_COMPLETE" in r.output, (shell, r.output[:200])
    # What the script asks for: completions of the command line so far, from the same program.
    env = {"_GPUOPS_COMPLETE": "bash_complete", "COMP_WORDS": "gpuops cat", "COMP_CWORD": "1"}
    r = CliRunner().invoke(main, [], env=env, prog_name="gpuops")
    assert "catalog" in r.output, r.output
    r = CliRunner().invoke(main, ["completion", "tcsh"])
    assert r.exit_code == 2 and "tcsh" in r.output


def test_the_consoles_first_refresh_is_handed_over_before_the_kubernetes_client_loads(tmp_path):
    """The client's imports (0.3 s) would slow the UI's own beside them: they start once the first refresh (which
    reads Prometheus only) is taken, and the context's API is ready for the second."""
    kc = tmp_path / "kc.yaml"
    kc.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: twin\nclusters:\n- name: twin\n  cluster: {server: "
        "'http://127.0.0.1:9'}\nusers:\n- name: u\n  user: {}\ncontexts:\n- name: twin\n  context: {cluster: twin, "
        "user: u}\n"
    )
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from console.catalog import load_catalog\n"
        "from console.wiring import connect\n"
        f"c = connect(load_catalog(Path('fleet.yaml')), 'http://127.0.0.1:9', {str(kc)!r}, None, prefetch=True)\n"
        "before = 'kubernetes' in sys.modules\n"
        "snap = c.snapshot()\n"
        "kube = c.kube\n"
        "print(before, type(kube).__name__, c.builder.kube is kube, snap.failing()[0].name)\n"
        "c.close()\n"
    )
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=root)
    assert out.stdout.split() == ["False", "KubeSource", "True", "prometheus"], out.stdout + out.stderr
