"""The twin, a real Alertmanager and a real Prometheus evaluating the catalog's built rules: what `gpuops demo`
and `gpuops drill run --context twin` start, on free loopback ports, and always stop."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from console.procs import alertmanager as am
from console.procs import prometheus as prom
from console.procs import twin as tw
from console.procs.ports import free_port
from console.procs.process import Server, Started
from console.procs.recorded import RecordedBackfill
from console.timefmt import age


@dataclass(frozen=True)
class RunningStack:
    twin_url: str
    prom_url: str
    am_url: str
    kubeconfig: Path
    workdir: Path
    servers: tuple[Server, ...]
    relay_url: str = ""
    catalog_path: Path | None = None  # what the console reads: with a history, the twin's copy with its past event
    recorded_log: Path | None = None  # the recorded series' backfill, running in the background

    def exited(self) -> str:
        """The first server that is no longer running, with its exit code and the end of its log; "" if all run."""
        for srv in self.servers:
            if not srv.running:
                code = srv.proc.returncode if srv.proc is not None else None
                return f"{srv.name} exited (code {code}); its log ({srv.log_path}) ends:\n{srv.log_tail()}"
        return ""


@contextmanager
def running_stack(
    catalog_path: Path,
    workdir: Path,
    *,
    speed: float = 1.0,
    scrape_interval_s: float = 2.0,
    rule_files: Sequence[Path] = (),
    twin_args: tuple[str, ...] = (),
    history_s: float = 0.0,
    history_cache: Path | None = None,
    recorded_s: float = 0.0,
    am_config: dict[str, Any] | None = None,
    relay: Server | None = None,
    say: Callable[[str], None] = lambda line: None,
) -> Iterator[RunningStack]:
    """Start the three (raises ServerError naming the one that did not come up); stop them on exit.

    Prometheus evaluates `rule_files`: the caller builds them (`console.codegen.mixin.build_rules`), so that
    starting processes knows nothing of how rules are made. With `history_s`, the twin first writes that much
    of the fleet's past into Prometheus' data folder (`gpuops twin --history`), and Prometheus starts on it;
    `history_cache` keeps it there for the next start to continue; with `recorded_s` as well, the rules' recorded
    series are backfilled over that much of its end, in the background once Prometheus is up. The stack's
    `catalog_path` is then the twin's copy of the catalog with the history's past event: what the console reads.
    `am_config` is Alertmanager's routing (a null receiver without it); `relay`, started before Alertmanager,
    is the `gpuops relay` that routing posts to.
    """
    kubeconfig = workdir / "kubeconfig.yaml"
    with ExitStack() as stack:
        started = Started(stack, say)
        start = started.start

        twin_port = free_port()
        argv: tuple[str, ...] = (
            "--catalog",
            str(catalog_path.resolve()),
            "--speed",
            f"{speed:g}",
            "--kubeconfig",
            str(kubeconfig),
        )
        tsdb, copy = workdir / "tsdb", workdir / "catalog.yaml"
        if history_s:
            argv += ("--history", f"{round(history_s)}s", "--history-blocks", str(tsdb), "--history-catalog",
                     str(copy), "--history-instance", prom.TWIN_INSTANCE)  # fmt: skip
            argv += ("--history-cache", str(history_cache)) if history_cache else ()
        what = f"the fleet twin and {age(history_s)} of its history" if history_s else "the fleet twin"
        # Writing two weeks of a large fleet's past takes minutes on a small machine.
        twin = start(tw.twin(workdir, *argv, *twin_args, port=twin_port), what, 900.0 if history_s else 30.0)
        if relay is not None:
            start(relay, "the alert relay")
        alert = start(am.alertmanager(workdir, config=am_config), "Alertmanager")
        prometheus = start(
            prom.prometheus(
                workdir,
                f"127.0.0.1:{twin_port}",
                scrape_interval_s=scrape_interval_s,
                alertmanager=alert.base_url.removeprefix("http://"),
                rule_files=[str(f) for f in rule_files],
                retention=f"{math.ceil(history_s / 86400) + 1}d" if history_s else "2h",
            ),
            "Prometheus",
        )
        recorded = None
        if history_s and recorded_s and rule_files:
            end = time.time()  # the live rules evaluate from here on
            since = end - min(recorded_s, history_s / speed)
            recorded = RecordedBackfill(prometheus.base_url, tsdb, rule_files, since, end, workdir)
            stack.callback(recorded.stop)
            recorded.start()
        try:
            yield RunningStack(
                twin.base_url, prometheus.base_url, alert.base_url, kubeconfig, workdir, tuple(started.servers),
                relay.base_url if relay else "", copy if history_s else catalog_path,
                recorded.log if recorded else None,
            )  # fmt: skip
        finally:
            say(started.stopping())
