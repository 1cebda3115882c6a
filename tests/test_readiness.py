"""Readiness without servers: the forecasters and their scores, the capacity math, verdicts, the checklist
and the actions, on the demo catalog with a stand-in forecaster where the model is not the point."""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from console.fleet.sizing import Cost, Room, Verdict, request_cost, size
from console.fleet.snapshot import FleetSnapshot, PoolRow, QuotaRow, ServiceRow
from console.readiness.assess import Inputs, assess
from console.readiness.backtest import rolling_origin, trace_buckets
from console.readiness.forecast import (
    Series,
    coverage,
    last_value,
    mape,
    prophet,
    resample,
    seasonal_naive,
    smape,
)
from console.readiness.peaks import PeakForecast
from console.readiness.render import render_json, render_markdown, render_table
from tests.fleetdoc import named, replica_rps

NOW = datetime(2026, 12, 20, tzinfo=UTC)


def test_scores_by_their_definitions():
    assert smape([100, 0], [50, 0]) == pytest.approx(100 * (2 * 50 / 150) / 2)
    assert mape([100, 0, 50], [110, 5, 50]) == pytest.approx(5.0)  # the zero actual is left out
    assert coverage([1, 5, 9], [0, 0, 0], [2, 6, 8]) == pytest.approx(200 / 3)


def test_baselines_repeat_the_last_value_and_the_value_one_season_before():
    s = Series(tuple(float(t) for t in range(0, 100, 10)), tuple(float(v) for v in range(10)))
    future = [100.0, 110.0]
    assert last_value(s, future).point == (9.0, 9.0)
    assert seasonal_naive(s, future, 30).point == (7.0, 8.0)  # 100 -> 70, 110 -> 80
    gappy = Series((0.0, 10.0, 30.0, 40.0), (1.0, 2.0, 4.0, 5.0))  # 20 s is missing
    # 50 s -> 20 s is missing, and nothing a season before it: the last value; 60 s -> 30 s.
    assert seasonal_naive(gappy, [50.0, 60.0], 30).point == (5.0, 4.0)


def test_resample_averages_into_buckets_and_leaves_empty_ones_out():
    s = resample([(0, 1), (5, 3), (25, 10), (float("nan"), 1)], 10)
    assert s.ts == (0.0, 20.0) and s.values == (2.0, 10.0)


def test_prophet_learns_a_daily_shape_and_beats_the_last_value_on_it():
    day = 86400
    ts = [i * 1800.0 for i in range(4 * 48)]  # four days, half-hourly
    ys = [100 + 40 * math.sin(2 * math.pi * t / day) for t in ts]
    future = [ts[-1] + 1800 * k for k in range(1, 49)]
    truth = [100 + 40 * math.sin(2 * math.pi * t / day) for t in future]
    f = prophet(Series(tuple(ts), tuple(ys)), future)
    assert smape(truth, f.point) < 3
    assert smape(truth, f.point) < smape(truth, last_value(Series(tuple(ts), tuple(ys)), future).point)
    assert f.peak() == pytest.approx(140, rel=0.05) and all(
        lo <= p <= hi for lo, p, hi in zip(f.lower, f.point, f.upper, strict=True)
    )


def test_rolling_origin_scores_each_horizon_on_the_bucket_that_far_ahead(tmp_path: Path):
    csv = tmp_path / "trace.csv"
    rows = ["TIMESTAMP,ContextTokens,GeneratedTokens"]
    for bucket, n in enumerate([3, 5, 5, 5, 6, 6, 6, 7, 7]):
        rows += [f"2023-11-16 18:{bucket:02d}:{i:02d}.1234567,10,10" for i in range(n)]
    csv.write_text("\n".join(rows) + "\n")
    s = trace_buckets([csv], 60)
    assert s.values == (5, 5, 5, 6, 6, 6, 7)  # first and last (partial) buckets dropped
    scores = rolling_origin(s, {"last": last_value}, [1, 2], min_train=3)
    # Origins 3..5: every horizon is scored from every origin.
    assert scores[("last", 1)].actual == [6, 6, 6] and scores[("last", 1)].point == [5, 6, 6]
    assert scores[("last", 2)].actual == [6, 6, 7] and scores[("last", 2)].point == [5, 6, 6]


def test_a_bad_timestamp_names_the_file_line_and_column(tmp_path: Path):
    csv = tmp_path / "trace.csv"
    csv.write_text("TIMESTAMP,ContextTokens\n2023-11-16 18:00:00.1,1\nyesterday,2\n")
    with pytest.raises(ValueError, match=r"trace.csv:3: TIMESTAMP: 'yesterday'"):
        trace_buckets([csv], 30)


def test_sizing_by_hand(catalog):
    tts = catalog.service("tts-dub")  # 1 GPU per replica, 0.25 GPU-s per request, 70 % target
    cost = request_cost(catalog, tts, "us-east", None)
    assert cost == Cost(0.25, "0.25 GPU-s/request (catalog)")
    per = replica_rps(named("services", "tts-dub"))
    s = size(tts, "us-east", 28.0, cost, 0.25, 10, Room(100, None))
    assert (s.replica_rps, s.needed_replicas, s.required_replicas) == (pytest.approx(per), 10, 13)
    assert s.verdict is Verdict.AT_RISK and s.gap_replicas == 3 and s.gap_gpus == 3 and s.fillable
    assert size(tts, "us-east", 28.0, cost, 0.25, 13, Room(0, 0)).verdict is Verdict.READY
    short = size(tts, "us-east", 28.0, cost, 0.25, 4, Room(5, None))
    assert short.verdict is Verdict.NOT_READY and short.gap_gpus == 9 and not short.fillable


def test_llm_cost_comes_from_tokens_and_the_regions_gpu_model(catalog):
    chat = catalog.service("llm-chat")  # L4 (450 tokens/GPU-s) in us-east, T4 (220) in ap-southeast
    assert request_cost(catalog, chat, "us-east", 225.0).gpu_seconds == pytest.approx(0.5)
    assert request_cost(catalog, chat, "ap-southeast", None).gpu_seconds == pytest.approx(180 / 220)
    assert "measured" in request_cost(catalog, chat, "us-east", 225.0).basis


def _flat(history: Series, start: float, duration: float, now: float) -> PeakForecast:
    """A stand-in model: the history's mean is the P95 of the peak, held on 5 of 5 past windows."""
    m = sum(history.values) / len(history)
    return PeakForecast("flat", m, m, 5, 5, 5)


def _inputs(catalog, history, replicas: dict[tuple[str, str], int], **kw) -> Inputs:
    services = tuple(
        ServiceRow(s, r, n, n, None, 1.0, 0.0, 100.0, 1000.0, 50.0, "normal", 1.0) for (s, r), n in replicas.items()
    )
    pools = (PoolRow("infer-l4", "us-east", "L4", 10, 10, 40, 20, 0, 50, 0, 0, 0),)
    quotas = (QuotaRow("team-media", "media-ai", 10, 48, 0, None, 0, None),)
    base = dict(
        now=NOW, wall_now=NOW, history=history, tokens_per_request={},
        snapshot=FleetSnapshot(NOW, pools, (), quotas, services), alert_rules=[], alert_rules_error="",
        fallbacks={}, runbooks=set(), drilled={}, dashboards="",
    )  # fmt: skip
    base.update(kw)
    return Inputs(**base)


def _gala_with(catalog, *services: str):
    return catalog.event("year-end-gala").model_copy(update={"services": list(services)})


def test_verdicts_missing_history_and_actions(catalog):
    event = _gala_with(catalog, "tts-dub")
    hist = Series(tuple(NOW.timestamp() - 3600 * k for k in range(48, 0, -1)), (10.0,) * 48)
    # us-east: 10 rps x3 = 30 -> 11 needed, 14 required; eu-west has no history at all.
    inp = _inputs(catalog, {("tts-dub", "us-east"): hist}, {("tts-dub", "us-east"): 4, ("tts-dub", "eu-west"): 4})
    r = assess(catalog, event.model_copy(update={"start": NOW + timedelta(days=3)}), inp, forecaster=_flat)
    by = {(x.service, x.region): x for x in r.rows}
    east = by[("tts-dub", "us-east")]
    assert east.verdict is Verdict.NOT_READY and east.sizing.required_replicas == 14 and east.sizing.gap_gpus == 10
    assert east.sizing.fillable and "short 10 replicas" in east.reason
    assert by[("tts-dub", "eu-west")].verdict is Verdict.NO_DATA
    assert "no request history for tts-dub in eu-west" in by[("tts-dub", "eu-west")].reason
    assert r.verdict == "NOT READY" and r.status == "upcoming" and r.countdown == timedelta(days=3)
    assert [a.command() for a in r.actions] == [
        "gpuops runbook run pre-scale service=tts-dub region=us-east replicas=14"
    ]
    items = {i.name: i for i in r.checklist}
    assert not items["fallback for tts-dub"].ok and "fallback.mode: none" in items["fallback for tts-dub"].reason
    assert not items["alerts for tts-dub"].ok  # no rule loaded selects it
    assert not items["runbook pre-scale"].ok and "no runbooks/pre-scale.yaml" in items["runbook pre-scale"].reason
    assert items["quota team-media"].ok and "needs 10 more GPUs, quota leaves 38" in items["quota team-media"].reason
    # Each format says the same: the rows, their verdicts and the required replicas (14 for us-east).
    doc = json.loads(render_json(r))
    assert [(x["service"], x["region"], x["verdict"]) for x in doc["services"]] == [
        ("tts-dub", "us-east", "NOT READY"), ("tts-dub", "eu-west", "NO DATA"), ("tts-dub", "ap-southeast", "NO DATA"),
    ]  # fmt: skip
    assert doc["verdict"] == "NOT READY" and doc["services"][0]["sizing"]["required_replicas"] == 14
    east = next(ln for ln in render_table(r).splitlines() if ln.startswith("tts-dub  us-east"))
    cells = re.split(r"\s{2,}", east)  # columns: ready, need, required, gap replicas, gap GPUs at the end
    assert cells[2] == "NOT READY" and cells[5:] == ["4", "11", "14", "10", "10"], cells
    assert "| tts-dub | us-east | NOT READY |" in render_markdown(r)


def test_a_gap_the_pool_cannot_give_borrows_then_degrades(catalog):
    event = _gala_with(catalog, "llm-chat").model_copy(update={"start": NOW + timedelta(days=3)})
    hist = Series(tuple(NOW.timestamp() - 3600 * k for k in range(48, 0, -1)), (30.0,) * 48)
    inp = _inputs(catalog, {("llm-chat", "us-east"): hist}, {("llm-chat", "us-east"): 8})
    r = assess(catalog, event, inp, forecaster=_flat)
    east = next(x for x in r.rows if x.region == "us-east")
    assert east.verdict is Verdict.NOT_READY and not east.sizing.fillable  # the pool has 20 free GPUs
    assert [a.runbook for a in r.actions] == ["reclaim-idle-gpus", "pre-scale", "degrade-llm-to-rules"]
    # Each action runs as printed: its parameters are the runbook's own (the reclaim asks for the gap's GPUs).
    from console.runbooks import load_runbooks
    from console.runbooks.params import resolve

    shipped = load_runbooks(Path(__file__).resolve().parents[1] / "runbooks")
    for a in r.actions:
        resolve(shipped[a.runbook], catalog, a.params)
    assert r.actions[0].params == {"gpus": str(math.ceil(east.sizing.gap_gpus))}


def test_a_past_event_is_ended_and_drills_count_within_the_window(catalog):
    event = _gala_with(catalog, "tts-dub")
    inp = _inputs(catalog, {}, {}, now=event.end + timedelta(hours=1))
    r = assess(catalog, event, inp, forecaster=_flat)
    assert r.status == "ended" and r.verdict == "ENDED" and not r.rows and "ended" in r.notes[0]
    drilled = {"pre-scale": NOW - timedelta(days=3), "region-failover": NOW - timedelta(days=90)}
    live = _inputs(catalog, {}, {}, runbooks={"pre-scale", "region-failover"}, drilled=drilled,
                   now=event.start + timedelta(hours=1))  # fmt: skip
    items = {i.name: i for i in assess(catalog, event, live, forecaster=_flat).checklist}
    assert items["runbook pre-scale"].ok
    assert not items["runbook region-failover"].ok and "90 days ago" in items["runbook region-failover"].reason


def test_the_twins_timeline_places_wall_times_on_its_clock_across_speed_changes():
    from console.sources.twin import REAL_TIME, Timeline

    t0 = datetime(2026, 12, 1, tzinfo=UTC)
    tl = Timeline(((100.0, t0, 3600.0), (200.0, t0 + timedelta(hours=100), 1.0)))
    assert tl.sim_at(150) == t0 + timedelta(hours=50)  # in the fast segment
    assert tl.sim_at(260) == t0 + timedelta(hours=100, seconds=60)  # after the slow-down
    assert tl.wall_at(t0 + timedelta(hours=50)) == 150 and tl.wall_at(t0 + timedelta(hours=100, seconds=60)) == 260
    assert REAL_TIME.sim_at(NOW.timestamp()) == NOW and REAL_TIME.wall_at(NOW) == NOW.timestamp()


def test_gpus_batch_holds_close_a_gap_the_pool_cannot_through_hold_batch(catalog):
    from dataclasses import replace

    from console.fleet.snapshot import QueueRow
    from tests.fleetdoc import doc

    event = _gala_with(catalog, "llm-chat").model_copy(update={"start": NOW + timedelta(days=3)})
    hist = Series(tuple(NOW.timestamp() - 3600 * k for k in range(48, 0, -1)), (30.0,) * 48)
    base = _inputs(catalog, {("llm-chat", "us-east"): hist}, {("llm-chat", "us-east"): 8})
    free = 40 - 20  # the stand-in pool: 40 GPUs, 20 allocated
    gap = next(x for x in assess(catalog, event, base, forecaster=_flat).rows if x.region == "us-east").sizing.gap_gpus
    assert gap > free
    queues = doc()["queues"]
    flavor = next(f["name"] for f in queues["flavors"] if (f["pool"], f["region"]) == ("infer-l4", "us-east"))
    cq = next(q for q in queues["cluster_queues"] if flavor in q["quota"] and q.get("hold_for_events", True))

    def with_batch(held: float):
        row = QueueRow(cq["name"], cq.get("cohort", ""), "", 0, 3, ((flavor, held, float(cq["quota"][flavor])),), None)
        return assess(catalog, event, replace(base, snapshot=replace(base.snapshot, queues=(row,))), forecaster=_flat)

    enough = with_batch(gap - free)
    east = next(x for x in enough.rows if x.region == "us-east")
    assert east.sizing.fillable and east.batch_gpus == gap - free
    assert f"pool has {free:g} free GPUs + {gap - free:g} batch holds (hold-batch frees them)" in east.reason
    assert [a.runbook for a in enough.actions] == ["hold-batch", "pre-scale"]
    assert enough.actions[0].params == {}  # every queue marked hold_for_events
    assert (
        f"hold-batch frees {gap - free:g} GPUs that batch holds now: us-east {gap - free:g} (infer-l4)" in enough.notes
    )
    assert "runbook hold-batch" in {i.name for i in enough.checklist}

    short = with_batch(gap - free - 1)
    east = next(x for x in short.rows if x.region == "us-east")
    assert not east.sizing.fillable and east.batch_gpus == 0
    assert [a.runbook for a in short.actions] == ["reclaim-idle-gpus", "pre-scale", "degrade-llm-to-rules"]
