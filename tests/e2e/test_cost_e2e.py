"""Cost attribution end to end on the twin replaying the Alibaba GPU cluster trace: `gpuops cost report` read
from a real Prometheus against GPU-hours computed here from the CSV.

The twin starts paused at the trace's busiest moment and its clock is then moved to each pod start and end
that follows, one at a time, so the fleet in Prometheus changes exactly when the trace says. GPU-hours per
pod = its GPUs (a shared GPU by its thousandths) x the part of its life inside the period.
"""

from __future__ import annotations

import calendar
import csv
import io
import json
import subprocess
import sys
import time
from collections import defaultdict
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from kubernetes import client, config

from console.sources.prometheus import PrometheusSource
from console.sources.twin import TwinControl
from console.twin.alibaba import catalog as trace_catalog
from tests.e2e.conftest import ROOT, start_stack, wait_for
from tests.e2e.test_alibaba_e2e import DATA, _busiest_time, _csv, _scheduled
from tests.fleetdoc import doc as fleet_doc
from tests.fleetdoc import gpu_model, gpus_per_pool, named

# Heavy: `./dev test` runs it after the other e2e modules, alone, so that its load (a trace's 15-30 MB
# scrapes, a history's backfill) does not slow the neighbours' clocked checks, nor theirs its own.
pytestmark = pytest.mark.heavy

BUDGET_START = datetime(2026, 11, 20, 12, 0)  # the budget test's twin clock: a 30-day month
EVENTS = 24  # pod starts and ends replayed after the first moment
# The trace's fleet renders 15 MB of /metrics: 5 s between scrapes (and as the scrape timeout) leaves room
# for a loaded machine, where 1 s timed out and left the fleet unsampled across a change, and in CI 3 s left no
# scrape with a second to spare for two minutes (with another trace-sized stack beside it).
SCRAPE_S = 5.0
ROOM_S = 1.0  # at least this long between moving the twin's clock and the next scrape's start
# The report's grid step (`--step`). A reading at a grid point is the last scrape at or before it, and a jump
# counts for the grid point just before it: the clock moves at least a step after the scrape it follows, or
# that point still reads the scrape before, the state two jumps back (a pod that ended counted for one more).
STEP_S = 1.0
START = "2026-11-20T00:00:00"
BY = ("team", "namespace", "service", "region", "pool", "model", "pod")
# FinOps FOCUS columns the issue names, and their types.
FOCUS_TYPES = {
    "BilledCost": "decimal",
    "EffectiveCost": "decimal",
    "ListCost": "decimal",
    "ContractedCost": "decimal",
    "BillingCurrency": "currency",
    "ChargePeriodStart": "datetime",
    "ChargePeriodEnd": "datetime",
    "ResourceId": "string",
    "ServiceName": "string",
    "RegionId": "string",
    "RegionName": "string",
    "SubAccountName": "string",
    "ResourceName": "string",
    "Tags": "json",
}


def gpus(p: dict[str, str]) -> float:
    return int(p["num_gpu"]) * int(p["gpu_milli"]) / 1000


def cost(*args: str) -> str:
    r = subprocess.run(
        [sys.executable, "-m", "console.cli", "cost", "report", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    assert r.returncode == 0, r.stderr
    return r.stdout


@pytest.fixture(scope="module")
def replayed(tmp_path_factory: pytest.TempPathFactory):
    """The stack after the replay: (stack, catalog file, period start, end, pods' GPU-hours, pod -> GPU model)."""
    pods = [p for p in _scheduled(_csv("openb_pod_list_default.csv")) if gpus(p) > 0]
    t0, _ = _busiest_time(pods)
    later = sorted({int(p[k]) for p in pods for k in ("scheduled_time", "deletion_time") if int(p[k]) > t0})
    moments = later[:EVENTS]
    t_end = (later[EVENTS - 1] + later[EVENTS]) // 2  # before the next start or end: none is cut short
    workdir = tmp_path_factory.mktemp("cost-trace")
    catalog_file = workdir / "openb.yaml"
    catalog_file.write_text(yaml.safe_dump(trace_catalog(DATA).model_dump(mode="json")))
    gen = start_stack(
        workdir, "--fleet", str(DATA), "--replay-at", str(t0), "--speed", "0", "--start", START,
        with_alertmanager=False, scrape_interval_s=SCRAPE_S,
    )  # fmt: skip
    stack = next(gen)
    try:
        prom = PrometheusSource(stack.prom_url, timeout_s=20)
        running = [p for p in pods if int(p["scheduled_time"]) <= t0 < int(p["deletion_time"])]
        wait_for(
            lambda: (
                sum(s.value for s in prom.query('count(kube_pod_info{namespace="openb", node!=""})')) >= len(running)
            ),
            timeout=60,
            what="the trace's running pods in Prometheus",
        )
        api = client.CoreV1Api(config.new_client_from_config(config_file=str(stack.kubeconfig), context="twin"))
        node_model = {
            n.metadata.name: n.metadata.labels.get("nvidia.com/gpu.product", "") for n in api.list_node().items
        }
        placed: dict[str, str] = {}

        def observe() -> None:
            # Where the twin put each pod, read through the Kubernetes API: the GPU model its hours count for.
            for pod in api.list_namespaced_pod("openb").items:
                if pod.spec.node_name:
                    placed.setdefault(pod.metadata.name, node_model[pod.spec.node_name])

        observe()
        twin = TwinControl(stack.twin_url)

        def scraped_since(changed: float) -> None:
            # A good scrape of the fleet as it is now before the next change, however loaded the machine is:
            # a fleet series (absent after a failed scrape, unlike `up`) with a timestamp an interval after it.
            def scrapes_after() -> bool:
                last = max((s.value for s in prom.query("timestamp(kube_node_info)")), default=0.0)
                return last >= changed + SCRAPE_S

            wait_for(scrapes_after, timeout=60, what="a good scrape a full interval after the twin's clock moved")

        def good_scrape_at() -> float | None:
            # The start of the last scrape, when it succeeded and its fleet series are in: a failed one leaves
            # stale markers, and every pod would read absent until the next.
            up = prom.query('up{job="twin"}')
            fresh = max((s.value for s in prom.query("timestamp(kube_node_info)")), default=-1.0)
            at = max((s.value for s in prom.query('timestamp(up{job="twin"})')), default=0.0)
            return at if up and up[0].value == 1 and fresh == at else None

        def advance_between_scrapes(seconds: float) -> None:
            # The reading that stands for a jump of the clock is the last scrape started before it. Jump once a
            # good scrape has landed and a report step has passed since it (STEP_S), and well before the next
            # starts (Prometheus scrapes on a fixed schedule): a scrape in flight across the jump may fail (stale
            # markers: the fleet reads empty for the jump's length) or render the fleet after the jump under a
            # stamp from before it.
            seen = good_scrape_at() or 0.0

            def fresh_with_room() -> float | None:
                nonlocal seen
                at = good_scrape_at()
                if at is None or at <= seen:
                    return None
                seen = at
                return at if time.time() < at + SCRAPE_S - ROOM_S else None

            try:
                at = wait_for(fresh_with_room, timeout=120, every=0.05, what="a good scrape with room before the next")
            except AssertionError as e:
                took = [round(s.value, 2) for s in prom.query('scrape_duration_seconds{job="twin"}')]
                up = [s.value for s in prom.query('up{job="twin"}')]
                raise AssertionError(f"{e} (the last scrape took {took} s, up {up})") from None
            time.sleep(max(0.0, at + STEP_S - time.time()))
            twin.advance(seconds)
            jumped = twin.timeline().segments[-1][0]
            assert jumped < at + SCRAPE_S, f"the clock moved {jumped - at:.2f}s after a scrape, past the next"
            assert jumped >= at + STEP_S, f"the clock moved {jumped - at:.2f}s after a scrape, within a step of it"

        now = t0
        scraped_since(time.time())
        for t in [*moments, t_end]:
            # Each jump waits for a good scrape newer than the one before the last jump: it started after that
            # jump (the jump landed before the next scrape's start), so every state between jumps is sampled.
            advance_between_scrapes(t - now)
            now = t
            observe()
        scraped_since(time.time())
        segments = twin.timeline().segments
        twin.close()
        start = segments[0][1]
        end = start + timedelta(seconds=t_end - t0)
        hours = {}
        for p in pods:
            s, e = max(int(p["scheduled_time"]), t0), min(int(p["deletion_time"]), t_end)
            if e > s:
                hours[p["name"]] = gpus(p) * (e - s) / 3600
        yield stack, catalog_file, start, end, hours, placed
    finally:
        gen.close()


def report(replayed, *args: str) -> str:
    stack, catalog_file, start, end, _, _ = replayed
    return cost(
        "--catalog", str(catalog_file), "--prometheus", stack.prom_url, "--kubeconfig", str(stack.kubeconfig),
        "--context", "twin", "--from", start.isoformat(), "--to", end.isoformat(), "--step", f"{STEP_S:g}", *args,
    )  # fmt: skip


def test_gpu_hours_per_pod_and_per_model_match_the_trace(replayed) -> None:
    _, _, _, _, hours, placed = replayed
    doc = json.loads(report(replayed, "--by", "pod", "--format", "json"))
    got = {ln["pod"]: ln["gpu_hours"] for ln in doc["lines"] if not ln["pod"].startswith("__idle__")}
    assert set(got) == set(hours), set(got) ^ set(hours)
    assert len(hours) > 40
    for name, want in hours.items():
        assert got[name] == pytest.approx(want, rel=0.01), name
    # Shared GPUs count by their share: a 0.5-GPU pod's hours are half its time.
    pods = {p["name"]: p for p in _csv("openb_pod_list_default.csv")}
    fractional = [n for n in hours if 0 < int(pods[n]["gpu_milli"]) < 1000]
    assert fractional, "the period has shared GPUs, so their shares are counted"
    by_model: dict[str, float] = defaultdict(float)
    for name, h in hours.items():
        by_model[placed[name]] += h
    # `--by model` holds each model's idle GPUs too: the pod report's idle lines (`__idle__/<pool>/<region>`,
    # a pool per model) take them out again.
    lines = json.loads(report(replayed, "--by", "pod", "--format", "json"))["lines"]
    doc = json.loads(report(replayed, "--by", "model", "--format", "json"))
    idle_by_model: dict[str, float] = defaultdict(float)
    for ln in lines:
        if ln["pod"].startswith("__idle__"):
            pool = ln["pod"].split("/")[1]
            idle_by_model[pool.removeprefix("openb-")] += ln["gpu_hours"]
    got_model = {ln["model"]: ln["gpu_hours"] for ln in doc["lines"]}
    for model, want in by_model.items():
        pool_model = next(m for m in got_model if m.lower() == model.lower())
        assert got_model[pool_model] - idle_by_model[model.lower()] == pytest.approx(want, rel=0.01), model


def test_focus_export_has_the_columns_and_types_and_every_grouping_adds_up(replayed, tmp_path: Path) -> None:
    out = tmp_path / "focus.csv"
    report(replayed, "--format", "focus", "--output", str(out))
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert rows
    assert set(FOCUS_TYPES) <= set(rows[0])
    for row in rows:
        for col, kind in FOCUS_TYPES.items():
            v = row[col]
            if kind == "decimal":
                Decimal(v)
            elif kind == "currency":
                assert len(v) == 3 and v.isupper(), v
            elif kind == "datetime":
                assert v.endswith("Z") and datetime.fromisoformat(v.replace("Z", "+00:00")), v
            elif kind == "json":
                assert isinstance(json.loads(v), dict), v
            else:
                assert v, (col, row)
        assert Decimal(row["BilledCost"]) >= 0 and Decimal(row["ListCost"]) >= 0
    # Each pod's rows, against the same report's per-pod lines (their hours are checked against the trace in
    # the test above) and priced at its GPU model's list price in the catalog file, read plainly.
    _, catalog_file, start, end, hours, placed = replayed
    prices = yaml.safe_load(catalog_file.read_text())["prices"]
    price_of = {m.lower(): v for m, v in prices["gpu_hourly"].items()}
    per_pod = {
        ln["pod"]: ln["gpu_hours"] for ln in json.loads(report(replayed, "--by", "pod", "--format", "json"))["lines"]
    }
    quantity: dict[str, float] = defaultdict(float)
    listed_by_pod: dict[str, float] = defaultdict(float)
    for r in rows:
        if r["ResourceType"] == "GPU allocation":
            pod = r["ResourceId"].split("/", 1)[1]
            quantity[pod] += float(r["ConsumedQuantity"])
            listed_by_pod[pod] += float(r["ListCost"])
            assert float(r["ListUnitPrice"]) == pytest.approx(price_of[placed[pod].lower()], rel=1e-4), pod
            assert float(r["PricingQuantity"]) == float(r["ConsumedQuantity"]), pod
        assert r["BillingCurrency"] == prices["currency"]
        assert (
            r["ChargePeriodStart"] == f"{start:%Y-%m-%dT%H:%M:%S}Z"
            and r["ChargePeriodEnd"] == f"{end:%Y-%m-%dT%H:%M:%S}Z"
        )
    assert set(quantity) == set(hours)
    for pod, q in quantity.items():
        assert q == pytest.approx(per_pod[pod], abs=1e-5), pod
        assert listed_by_pod[pod] == pytest.approx(q * price_of[placed[pod].lower()], rel=1e-4), pod
    total = sum(float(r["EffectiveCost"]) for r in rows)
    listed = sum(float(r["ListCost"]) for r in rows)
    assert total > 0
    for by in BY:
        doc = json.loads(report(replayed, "--by", by, "--format", "json"))
        assert sum(ln["effective_cost"] for ln in doc["lines"]) == pytest.approx(total, rel=1e-6), by
        assert doc["totals"]["list_cost"] == pytest.approx(listed, rel=1e-6), by


# --- budgets: a team pushed over 80 % ------------------------------------------------------------------------
# creative's budget, cut so that scaling one deployment crosses 80 %; its prices and replicas are read from
# fleet.yaml as written (standard tier: x 1).
CREATIVE_BUDGET = 22000.0
COVERS = named("services", "diffusion-covers")
PRICE = {
    region: fleet_doc()["prices"]["gpu_hourly"][gpu_model(named("pools", COVERS["pool"]), region)]
    for region in COVERS["regions"]
}


def creative_ratio(replicas: dict[str, int], days: int) -> float:
    return sum(PRICE[r] * n * COVERS["gpus_per_replica"] for r, n in replicas.items()) * 24 * days / CREATIVE_BUDGET


@pytest.fixture(scope="module")
def budget_stack(tmp_path_factory: pytest.TempPathFactory):
    from console.catalog import load_catalog
    from tests.e2e.conftest import built_rules

    workdir = tmp_path_factory.mktemp("budget")
    doc = yaml.safe_load((ROOT / "fleet.yaml").read_text())
    next(t for t in doc["teams"] if t["name"] == "creative")["monthly_budget"] = CREATIVE_BUDGET
    path = workdir / "fleet.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    rules = built_rules(workdir, load_catalog(path), budgetFor="5s")
    gen = start_stack(
        workdir,
        "--catalog",
        str(path),
        "--start",
        f"{BUDGET_START:%Y-%m-%dT%H:%M:%S}",
        "--warmup",
        "3",
        rule_files=rules,
    )
    yield next(gen), path
    gen.close()


async def test_a_team_pushed_over_80_percent_of_budget_shows_in_costs_and_fires_its_alert(budget_stack) -> None:
    from console.catalog import load_catalog
    from console.tui.app import GpuopsApp
    from console.tui.costs import CostsView
    from console.wiring import connect
    from tests.e2e.console_helpers import cell, until

    stack, catalog_file = budget_stack
    prom = PrometheusSource(stack.prom_url, timeout_s=20)

    def ratio() -> float | None:
        got = prom.query('gpuops:team:budget_projected:ratio{team="creative"}')
        return got[0].value if got else None

    def projected(replicas: dict[str, int]) -> bool:
        # Prometheus projects over its own clock's month (`days_in_month()`), so the test asks it which month
        # that is at each look: right on any date, across a month's end too.
        days = prom.query("days_in_month()")[0].value
        return ratio() == pytest.approx(creative_ratio(replicas, int(days)), rel=0.005)

    before = dict(COVERS["replicas"])
    wait_for(lambda: projected(before), timeout=60, what="creative's projection at its catalog replicas")
    assert ratio() < 0.8
    firing = 'ALERTS{alertname="TeamBudgetProjected80", team="creative", alertstate="firing"}'
    assert not prom.query(firing)

    # Pushed: diffusion-covers in us-east scaled to its pool's GPUs there, through the Kubernetes API.
    pool_gpus = gpus_per_pool()[(COVERS["pool"], "us-east")]
    apps = client.AppsV1Api(config.new_client_from_config(config_file=str(stack.kubeconfig), context="twin"))
    apps.patch_namespaced_deployment_scale(
        "diffusion-covers-us-east", "team-creative", {"spec": {"replicas": pool_gpus}}
    )
    after = {**before, "us-east": pool_gpus}
    assert all(0.8 <= creative_ratio(after, days) < 1 for days in (28, 29, 30, 31))
    wait_for(lambda: prom.query(firing), timeout=90, what="TeamBudgetProjected80 firing for creative")
    wait_for(lambda: projected(after), timeout=30, what="creative's projection after the scale")

    # Without a kubeconfig the report reads real time, as on a cluster: the month since the 1st (of the
    # month its end falls in), of which Prometheus holds the last minute or two.
    doc = json.loads(cost("--catalog", str(catalog_file), "--prometheus", stack.prom_url, "--format", "json"))
    end = datetime.fromisoformat(doc["end"])
    assert datetime.fromisoformat(doc["start"]) == end.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    assert doc["totals"]["gpu_hours"] > 0
    assert {ln["team"] for ln in doc["lines"]} >= {"creative", "llm-platform", "__idle__"}

    conn = connect(load_catalog(catalog_file), stack.prom_url, str(stack.kubeconfig), "twin", stack.am_url)
    app = GpuopsApp(conn, interval=1, operator="tester")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("8")
        view = app.query_one(CostsView)
        await until(pilot, lambda: view.result is not None, timeout=60, what="the month's costs")
        await until(pilot, lambda: cell(view.table, "creative", "alert") == "TeamBudgetProjected80", timeout=60,
                    what="the budget alert beside creative")  # fmt: skip
        budget = next(b for b in view.result.budgets if b.team == "creative")
        # The console's month is the twin's (it starts at BUDGET_START): run rate x that month, as the alert
        # projects over its own.
        assert budget.state == "warning"
        days = calendar.monthrange(BUDGET_START.year, BUDGET_START.month)[1]
        assert budget.ratio == pytest.approx(creative_ratio(after, days), rel=0.01)
        assert cell(view.table, "creative", "pct") == f"{100 * budget.ratio:.1f}%"
        assert cell(view.table, "llm-platform", "alert") == ""
    conn.close()


def test_table_and_csv_agree_with_the_json_and_output_is_written_whole_or_not_at_all(replayed, tmp_path: Path):
    _, catalog_file, start, end, hours, _ = replayed
    doc = json.loads(report(replayed, "--by", "team", "--format", "json"))
    want = {ln["team"]: ln for ln in doc["lines"]}
    rows = list(csv.DictReader(io.StringIO(report(replayed, "--by", "team", "--format", "csv"))))
    assert [r["team"] for r in rows] == [ln["team"] for ln in doc["lines"]]
    for r in rows:
        assert float(r["gpu_hours"]) == pytest.approx(want[r["team"]]["gpu_hours"], abs=1e-5)
        assert float(r["effective_cost"]) == pytest.approx(want[r["team"]]["effective_cost"], abs=1e-5)
        assert r["currency"] == doc["currency"]
    # The pods' hours, from the CSV trace, are every team's hours but the idle line.
    assert sum(float(r["gpu_hours"]) for r in rows if r["team"] != "__idle__") == pytest.approx(
        sum(hours.values()), rel=0.01
    )
    text = report(replayed, "--by", "team", "--format", "table").splitlines()
    assert text[0].startswith(f"GPU cost {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC")
    for team, ln in want.items():
        line = next(x for x in text if x.split()[0] == team)
        assert line.split()[1] == f"{ln['gpu_hours']:.2f}" and f"{ln['effective_cost']:.2f}" in line.split()
    total = text[-1].split()
    assert total[0] == "TOTAL" and total[1] == f"{doc['totals']['gpu_hours']:.2f}"

    # -o: a report that fails leaves the file as it was, and no temporary file beside it.
    out = tmp_path / "costs.csv"
    out.write_text("the previous report\n")
    failed = subprocess.run(
        [sys.executable, "-m", "console.cli", "cost", "report", "--catalog", str(catalog_file), "--prometheus",
         "http://127.0.0.1:9", "--format", "csv", "-o", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert failed.returncode != 0 and "Traceback" not in failed.stderr, failed.stderr
    assert out.read_text() == "the previous report\n" and list(tmp_path.iterdir()) == [out]
    report(replayed, "--by", "team", "--format", "csv", "-o", str(out))
    assert list(csv.DictReader(out.open())) == rows and list(tmp_path.iterdir()) == [out]
