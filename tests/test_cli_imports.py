"""The headless CLI starts without Textual or the kubernetes client (as harlequin proves for its CLI)."""

from __future__ import annotations

import subprocess
import sys

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
