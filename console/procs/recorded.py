"""The recorded series' past: Prometheus' own rule backfill (`promtool tsdb create-blocks-from rules`) over the
last hours of a backfilled history, evaluated by the Prometheus that holds it, the blocks moved into its data
folder while it runs (it loads new blocks within a minute and compacts the overlap away).

promtool evaluates every rule against the server as it stands, so a rule that reads another recorded series
sees none of that series' past: rules are run in passes by how deep they read (`levels`), each pass once
Prometheus has loaded the blocks of the one before.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import yaml

from console.atomic import write_atomic
from console.procs.process import find_binary
from console.twin.history import RECENT_S

RECORDED_S = RECENT_S  # the dashboards' default range, where the history holds all the rules read
EVAL_INTERVAL_S = 60  # under Prometheus' 5-minute lookback, so a panel at any step finds a sample
LOAD_WAIT_S = 180.0  # Prometheus loads blocks on its minute tick; a pass that waits longer is reported, not hung


def levels(rule_files: Sequence[Path]) -> list[list[tuple[str, dict[str, Any]]]]:
    """The recording rules of `rule_files` as (group, rule) in passes: pass 0 reads only scraped series, pass k
    reads a series recorded in pass k-1 at the latest. Alerting rules are left out (promtool skips them)."""
    rules: list[tuple[str, dict[str, Any]]] = []
    for path in rule_files:
        doc = yaml.safe_load(path.read_text()) or {}
        for group in doc.get("groups") or []:
            rules += [(str(group["name"]), r) for r in group.get("rules") or [] if "record" in r]
    names = {str(r["record"]) for _, r in rules}
    reads = {
        str(r["record"]): {n for n in names if re.search(rf"(?<![\w:]){re.escape(n)}(?![\w:])", str(r["expr"]))}
        for _, r in rules
    }
    depth: dict[str, int] = {}

    def level(name: str, seen: frozenset[str] = frozenset()) -> int:
        if name not in depth:  # a cycle (Prometheus refuses none) counts as read from the pass before
            depth[name] = 1 + max((level(n, seen | {name}) for n in reads[name] - seen - {name}), default=-1)
        return depth[name]

    out: list[list[tuple[str, dict[str, Any]]]] = []
    for group, rule in rules:
        k = level(str(rule["record"]))
        out += [[] for _ in range(k + 1 - len(out))]
        out[k].append((group, rule))
    return out


class RecordedBackfill(threading.Thread):
    """Runs the passes in the background; `stop()` ends promtool and the thread. Progress and the outcome go to
    `log` (one line each), and `result` holds the last line once the thread is done."""

    def __init__(
        self, prom_url: str, tsdb: Path, rule_files: Sequence[Path], start: float, end: float, workdir: Path
    ) -> None:
        super().__init__(name="recorded-backfill", daemon=True)
        self.prom_url, self.tsdb, self.rule_files = prom_url, tsdb, list(rule_files)
        self.start_s, self.end_s = start, end
        self.workdir = workdir / "recorded"
        self.log = workdir / "recorded-backfill.log"
        self.result = ""
        self._stopped = threading.Event()
        self._proc: subprocess.Popen[str] | None = None

    def stop(self) -> None:
        self._stopped.set()
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
        self.join(timeout=10)

    def _say(self, line: str) -> None:
        with self.log.open("a") as f:
            f.write(f"{time.strftime('%H:%M:%S')} {line}\n")

    def run(self) -> None:
        t0 = time.monotonic()
        try:
            passes = levels(self.rule_files)
            made = 0
            for k, rules in enumerate(passes):
                if self._stopped.is_set():
                    return
                blocks = self._pass(k, rules)
                made += blocks
                self._say(f"pass {k + 1}/{len(passes)}: {len(rules)} rules, {blocks} blocks")
                if blocks and k + 1 < len(passes) and not self._loaded([str(r["record"]) for _, r in rules]):
                    if not self._stopped.is_set():
                        self.result = f"failed: Prometheus did not load pass {k + 1}'s blocks in {LOAD_WAIT_S:.0f}s"
                    return
            n = sum(len(p) for p in passes)
            hours = (self.end_s - self.start_s) / 3600
            self.result = f"done: {n} rules over {hours:.1f}h, {made} blocks, {time.monotonic() - t0:.1f}s"
        except (OSError, ValueError, KeyError, TypeError, yaml.YAMLError, httpx.HTTPError, RuntimeError) as e:
            self.result = f"failed: {e}"
        finally:
            shutil.rmtree(self.workdir, ignore_errors=True)
            if self.result:
                self._say(self.result)

    def _pass(self, k: int, rules: list[tuple[str, dict[str, Any]]]) -> int:
        """promtool over this pass' rules; its blocks moved into the data folder. Returns how many."""
        out, rule_file = self.workdir / f"pass{k}", self.workdir / f"pass{k}.yaml"
        out.mkdir(parents=True, exist_ok=True)
        groups: dict[str, list[dict[str, Any]]] = {}
        for group, rule in rules:
            groups.setdefault(group, []).append(rule)
        write_atomic(rule_file, yaml.safe_dump({"groups": [{"name": g, "rules": r} for g, r in groups.items()]}))
        self._proc = subprocess.Popen(
            [find_binary("promtool"), "tsdb", "create-blocks-from", "rules", f"--url={self.prom_url}",
             f"--start={int(self.start_s)}", f"--end={int(self.end_s)}", f"--eval-interval={EVAL_INTERVAL_S}s",
             f"--output-dir={out}", str(rule_file)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        output, _ = self._proc.communicate()
        if self._proc.returncode != 0:
            if self._stopped.is_set():
                return 0
            raise RuntimeError(f"promtool (pass {k + 1}): {output.strip()[-2000:]}")
        blocks = [b for b in out.iterdir() if b.is_dir()]
        if not blocks:  # promtool says why (a rule it could not evaluate is a warning, not a failure)
            self._say(f"pass {k + 1}: promtool made no block: {output.strip()[-1000:]}")
        for b in blocks:  # same file system: each block appears whole
            b.rename(self.tsdb / b.name)
        return len(blocks)

    def _loaded(self, records: list[str]) -> bool:
        """Whether Prometheus reads any of `records` inside the window yet (it loads new blocks each minute)."""
        query = f'count({{__name__=~"{"|".join(records)}"}})'  # at the window's end, within the lookback
        deadline = time.monotonic() + LOAD_WAIT_S
        while not self._stopped.wait(2.0):
            r = httpx.get(f"{self.prom_url}/api/v1/query", params={"query": query, "time": self.end_s - 60})
            r.raise_for_status()
            if r.json()["data"]["result"]:
                return True
            if time.monotonic() > deadline:
                return False
        return False
