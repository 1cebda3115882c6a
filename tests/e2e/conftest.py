"""Real servers for the e2e tests: the twin (as `gpuops twin`), Prometheus and Alertmanager, on free
loopback ports, always stopped."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import pytest

from console.catalog.model import Catalog
from console.codegen.mixin import OUR_MIXIN, compile_mixin, gpuops_config, scoped, write_rules
from console.procs import alertmanager as am
from console.procs import prometheus as prom
from console.procs import twin as tw
from console.procs.ports import free_port
from console.procs.process import Server

ROOT = Path(__file__).resolve().parents[2]
# Where every twin's clock starts unless a test says otherwise: a weekday in a 30-day month, weeks from the
# catalog's events.
FLEET_START = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
T = TypeVar("T")

pytestmark = pytest.mark.e2e


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Every test under e2e/ is one, whether or not its module says so. `./dev test` runs the modules side by
    # side with `--dist loadfile`: each module's tests stay on one worker, in order, sharing its servers.
    for item in items:
        if "/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


def wait_for(fn: Callable[[], T], timeout: float = 30.0, every: float = 0.3, what: str = "condition") -> T:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            value = fn()
            if value:
                return value
            last = value
        except Exception as e:
            last = e
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; last: {last!r}")


@dataclass
class Stack:
    workdir: Path
    twin: Server
    twin_url: str
    prometheus: Server
    prom_url: str
    alertmanager: Server | None
    am_url: str | None
    kubeconfig: Path


def built_rules(workdir: Path, catalog: Catalog, **config: object) -> list[str]:
    """The rule files `gpuops build` makes for this catalog, with `_config` overrides (a shorter `for`): each
    expression through the catalog's selectors and node labels, as `gpuops build` writes them."""
    doc = scoped(compile_mixin(OUR_MIXIN, config={**gpuops_config(catalog), **config}), catalog)
    built = write_rules(doc, workdir / "rules", "gpuops")
    return [str(built.rules), str(built.alerts)]


def start_stack(
    workdir: Path,
    *twin_args: str,
    with_alertmanager: bool = True,
    rule_files: list[str] | None = None,
    am_config: dict | None = None,
    scrape_interval_s: float = 1.0,
) -> Iterator[Stack]:
    servers: list[Server] = []
    if "--start" not in twin_args:
        # The twin's clock, not the machine's: what the fleet does (diurnal load, an event's spike, the month a
        # cost falls in) must not depend on the day the suite runs.
        twin_args = (*twin_args, "--start", FLEET_START.strftime("%Y-%m-%dT%H:%M:%S"))
    try:
        port = free_port()
        kc = workdir / "kubeconfig.yaml"
        twin = tw.twin(workdir, *twin_args, "--kubeconfig", str(kc), port=port)
        servers.append(twin)
        twin.start(timeout_s=60)
        alert = None
        if with_alertmanager:
            alert = am.alertmanager(workdir, config=am_config)
            servers.append(alert)
            alert.start()
        p = prom.prometheus(
            workdir,
            f"127.0.0.1:{port}",
            scrape_interval_s=scrape_interval_s,
            alertmanager=alert.base_url.removeprefix("http://") if alert else None,
            rule_files=rule_files,
        )
        servers.append(p)
        p.start()
        yield Stack(workdir, twin, twin.base_url, p, p.base_url, alert, alert.base_url if alert else None, kc)
    finally:
        for s in reversed(servers):
            s.stop()


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    yield from start_stack(tmp_path_factory.mktemp("stack"), "--catalog", str(ROOT / "fleet.yaml"), "--warmup", "3")


# The paused fleet of the console's SVG snapshots: its clock is stopped, so every reading repeats. Rates over
# `[1m]` read low until a full minute of samples exists, so it starts with the first e2e test, not its own.
PAUSED_AT = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def paused_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    yield from start_stack(
        tmp_path_factory.mktemp("paused"),
        "--catalog",
        str(ROOT / "fleet.yaml"),
        "--speed",
        "0",
        "--start",
        PAUSED_AT.strftime("%Y-%m-%dT%H:%M:%S"),
        "--warmup",
        "0",
    )


@pytest.fixture(scope="session", autouse=True)
def _paused_stack_starts_early(paused_stack: Stack) -> None:
    """Requested by every e2e test so the paused stack runs while the others do."""
