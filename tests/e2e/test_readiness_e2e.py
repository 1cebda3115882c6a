"""Event readiness end to end: a twin run at 3600x for four simulated days of history, a real Prometheus with
the built rules, `gpuops readiness` and `gpuops runbook run` as an operator runs them.

The test catalog is fleet.yaml with tts-dub in us-east cut to 2 replicas (short by design), the gala's
services cut to tts-dub alone (three forecasts, not fourteen), and a past event.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from console.catalog import load_catalog
from console.sources.kube import KubeObjects
from console.sources.twin import TwinControl
from console.twin import loadmodel as lm
from tests.e2e.conftest import ROOT, Stack, built_rules, start_stack, wait_for
from tests.fleetdoc import named, replica_rps

START = datetime(2026, 12, 20, 0, 0, tzinfo=UTC)
SPEED = 3600  # a simulated hour a second
HISTORY_S = 100  # of wall time: about four simulated days


@pytest.fixture(scope="module")
def catalog_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    doc = yaml.safe_load((ROOT / "fleet.yaml").read_text())
    # No batch queues: the gap here is the pool's free GPUs alone (tests/test_readiness.py counts batch's).
    doc.pop("queues", None)
    tts = next(s for s in doc["services"] if s["name"] == "tts-dub")
    tts["replicas"]["us-east"] = 2
    gala = doc["events"][0]
    gala["services"] = ["tts-dub"]
    doc["events"].append(
        {"name": "spring-sale", "title": "Spring sale", "start": "2026-03-01T00:00:00Z",
         "end": "2026-03-02T00:00:00Z", "multiplier": 2.0, "services": ["tts-dub"]}
    )  # fmt: skip
    path = tmp_path_factory.mktemp("readiness") / "fleet.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def history_stack(tmp_path_factory: pytest.TempPathFactory, catalog_file: Path) -> Iterator[Stack]:
    cat = load_catalog(catalog_file)
    workdir = tmp_path_factory.mktemp("readiness-stack")
    rules = built_rules(workdir, cat)
    gen = start_stack(
        workdir,
        "--catalog", str(catalog_file), "--speed", str(SPEED), "--start", START.strftime("%Y-%m-%dT%H:%M:%S"),
        "--warmup", "2",
        rule_files=rules,
    )  # fmt: skip
    stack = next(gen)
    twin = TwinControl(stack.twin_url)
    # Four simulated days of history, then real time: the gala stays days ahead, replicas warm up quickly.
    # Here, not in the first test: each test of the file may run alone (-k).
    wait_for(lambda: twin.clock().sim >= START + timedelta(days=4), timeout=HISTORY_S + 60, every=1,
             what="four simulated days")  # fmt: skip
    twin.set_speed(1)
    twin.close()
    time.sleep(5)  # a few scrapes at real time
    yield stack
    gen.close()


def gpuops(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "console.cli", *args],
        cwd=ROOT, env=dict(os.environ), capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def readiness(stack: Stack, catalog_file: Path, journal: Path, event: str = "year-end-gala") -> tuple[int, Any]:
    p = gpuops(
        "readiness", event, "--format", "json", "--catalog", str(catalog_file), "--prometheus", stack.prom_url,
        "--kubeconfig", str(stack.kubeconfig), "--context", "twin", "--drill-journal", str(journal),
    )  # fmt: skip
    assert p.returncode in (0, 1), p.stderr
    return p.returncode, json.loads(p.stdout)


def row(report: dict[str, Any], service: str, region: str) -> dict[str, Any]:
    return next(r for r in report["services"] if r["service"] == service and r["region"] == region)


def true_peak(catalog_file: Path, region: str) -> float:
    """The twin's demand at its highest over the gala: base x diurnal x multiplier (its wobble is +-4 %)."""
    cat = load_catalog(catalog_file)
    svc, gala = cat.service("tts-dub"), cat.event("year-end-gala")
    offset = next(r.utc_offset_hours for r in cat.regions if r.name == region)
    t, best = gala.start, 0.0
    while t < gala.end:
        best = max(best, lm.diurnal(t, offset))
        t += timedelta(minutes=5)
    return svc.base_rps[region] * best * gala.multiplier


def test_a_short_service_is_not_ready_with_the_gap_by_hand_and_ready_after_its_pre_scale(
    history_stack: Stack, catalog_file: Path, tmp_path: Path
):
    journal = tmp_path / "drills.jsonl"
    rc, report = readiness(history_stack, catalog_file, journal)
    assert rc == 1 and report["verdict"] == "NOT READY" and report["status"] == "upcoming"
    tts = row(report, "tts-dub", "us-east")
    assert tts["verdict"] == "NOT READY", tts

    # The forecast: four simulated days hold three of the gala's clock windows, fewer than any method needs
    # to calibrate a P95 on, so readiness sizes on the highest rate those hours saw, times the multiplier,
    # and says so. That carries the multiplier and the right service and region: a lost x3, another
    # region's curve or a unit slip lands outside half to one and a half times the twin's own peak.
    peak = tts["forecast"]["peak_rps"]
    truth = true_peak(catalog_file, "us-east")
    assert truth / 1.5 < peak < truth * 1.5, (peak, truth, tts)
    assert tts["forecast"]["method"] == "max-seen" and "too little to calibrate" in tts["forecast"]["note"]
    assert tts["forecast"]["coverage"] is None and tts["forecast"]["point_rps"] == peak

    # The gap by hand: one replica serves 1 GPU / 0.25 GPU-s per request x 0.7 target utilisation.
    kube = KubeObjects(str(history_stack.kubeconfig), "twin")
    ready = kube.get("deployment", "team-media", "tts-dub-us-east")["status"]["readyReplicas"]
    assert ready == 2
    svc, gala = named("services", "tts-dub", catalog_file), named("events", "year-end-gala", catalog_file)
    per_replica = replica_rps(svc)
    needed = math.ceil(peak / per_replica)
    required = math.ceil(peak * (1 + gala["buffer"]) / per_replica)
    s = tts["sizing"]
    assert (s["current_replicas"], s["needed_replicas"], s["required_replicas"]) == (ready, needed, required)
    assert s["gap_replicas"] == required - ready and s["gap_gpus"] == float(required - ready)

    # The checklist: tts-dub has no fallback; no drill ran in this journal.
    items = {i["item"]: i for i in report["checklist"]}
    assert not items["fallback for tts-dub"]["ok"] and "fallback.mode: none" in items["fallback for tts-dub"]["reason"]
    assert items["alerts for tts-dub"]["ok"], items["alerts for tts-dub"]
    assert items["dashboards build and lint"]["ok"], items["dashboards build and lint"]
    assert not items["runbook pre-scale"]["ok"] and "never run" in items["runbook pre-scale"]["reason"]

    # The action: its pre-scale plan, run as printed.
    action = next(a for a in report["actions"] if a["runbook"] == "pre-scale" and a["params"]["region"] == "us-east")
    assert action["params"] == {"service": "tts-dub", "region": "us-east", "replicas": str(required)}
    params = [f"{k}={v}" for k, v in action["params"].items()]
    p = gpuops(
        "runbook", "run", "pre-scale", *params, "--execute", "--catalog", str(catalog_file),
        "--prometheus", history_stack.prom_url, "--kubeconfig", str(history_stack.kubeconfig), "--context", "twin",
        "--journal", str(tmp_path / "runbooks.jsonl"), "--operator", "tester",
    )  # fmt: skip
    assert p.returncode == 0, p.stdout + p.stderr
    assert kube.get("deployment", "team-media", "tts-dub-us-east")["status"]["readyReplicas"] == required

    rc, after = readiness(history_stack, catalog_file, journal)
    tts_after = row(after, "tts-dub", "us-east")
    assert tts_after["verdict"] == "READY", tts_after
    assert tts_after["sizing"]["current_replicas"] == required
    assert not any(a["params"].get("region") == "us-east" for a in after["actions"])
    kube.close()


def test_table_and_markdown_show_each_row_with_its_sizing_by_hand(
    history_stack: Stack, catalog_file: Path, tmp_path: Path
):
    """Each run forecasts afresh (the history grows between runs), so each format is checked against the
    arithmetic of its own figures: need and required from its printed P95 peak, the gap from the ready
    replicas Kubernetes reports."""
    svc, gala = named("services", "tts-dub", catalog_file), named("events", "year-end-gala", catalog_file)
    per_replica = replica_rps(svc)
    kube = KubeObjects(str(history_stack.kubeconfig), "twin")
    ready = {r: kube.get("deployment", "team-media", f"tts-dub-{r}")["status"]["readyReplicas"] for r in svc["regions"]}
    kube.close()
    base = (
        "readiness", "year-end-gala", "--catalog", str(catalog_file), "--prometheus", history_stack.prom_url,
        "--kubeconfig", str(history_stack.kubeconfig), "--context", "twin",
        "--drill-journal", str(tmp_path / "drills.jsonl"),
    )  # fmt: skip

    def check(cells: list[str], region: str) -> str:
        cells = cells + [""] * (10 - len(cells))  # a READY row's empty gap cells end the line
        verdict, peak, _cover, now, need, required, gap, gap_gpus = cells[2:10]
        peak_rps = float(peak)  # printed to 0.1: either side of the rounding is right
        needs = {math.ceil((peak_rps + d) / per_replica) for d in (-0.05, 0.05)}
        requireds = {math.ceil((peak_rps + d) * (1 + gala["buffer"]) / per_replica) for d in (-0.05, 0.05)}
        assert int(now) == ready[region] and int(need) in needs and int(required) in requireds, cells
        short = max(int(required) - ready[region], 0)
        assert (gap or "0") == str(short) and float(gap_gpus or 0) == short * svc["gpus_per_replica"], cells
        # READY holds the peak with its buffer, AT RISK the peak alone, NOT READY not even the peak.
        want = "READY" if not short else "AT RISK" if ready[region] >= int(need) else "NOT READY"
        assert verdict == want, cells
        return verdict

    for fmt in ("table", "markdown"):
        p = gpuops(*base, "--format", fmt)
        verdicts = []
        for region in svc["regions"]:
            if fmt == "table":
                line = next(ln for ln in p.stdout.splitlines() if ln.startswith(f"tts-dub  {region} "))
                cells = re.split(r"\s{2,}", line.strip())
            else:
                line = next(ln for ln in p.stdout.splitlines() if ln.startswith(f"| tts-dub | {region} |"))
                cells = [c.strip() for c in line.strip().strip("|").split("|")]
            verdicts.append(check(cells, region))
        overall = next(v for v in ("NOT READY", "AT RISK", "READY") if v in verdicts)  # the worst row's
        assert p.returncode == (0 if overall == "READY" else 1), p.stderr
        assert f": {overall} — " in p.stdout, p.stdout
    assert p.stdout.startswith("# Readiness: ")


def test_a_past_event_is_ended_not_sized(history_stack: Stack, catalog_file: Path, tmp_path: Path):
    rc, report = readiness(history_stack, catalog_file, tmp_path / "drills.jsonl", event="spring-sale")
    assert rc == 0 and report["verdict"] == "ENDED" and report["status"] == "ended"
    assert report["services"] == [] and "ended 2026-03-02" in report["notes"][0]


def test_an_unknown_event_is_refused_naming_the_known_ones(history_stack: Stack, catalog_file: Path):
    p = gpuops("readiness", "black-friday", "--catalog", str(catalog_file), "--prometheus", history_stack.prom_url)
    assert p.returncode == 2
    assert "no event 'black-friday'" in p.stderr and "year-end-gala" in p.stderr and "spring-sale" in p.stderr


async def test_the_readiness_view_shows_verdicts_and_enter_opens_the_rows_plan(
    history_stack: Stack, catalog_file: Path, tmp_path: Path
):
    from textual.widgets import Input, Static

    from console.tui.app import GpuopsApp
    from console.tui.readiness import ReadinessView
    from console.tui.runbooks import RunbookScreen
    from console.wiring import connect
    from tests.e2e.console_helpers import cell, rows, until

    conn = connect(load_catalog(catalog_file), history_stack.prom_url, str(history_stack.kubeconfig), "twin",
                   drill_journal=tmp_path / "drills.jsonl")  # fmt: skip
    app = GpuopsApp(conn, interval=3600, operator="tester")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("7")
        view = app.query_one(ReadinessView)
        await until(pilot, lambda: view.result is not None, timeout=120, what="the forecast")
        await pilot.pause(0.3)
        assert rows(view.table) == ["tts-dub/us-east", "tts-dub/eu-west", "tts-dub/ap-southeast"]
        west = next(r for r in view.result.rows if r.region == "eu-west")
        assert cell(view.table, "tts-dub/eu-west", "verdict") == str(west.verdict) == "NOT READY"
        assert cell(view.table, "tts-dub/eu-west", "required") == str(west.sizing.required_replicas)
        # What it sized on: the P95 peak, and the method (four days: the highest rate seen, no coverage).
        assert cell(view.table, "tts-dub/eu-west", "peak") == f"{west.demand.peak_rps:.1f}"
        assert cell(view.table, "tts-dub/eu-west", "method") == "max-seen"
        assert cell(view.table, "tts-dub/eu-west", "cover") == "-"
        title = str(view.query_one(".view-title", Static).render())
        assert "year-end-gala" in title and "starts in" in title
        detail = str(view.query_one("#readiness-detail", Static).render())
        assert "fallback for tts-dub" in detail and "pre-scale service=tts-dub region=eu-west" in detail
        # Enter on the eu-west row: pre-scale, filled in with the required replicas.
        view.table.move_cursor(row=rows(view.table).index("tts-dub/eu-west"))
        await pilot.press("enter")
        screen = await until(pilot, lambda: isinstance(app.screen, RunbookScreen) and app.screen, what="the plan")
        assert screen.rb.name == "pre-scale"
        assert screen.query_one("#param-service", Input).value == "tts-dub"
        assert screen.query_one("#param-region", Input).value == "eu-west"
        assert screen.query_one("#param-replicas", Input).value == str(west.sizing.required_replicas)
    conn.close()
