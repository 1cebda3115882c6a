"""Check built rules with the real tools: `promtool check rules` and `promtool test rules`."""

from __future__ import annotations

import os
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import yaml

from console.procs.process import find_binary


@dataclass(frozen=True)
class Finding:
    tool: str
    target: str
    ok: bool
    output: str


def run_tool(tool: str, args: list[str], target: str, cwd: Path | None = None) -> Finding:
    p = subprocess.run([find_binary(tool), *args], capture_output=True, text=True, cwd=cwd, check=False)
    flags = "".join(f" {a}" for a in args[2:] if a.startswith("--lint"))
    return Finding(f"{tool} {args[0]} {args[1]}{flags}", target, p.returncode == 0, (p.stdout + p.stderr).strip())


def check_rules(files: list[Path]) -> list[Finding]:
    """`promtool check rules --lint-fatal`: a lint finding (duplicate rules) fails the check, not just prints."""
    return [run_tool("promtool", ["check", "rules", "--lint-fatal", str(f)], str(f)) for f in files]


def shown(f: Finding) -> list[str]:
    """What to print under a finding: all a failing tool said; of a passing promtool, what it said beyond its
    routine lines (warnings a reader must still see). A passing amtool's output is its receiver list."""
    if not f.ok:
        return f.output.splitlines()
    if not f.tool.startswith("promtool"):
        return []
    routine = ("Checking ", "SUCCESS", "Unit Testing:", "  SUCCESS")
    return [ln for ln in f.output.splitlines() if ln.strip() and not ln.startswith(routine)]


def test_rules(tests: list[Path], rules_dir: Path) -> list[Finding]:
    """Each promtool unit-test file against the rules in `rules_dir`: its `rule_files` are taken by their
    file names, so the same tests check whichever build folder `--out` named. The files run side by side, one a
    core: each is a promtool of its own that evaluates every rule over its series, seconds apiece (15 s one
    after another for the shipped tests here); the findings come back in the files' order."""
    with tempfile.TemporaryDirectory(prefix="gpuops-lint-") as tmp:
        copies: list[Path] = []
        for t in tests:
            doc = yaml.safe_load(t.read_text())
            doc["rule_files"] = [str((rules_dir / Path(f).name).resolve()) for f in doc.get("rule_files", [])]
            copy = Path(tmp) / t.name
            copy.write_text(yaml.safe_dump(doc, sort_keys=False))
            copies.append(copy)

        def run(test: Path, copy: Path) -> Finding:
            return run_tool("promtool", ["test", "rules", copy.name], str(test), cwd=copy.parent)

        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            return list(pool.map(run, tests, copies))


def check_alertmanager(config: Path, expected: dict[tuple[str, str], list[str]]) -> list[Finding]:
    """`amtool check-config`, then `amtool config routes test` for each team and severity."""
    out = [run_tool("amtool", ["check-config", str(config)], str(config))]
    for (team, severity), receivers in sorted(expected.items()):
        args = ["config", "routes", "test", f"--config.file={config}", f"--verify.receivers={','.join(receivers)}"]
        found = run_tool("amtool", [*args, f"team={team}", f"severity={severity}"], f"team={team} severity={severity}")
        out.append(Finding(f"amtool config routes test → {','.join(receivers)}", found.target, found.ok, found.output))
    return out
