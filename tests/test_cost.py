"""Cost attribution, pricing, budgets, savings and exports, by hand on small fleets (no servers)."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from console.catalog import CatalogError, load_catalog, parse_catalog
from console.cost.attribution import IDLE, Allocation, PodSeries, allocate, grid, integrate, namespace_peaks
from console.cost.budgets import budgets, month_bounds
from console.cost.export import DIMENSIONS, FOCUS_COLUMNS, Report, group, table, to_focus, to_json, totals
from console.cost.gather import parse_when
from console.cost.pricing import price, share_idle
from console.cost.savings import recommend
from console.sources.twin import Timeline
from tests.fleetdoc import doc, named

ROOT = Path(__file__).resolve().parent.parent
CAT = load_catalog(ROOT / "fleet.yaml")
T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
# Prices, tiers and packages as fleet.yaml states them, read plainly (not through the catalog under test).
PRICES = doc()["prices"]
P = PRICES["gpu_hourly"]
TIER = {t["name"]: t["multiplier"] for t in PRICES["sla_tiers"]}
PACKAGE = next(b for b in PRICES["billing_modes"] if b["name"] == "monthly_package")


def tier_of(team: str) -> float:
    return TIER[named("teams", team).get("sla_tier", "standard")]


def sim_of(tl: Timeline):
    return lambda w: tl.sim_at(w).timestamp()


def test_readings_are_weighted_by_the_fleet_time_they_stand_for_through_speed_changes_and_jumps() -> None:
    # Wall 1000: the twin runs at 60x; wall 1010: paused; wall 1020: jumps an hour ahead, still paused.
    tl = Timeline(((1000.0, T0, 60.0), (1010.0, T0 + timedelta(seconds=600), 0.0),
                   (1020.0, T0 + timedelta(seconds=4200), 0.0)))  # fmt: skip
    start, end = T0.timestamp(), T0.timestamp() + 4200
    g = grid(sim_of(tl), 1000.0, 1030.0, 1.0, start, end, tl.elapsed)
    # Each of the ten readings at 60x stands for a minute; paused ones for nothing; the one before the jump
    # for the hour jumped over: a paused clock moves by its steps (a trace replayed), and the state read
    # before a step holds until it.
    assert g.weights[:10] == (60.0,) * 10
    assert g.weights[10:19] == (0.0,) * 9 and g.weights[19] == 3600.0
    assert sum(g.weights) == 4200.0
    two_gpus = {g.index(1000.0 + k): 2.0 for k in range(31)}  # a reading every wall second
    assert integrate(two_gpus, g) == 2 * 4200.0
    # The period cuts what lies outside it.
    half = grid(sim_of(tl), 1000.0, 1030.0, 1.0, start + 300, start + 900, tl.elapsed)
    assert integrate({half.index(1000.0 + k): 2.0 for k in range(31)}, half) == 2 * 600.0


def test_a_month_jumped_over_at_full_speed_is_a_gap_in_the_cost_not_the_reading_before_it() -> None:
    # 39 minutes of samples on a running (1x) clock, then it jumps 29.6 days ahead (a drill), then 10 more
    # minutes: nothing was sampled in the month, so no reading stands for it.
    jump = timedelta(days=29.6)
    tl = Timeline(((0.0, T0, 1.0), (2340.0, T0 + timedelta(seconds=2340) + jump, 1.0)))
    start, end = T0.timestamp(), (T0 + timedelta(seconds=2940) + jump).timestamp()
    g = grid(sim_of(tl), 0.0, 2940.0, 60.0, start, end, tl.elapsed)
    assert sum(g.weights) == 2940.0  # the 49 minutes sampled, not 29.6 days more
    assert integrate({g.index(60.0 * k): 8.0 for k in range(50)}, g) / 3600 == 8 * 2940 / 3600


def _pod(ns: str, name: str, gpus: dict[int, float], busy: dict[int, float] | None = None) -> PodSeries:
    return PodSeries(ns, name, "infer-l4", "us-east", "L4", gpus, busy or {})


def test_pods_are_charged_their_share_and_what_nobody_requested_is_idle() -> None:
    g = grid(float, 0.0, 3600.0 * 3, 3600.0, 0.0, 3600.0 * 3)  # three one-hour readings, real time
    pods = [
        _pod("team-llm", "chat-0", {0: 1.0, 1: 1.0, 2: 1.0}, {0: 50.0, 1: 50.0, 2: 50.0}),
        _pod("team-media", "tts-0", {1: 0.25, 2: 0.25}),  # a shared GPU: a quarter, for two hours
    ]
    alloc = {("infer-l4", "us-east", "L4"): {0: 4.0, 1: 4.0, 2: 4.0}}
    rows = allocate(pods, alloc, g, team_of=lambda ns: CAT.team_of_namespace(ns).name,
                    service_of={("team-llm", "chat-0"): ("llm-chat", "us-east")}, job_of={})  # fmt: skip
    by = {r.pod: r for r in rows}
    assert by["chat-0"].gpu_hours == 3.0 and by["chat-0"].efficiency == 0.5 and by["chat-0"].service == "llm-chat"
    assert by["tts-0"].gpu_hours == 0.5 and by["tts-0"].efficiency is None  # no utilisation reading
    assert by[IDLE].gpu_hours == 12.0 - 3.0 - 0.5 and by[IDLE].team == IDLE
    assert namespace_peaks(pods, g) == {"team-llm": 1.0, "team-media": 0.25}


def _row(team: str, ns: str, pod: str, model: str, hours: float, **kw: object) -> Allocation:
    return Allocation(ns, pod, team, kw.pop("service", ""), "us-east", "infer-l4", model, hours, **kw)  # type: ignore[arg-type]


def test_prices_follow_the_teams_tier_and_billing_mode() -> None:
    rows = [
        _row("llm-platform", "team-llm", "chat-0", "L4", 10.0),  # high availability: x 1.5
        _row("search", "team-search", "emb-0", "T4", 10.0),  # economy: x 0.7
        _row("research", "team-research", "train-0", "H100-80GB", 100.0),  # a monthly package
        _row(IDLE, IDLE, IDLE, "L4", 5.0),
    ]
    month_h = 720.0
    priced = {r.pod: r for r in price(CAT, rows, 72.0, month_h)}  # a tenth of the month
    assert priced["chat-0"].list_cost == pytest.approx(10 * P["L4"])
    assert priced["chat-0"].effective_cost == pytest.approx(10 * P["L4"] * tier_of("llm-platform"))
    assert priced["emb-0"].effective_cost == pytest.approx(10 * P["T4"] * tier_of("search"))
    # A tenth of the package price, for a tenth of its included GPU-hours; 100 used, so nothing beyond it.
    tenth_price, tenth_hours = PACKAGE["package_price"] / 10, PACKAGE["included_gpu_hours"] / 10
    assert tenth_hours >= 100
    assert priced["train-0"].effective_cost == pytest.approx(tenth_price)
    assert priced[IDLE].effective_cost == priced[IDLE].list_cost == pytest.approx(5 * P["L4"])
    assert all(r.billed_cost == r.effective_cost for r in priced.values())
    # Beyond the included hours: the rest at list x tier (standard).
    over = price(CAT, [_row("research", "team-research", "train-0", "H100-80GB", 600.0)], 72.0, month_h)[0]
    assert over.effective_cost == pytest.approx(
        tenth_price + (600 - tenth_hours) * P["H100-80GB"] * tier_of("research")
    )


def test_per_job_billing_charges_each_job_once_over_its_pods() -> None:
    teams = [t.model_copy(update={"billing": "per_job"}) if t.name == "search" else t for t in CAT.teams]
    cat = CAT.model_copy(update={"teams": teams})
    rows = [
        _row("search", "team-search", "sweep-a", "T4", 3.0, job="sweep"),
        _row("search", "team-search", "sweep-b", "T4", 1.0, job="sweep"),
        _row("search", "team-search", "emb-0", "T4", 2.0),
    ]
    by = {r.pod: r for r in price(cat, rows, 24.0, 720.0)}
    assert by["sweep-a"].effective_cost == pytest.approx(12 * 0.75) and by["sweep-b"].effective_cost == pytest.approx(3)
    assert by["emb-0"].effective_cost == pytest.approx(2 * 0.45 * 0.7)


def test_shared_idle_is_spread_by_use_and_keeps_every_total() -> None:
    rows = price(
        CAT,
        [_row("media-ai", "team-media", "a", "L4", 3.0), _row("creative", "team-creative", "b", "L4", 1.0),
         _row(IDLE, IDLE, IDLE, "L4", 8.0)],
        24.0, 720.0,
    )  # fmt: skip
    shared = share_idle(rows)
    assert totals(shared) == pytest.approx(totals(rows))
    media = [r for r in shared if r.team == "media-ai" and r.idle]
    assert media[0].gpu_hours == pytest.approx(6.0)  # three quarters of the idle hours
    assert not [r for r in shared if r.team == IDLE]


def _report() -> Report:
    rows = price(
        CAT,
        [
            _row("llm-platform", "team-llm", "chat-0", "L4", 10.0, service="llm-chat", busy_gpu_hours=4.0),
            _row("llm-platform", "team-llm", "copy-0", "A100-80GB", 2.5, service="llm-copywriting"),
            _row("search", "team-search", "emb-0", "T4", 6.0, service="embedding-batch"),
            _row(IDLE, IDLE, IDLE, "L4", 5.0),
        ],
        24.0,
        720.0,
    )
    return Report(T0, T0 + timedelta(hours=24), "USD", tuple(rows), 60.0)


def test_every_grouping_adds_up_to_the_same_totals_and_focus_has_its_columns() -> None:
    rep = _report()
    want = totals(rep.rows)
    for by in DIMENSIONS:
        lines = group(rep.rows, by)
        assert sum(ln.effective_cost for ln in lines) == pytest.approx(want["effective_cost"]), by
        assert sum(ln.gpu_hours for ln in lines) == pytest.approx(want["gpu_hours"]), by
        assert json.loads(to_json(rep, by))["totals"] == pytest.approx(want)
    team = {ln.key: ln for ln in group(rep.rows, "team")}
    assert team["llm-platform"].efficiency == pytest.approx(0.4)  # only chat-0 has a reading
    # llm-platform's effective price: L4 and A100 hours at list x 1.5 over its GPU-hours.
    assert team["llm-platform"].price == pytest.approx(
        (10 * P["L4"] + 2.5 * P["A100-80GB"]) * tier_of("llm-platform") / 12.5
    )
    centres = {t.name: t.cost_centre for t in CAT.teams}
    focus = list(csv.DictReader(io.StringIO(to_focus(rep, *month_bounds(T0), centres))))
    assert {r["BillingAccountId"] for r in focus if r["SubAccountId"] == "llm-platform"} == {
        named("teams", "llm-platform")["cost_centre"]
    }
    assert list(focus[0]) == list(FOCUS_COLUMNS) and len(focus) == len(rep.rows)
    assert sum(float(r["BilledCost"]) for r in focus) == pytest.approx(want["billed_cost"], abs=1e-5)
    assert {r["ChargePeriodStart"] for r in focus} == {"2026-11-20T12:00:00Z"}
    assert [json.loads(r["Tags"])["team"] for r in focus] == [r.team for r in rep.rows]
    assert {r["BillingCurrency"] for r in focus} == {PRICES["currency"]}
    # FOCUS 1.0's mandatory columns the first export lacked, and the names beside their ids.
    assert {"ChargeClass", "ContractedCost", "RegionName", "SubAccountName", "ResourceName"} <= set(focus[0])
    assert {r["ChargeClass"] for r in focus} == {""}  # null: no correction
    assert all(float(r["ContractedCost"]) == float(r["BilledCost"]) for r in focus)
    assert all(r["ResourceName"] and r["SubAccountName"] == r["SubAccountId"] for r in focus)
    text = table(rep, "team")
    assert "llm-platform" in text.splitlines()[2] and "TOTAL" in text.splitlines()[-1]
    with pytest.raises(ValueError, match="--by 'colour'"):
        group(rep.rows, "colour")


def test_budgets_count_the_month_before_the_history_at_the_run_rate() -> None:
    now = datetime(2026, 11, 16, 0, 0, tzinfo=UTC)  # 15 days in, 15 to go
    measured = now - timedelta(days=5)  # Prometheus holds the last 5 days
    rows = [_row("creative", "team-creative", "c", "L40S", 100.0, gpus_now=2.0, effective_cost=145.0)]
    b = next(x for x in budgets(CAT, rows, now, measured) if x.team == "creative")
    rate = 2 * P["L40S"] * tier_of("creative")
    assert b.rate_per_hour == pytest.approx(rate)
    assert b.estimated_h == 240.0
    assert b.month_to_date == pytest.approx(145.0 + rate * 240)
    assert b.projected == pytest.approx(b.month_to_date + rate * 360)
    assert b.state == "ok" and b.ratio == pytest.approx(b.projected / named("teams", "creative")["monthly_budget"])
    assert month_bounds(datetime(2026, 12, 31, tzinfo=UTC)) == (
        datetime(2026, 12, 1, tzinfo=UTC),
        datetime(2027, 1, 1, tzinfo=UTC),
    )


def test_a_package_team_projects_its_price_and_the_hours_beyond_those_it_includes() -> None:
    """As the budget alerts do: price + (projected GPU-hours - included) x list x tier, not the run rate for
    the hours left on top of a prorated package."""
    now = datetime(2026, 11, 16, 0, 0, tzinfo=UTC)  # 15 days in, 15 to go, all of them measured
    mode = next(m for m in PRICES["billing_modes"] if m["name"] == "monthly_package")
    busy = _row("research", "team-research", "train-0", "H100-80GB", 360.0 * 16, gpus_now=16.0, effective_cost=1.0)
    b = next(x for x in budgets(CAT, [busy], now, now.replace(day=1)) if x.team == "research")
    hours = 360.0 * 16 + 360.0 * 16  # so far, and 16 GPUs for the 360 hours left
    per_hour = P["H100-80GB"] * tier_of("research")
    assert b.projected == pytest.approx(mode["package_price"] + (hours - mode["included_gpu_hours"]) * per_hour)
    quiet = _row("research", "team-research", "train-0", "H100-80GB", 10.0, gpus_now=0.0, effective_cost=1.0)
    b = next(x for x in budgets(CAT, [quiet], now, now.replace(day=1)) if x.team == "research")
    assert b.projected == pytest.approx(mode["package_price"])  # within its hours: the price alone


def test_savings_name_idle_gpus_and_quotas_far_above_use() -> None:
    rows = [
        _row("research", "team-research-batch", "sweep-0", "T4", 48.0, job="eval-sweep", busy_gpu_hours=0.5),
        _row("llm-platform", "team-llm", "chat-0", "L4", 24.0, service="llm-chat", busy_gpu_hours=12.0),
    ]
    priced = price(CAT, rows, 24.0, 720.0)
    found = recommend(CAT, priced, 24.0, 720.0, quotas={"team-llm": 40.0, "team-research-batch": 4.0},
                      namespace_peak={"team-llm": 1.0, "team-research-batch": 2.0}, memory_peak={},
                      peak_gpu_hours={})  # fmt: skip
    idle = next(s for s in found if s.kind == "idle-gpus")
    assert idle.target == "team-research-batch/eval-sweep" and idle.gpus == pytest.approx(2.0)
    assert idle.monthly == pytest.approx(sum(r.effective_cost for r in priced if r.job) * 30)
    quota = next(s for s in found if s.kind == "quota")
    assert quota.target == "team-llm" and "lower it to 2" in quota.detail
    assert found[0] is idle  # money first
    # Ten minutes of history say nothing about a month (a deployment warming up reads idle).
    assert recommend(CAT, priced, 1 / 6, 720.0, quotas={"team-llm": 40.0}, namespace_peak={}, memory_peak={},
                     peak_gpu_hours={}) == []  # fmt: skip


def test_savings_name_services_that_fit_a_mig_slice_and_batch_run_at_peak() -> None:
    rows = [
        # Two tts pods on whole L4s, using at most 30 % of their memory: half a GPU each would do.
        _row("media-ai", "team-media", "tts-0", "L4", 24.0, service="tts-dub", busy_gpu_hours=12.0, peak_gpus=1.0),
        _row("media-ai", "team-media", "tts-1", "L4", 24.0, service="tts-dub", busy_gpu_hours=12.0, peak_gpus=1.0),
        # A batch job on the batch pool, 6 of its GPU-hours in its region's peak hours.
        Allocation("team-research-batch", "sweep-0", "research", "", "eu-west", "batch-t4", "T4", 24.0,
                   busy_gpu_hours=20.0, job="eval-sweep", peak_gpus=1.0),
        # A service pod at peak is serving, not batch: no off-peak advice for it.
        _row("llm-platform", "team-llm", "chat-0", "L4", 24.0, service="llm-chat", busy_gpu_hours=20.0, peak_gpus=1.0),
    ]  # fmt: skip
    priced = price(CAT, rows, 24.0, 720.0)
    memory = {("team-media", "tts-0"): 0.3, ("team-media", "tts-1"): 0.25, ("team-llm", "chat-0"): 0.9}
    peak = {("team-research-batch", "sweep-0"): 6.0, ("team-llm", "chat-0"): 8.0}
    found = recommend(CAT, priced, 24.0, 720.0, quotas={}, namespace_peak={}, memory_peak=memory,
                      peak_gpu_hours=peak)  # fmt: skip
    assert sorted((s.kind, s.target) for s in found) == [
        ("mig", "team-media/tts-dub"), ("off-peak", "team-research-batch/eval-sweep"),
    ]  # fmt: skip
    mig = next(s for s in found if s.kind == "mig")
    profile = next(p["mig"]["profile"] for p in doc()["pools"] if p.get("mig"))
    tts_cost = sum(r.effective_cost for r in priced if r.service == "tts-dub")
    assert tts_cost == pytest.approx(48 * P["L4"] * tier_of("media-ai"))
    # Half of what the two pods cost, over a month of 30 such days; one GPU of the two freed.
    assert mig.monthly == pytest.approx(tts_cost * 30 / 2) and mig.gpus == pytest.approx(1.0)
    assert "30%" in mig.detail and f"MIG {profile}" in mig.detail
    off = next(s for s in found if s.kind == "off-peak")
    assert off.monthly == 0.0 and off.gpus == pytest.approx(6.0 / 24) and "6.0 GPU-h" in off.detail


def test_times_and_a_catalog_naming_an_unknown_tier() -> None:
    now = datetime(2026, 11, 25, 21, 0, tzinfo=UTC)
    assert parse_when("month", now) == datetime(2026, 11, 1, tzinfo=UTC)
    assert parse_when("-6h", now) == now - timedelta(hours=6)
    assert parse_when("2026-11-02T03:00Z", now) == datetime(2026, 11, 2, 3, tzinfo=UTC)
    with pytest.raises(ValueError, match="not a time"):
        parse_when("yesterday-ish", now)
    text = (ROOT / "fleet.yaml").read_text().replace("sla_tier: economy", "sla_tier: platinum")
    with pytest.raises(CatalogError) as e:
        parse_catalog(text, "fleet.yaml")
    line = next(i for i, ln in enumerate(text.splitlines(), start=1) if "platinum" in ln)
    assert f"fleet.yaml:{line}: teams[3].sla_tier: unknown SLA tier 'platinum'" in str(e.value.issues[0])
