"""The backfilled history: what the twin writes of its past, read back from the files as promtool would."""

from __future__ import annotations

import itertools
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from console.catalog import load_catalog
from console.twin.history import BLOCK_S, RECENT_S, RECENT_STEP_S, rehearsal, target_labels, write_history
from console.twin.sim import Twin

ROOT = Path(__file__).resolve().parents[1]
CATALOG = load_catalog(ROOT / "fleet.yaml")
END = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
STEP = 300.0
LINE = re.compile(r"^(\w+)\{(.*)\} (\S+) (\S+)$")


def samples(files: list[Path]) -> dict[tuple[str, str], list[tuple[float, float]]]:
    out: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for f in files:
        text = f.read_text()
        assert text.endswith("# EOF\n"), f
        block = int(f.stem)
        for line in text.splitlines()[:-1]:
            m = LINE.match(line)
            assert m, line
            ts = float(m[4])
            assert int(ts * 1000) // (BLOCK_S * 1000) == block, (f, line)  # each file holds one block's samples
            out.setdefault((m[1], m[2]), []).append((ts, float(m[3])))
    return out


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory):
    hours = 8  # two of them before the last RECENT_S, which is stepped finer
    twin = Twin(CATALOG, speed=1.0, start=END - timedelta(hours=hours), warmup_s=0)
    wall_end = END.timestamp() + 1000.0  # the wall clock need not be the fleet's
    w = write_history(twin, END, STEP, tmp_path_factory.mktemp("history"), wall_end,
                      target_labels("twin", "127.0.0.1:9"))  # fmt: skip
    return twin, w, samples(list(w.files))


def test_counters_hold_the_load_models_requests_step_by_step(written) -> None:
    _, w, got = written
    fresh = Twin(CATALOG, speed=1.0, start=END)  # the model's demand, read from a twin that wrote nothing
    svc = CATALOG.service("tts-dub")
    key = ("service_requests_total", 'job="twin",instance="127.0.0.1:9",service="tts-dub",region="us-east",code="200"')
    points = got[key]
    fine_from = w.wall_end - RECENT_S
    assert len(points) == 2 * 3600 / STEP + RECENT_S / RECENT_STEP_S + 1
    # A sample of fleet time t is stamped at the wall time the live clock would read t.
    assert points[-1][0] == pytest.approx(w.wall_end)
    for a, b in itertools.pairwise(points):
        assert b[0] - a[0] == pytest.approx(STEP if b[0] <= fine_from + 1e-6 else RECENT_STEP_S), (a, b)
    # Served = demand here (6 replicas, 4 requests/s each, well over the demand): each step adds the rate
    # in effect since the step before, times the step.
    at = lambda ts: END - timedelta(seconds=w.wall_end - ts)  # noqa: E731  the fleet time of a wall stamp
    want = sum(fresh.demand(svc, at(a[0]))["us-east"] * (b[0] - a[0]) for a, b in itertools.pairwise(points))
    assert points[-1][1] - points[0][1] == pytest.approx(want, rel=1e-6)
    assert all(b[1] >= a[1] for a, b in itertools.pairwise(points))  # no reset


def test_every_series_carries_the_scrape_labels_once_and_only_the_chosen_families(written) -> None:
    _, w, got = written
    names = {name for name, _ in got}
    assert names <= w.families and "service_requests_total" in names and "DCGM_FI_DEV_GPU_UTIL" in names
    for name, labels in got:
        for label in ("job", "instance"):
            assert len(re.findall(rf'(?:^|,){label}="', labels)) == 1, (name, labels)
    # OpenCost's series carry their own instance (honor_labels keeps it), not the scrape's.
    cost = [lab for name, lab in got if name == "node_gpu_hourly_cost"]
    assert cost and all('instance="127.0.0.1:9"' not in lab for lab in cost)
    # CPU and memory requests are left out; GPU requests are in.
    reqs = [lab for name, lab in got if name == "kube_pod_container_resource_requests"]
    assert reqs and all('resource="nvidia_com_' in lab for lab in reqs)
    per_step = Counter(ts for points in got.values() for ts, _ in points)
    assert w.series == max(per_step.values()) and w.samples == sum(len(v) for v in got.values())


def test_the_past_holds_a_rehearsal_of_the_next_event_with_its_uplift() -> None:
    ev = CATALOG.events[0]
    end = ev.start - timedelta(days=3)
    [past] = rehearsal(CATALOG, end - timedelta(days=14), end)
    assert past.multiplier == ev.multiplier and past.services == ev.services
    assert past.end - past.start == ev.end - ev.start
    assert past.end <= end - timedelta(days=1) and past.start >= end - timedelta(days=11)
    assert (ev.start - past.start) % timedelta(weeks=1) == timedelta(0)  # the same weekday and clock time
    # Too short a history for three plain days before it and one after: none.
    assert rehearsal(CATALOG, end - timedelta(days=4), end) == []
    # A catalog whose own past event lies in the history needs none: that event is the history's.
    own = CATALOG.model_copy(update={"events": [*CATALOG.events, past]})
    assert rehearsal(own, end - timedelta(days=14), end) == []


def test_a_step_over_the_lookback_or_a_stopped_clock_is_refused(tmp_path) -> None:
    twin = Twin(CATALOG, speed=1.0, start=END - timedelta(hours=1))
    with pytest.raises(ValueError, match="at most 300s"):
        write_history(twin, END, 600, tmp_path, END.timestamp(), target_labels("twin", "x:1"))
    paused = Twin(CATALOG, speed=0.0, start=END - timedelta(hours=1))
    with pytest.raises(ValueError, match="running clock"):
        write_history(paused, END, 300, tmp_path, END.timestamp(), target_labels("twin", "x:1"))
