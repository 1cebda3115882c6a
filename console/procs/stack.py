"""The twin, a real Alertmanager and a real Prometheus evaluating the catalog's built rules: what `gpuops demo`
and `gpuops drill run --context twin` start, on free loopback ports, and always stop."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from console.procs import alertmanager as am
from console.procs import prometheus as prom
from console.procs import twin as tw
from console.procs.ports import free_port
from console.procs.process import Server


@dataclass(frozen=True)
class RunningStack:
    twin_url: str
    prom_url: str
    am_url: str
    kubeconfig: Path
    workdir: Path
    servers: tuple[Server, ...]


@contextmanager
def running_stack(
    catalog_path: Path,
    workdir: Path,
    *,
    speed: float = 1.0,
    scrape_interval_s: float = 2.0,
    rule_files: Sequence[Path] = (),
    twin_args: tuple[str, ...] = (),
    say: Callable[[str], None] = lambda line: None,
) -> Iterator[RunningStack]:
    """Start the three (raises ServerError naming the one that did not come up); stop them on exit.

    Prometheus evaluates `rule_files`: the caller builds them (`console.codegen.mixin.build_rules`), so that
    starting processes knows nothing of how rules are made.
    """
    kubeconfig = workdir / "kubeconfig.yaml"
    with ExitStack() as stack:
        servers: list[Server] = []

        def start(server: Server, what: str) -> Server:
            say(f"starting {what} …")
            stack.callback(server.stop)
            servers.append(server.start())
            return server

        twin_port = free_port()
        argv = ("--catalog", str(catalog_path.resolve()), "--speed", f"{speed:g}", "--kubeconfig", str(kubeconfig))
        twin = start(tw.twin(workdir, *argv, *twin_args, port=twin_port), "the fleet twin")
        alert = start(am.alertmanager(workdir), "Alertmanager")
        prometheus = start(
            prom.prometheus(
                workdir,
                f"127.0.0.1:{twin_port}",
                scrape_interval_s=scrape_interval_s,
                alertmanager=alert.base_url.removeprefix("http://"),
                rule_files=[str(f) for f in rule_files],
            ),
            "Prometheus",
        )
        try:
            yield RunningStack(twin.base_url, prometheus.base_url, alert.base_url, kubeconfig, workdir, tuple(servers))
        finally:
            say("stopping " + ", ".join(s.name for s in reversed(servers)) + " …")
