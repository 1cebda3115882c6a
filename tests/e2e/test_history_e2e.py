"""The backfilled history end to end: the demo's stack (`running_stack`, as `gpuops demo --history` runs it)
with two days of the fleet's past written by the twin and loaded by promtool before Prometheus starts.
Prometheus' count of a backfilled day's requests is checked against the load model integrated here, and
the live scrapes go on with the very same series, without a reset at the seam. A second stack on the same
history cache continues the first one's history: its Prometheus holds the same past, and both seams (the
kept history's end, this start's) go on without a reset."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from console.catalog import load_catalog
from console.catalog.model import Catalog
from console.procs.stack import RunningStack, running_stack
from console.sources.twin import TwinControl
from console.twin.sim import Twin
from tests.e2e.conftest import ROOT, wait_for

# Heavy: `./dev test` runs it after the other e2e modules, alone, so that its load (a trace's 15-30 MB
# scrapes, a history's backfill) does not slow the neighbours' clocked checks, nor theirs its own.
pytestmark = pytest.mark.heavy

CATALOG = load_catalog(ROOT / "fleet.yaml")
DAYS = 2
STEP = 300.0


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("history-cache")


@pytest.fixture(scope="module")
def hstack(tmp_path_factory: pytest.TempPathFactory, cache: Path) -> Iterator[RunningStack]:
    workdir = tmp_path_factory.mktemp("history")
    with running_stack(ROOT / "fleet.yaml", workdir, scrape_interval_s=1.0, history_s=DAYS * 86400,
                       history_cache=cache) as s:  # fmt: skip
        yield s


def backfilled_days_requests(stack: RunningStack, catalog: Catalog) -> tuple[float, float]:
    """Prometheus' count of the requests of the day that ends an hour before the history's end, and the load
    model's own (every service's demand in every region, served or refused, all codes, a step at a time)."""
    twin = TwinControl(stack.twin_url)
    wall_end, sim_end, speed = twin.timeline().segments[-1]  # the seam: the history's end
    twin.close()
    assert speed == 1
    [(_, got)] = prom(stack, "sum(increase(service_requests_total[1d]))", wall_end - 3600)
    model = Twin(catalog, speed=1.0, start=sim_end)
    day_start = sim_end - timedelta(seconds=3600 + 86400)
    want = sum(
        sum(model.demand(svc, day_start + timedelta(seconds=k * STEP)).values()) * STEP
        for svc in catalog.services
        for k in range(int(86400 / STEP))
    )
    return got, want


def twin_history_start(stack: RunningStack) -> float:
    """Where the twin's timeline begins: the history's first step, so that readiness and the cost report,
    which read no further back than the timeline, read the history."""
    twin = TwinControl(stack.twin_url)
    try:
        return twin.timeline().segments[0][0]
    finally:
        twin.close()


def prom(stack: RunningStack, promql: str, at: float | None = None) -> list[tuple[dict[str, str], float]]:
    params = {"query": promql, **({"time": f"{at:.3f}"} if at is not None else {})}
    r = httpx.get(f"{stack.prom_url}/api/v1/query", params=params, timeout=30).json()
    return [(x["metric"], float(x["value"][1])) for x in r["data"]["result"]]


def test_a_backfilled_days_requests_are_the_load_models(hstack) -> None:
    twin = TwinControl(hstack.twin_url)
    wall_end = twin.timeline().segments[-1][0]
    twin.close()
    assert twin_history_start(hstack) == pytest.approx(wall_end - DAYS * 86400, abs=STEP)
    # The model runs on the catalog the stack hands the console: the original with the history's past events.
    got, want = backfilled_days_requests(hstack, load_catalog(hstack.catalog_path))
    assert got == pytest.approx(want, rel=0.01)


def test_the_live_scrapes_go_on_with_the_same_series_and_no_reset(hstack) -> None:
    twin = TwinControl(hstack.twin_url)
    wall_end = twin.timeline().segments[-1][0]
    twin.close()
    # Some live scrapes after the seam first.
    wait_for(
        lambda: min((v for _, v in prom(hstack, "timestamp(service_requests_total)")), default=0) > wall_end + 20,
        timeout=120, what="live scrapes after the history's end",
    )  # fmt: skip
    expected = sum(2 * len(s.regions) for s in CATALOG.services)  # a 200 and a 503 series per region
    assert len(prom(hstack, "service_requests_total")) == expected  # one series each: history's and live alike
    window = f"{round(time.time() - wall_end + 1800)}s"  # the last half hour of history and all that is live
    assert [v for _, v in prom(hstack, f"sum(resets(service_requests_total[{window}]))")] == [0]
    history_points = prom(hstack, f"count_over_time(service_requests_total[{window}] @ {wall_end:.3f})")
    assert history_points and min(v for _, v in history_points) >= 1800 / STEP  # the history's side of the seam
    # Readiness and the cost report read the same: the pods' GPU requests and the GPUs' busy reach back too.
    for family in ("kube_pod_container_resource_requests", "DCGM_FI_DEV_GPU_UTIL"):
        back = prom(hstack, f"count({family})", wall_end - (DAYS - 0.5) * 86400)
        assert back and back[0][1] > 0, family


def test_a_second_start_continues_the_kept_history_without_a_reset(hstack, cache, tmp_path) -> None:
    first = TwinControl(hstack.twin_url)
    kept_end = first.timeline().segments[-1][0]
    first.close()
    with running_stack(ROOT / "fleet.yaml", tmp_path, scrape_interval_s=1.0, history_s=DAYS * 86400,
                       history_cache=cache) as again:  # fmt: skip
        log = (tmp_path / "twin.log").read_text()
        assert "kept" in log and "cache not used" not in log, log[-2000:]
        twin = TwinControl(again.twin_url)
        wall_end = twin.timeline().segments[-1][0]
        twin.close()
        assert wall_end > kept_end
        # The kept past is this Prometheus' too, to the sample.
        at = kept_end - 3 * 3600
        for promql in ("sum(service_requests_total)", "count(DCGM_FI_DEV_GPU_UTIL)"):
            assert prom(again, promql, at) == prom(hstack, promql, at), promql
        got, want = backfilled_days_requests(again, load_catalog(again.catalog_path))
        assert got == pytest.approx(want, rel=0.01)
        wait_for(
            lambda: min((v for _, v in prom(again, "timestamp(service_requests_total)")), default=0) > wall_end + 10,
            timeout=120, what="live scrapes after the continued history's end",
        )  # fmt: skip
        window = f"{round(time.time() - kept_end + 1800)}s"  # both seams: the kept history's end and this start's
        assert [v for _, v in prom(again, f"sum(resets(service_requests_total[{window}]))")] == [0]
        expected = sum(2 * len(s.regions) for s in CATALOG.services)
        assert len(prom(again, "service_requests_total")) == expected  # one series each, kept and live alike
