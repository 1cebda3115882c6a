"""The cluster-loss drill end to end: `gpuops drill run cluster-loss` starts a cluster per region (the twin's
three APIs and /metrics on one clock), a real Prometheus each, the global view with the rules (each `for`
divided by the speed) and Alertmanager. eu-west's cluster goes down; ClusterDown fires from the global view; the
runbooks act in the clusters that survive; the drill passes within the targets its scenario file states, and
every server it started is stopped."""

from __future__ import annotations

import re
import subprocess

import yaml

from console.runbooks.journal import Journal
from tests.e2e.conftest import ROOT
from tests.e2e.drill_helpers import SPEED, assert_passed_and_agrees_with_the_journal, gpuops, journals
from tests.e2e.drill_helpers import times_from_journal as times
from tests.fleetdoc import doc


def _seconds(text: str) -> float:
    """A scenario's duration (`5m`, `45m`, `2h`), read here on its own."""
    n, unit = re.fullmatch(r"(\d+)([smh])", text).groups()  # type: ignore[union-attr]
    return int(n) * {"s": 1, "m": 60, "h": 3600}[unit]


def test_the_cluster_loss_drill_answers_from_the_surviving_clusters(tmp_path):
    plain = yaml.safe_load((ROOT / "runbooks" / "drills" / "cluster-loss.yaml").read_text())
    [fault] = plain["faults"]
    lost = fault["target"]["cluster"]
    regions = {r["name"] for r in doc()["regions"]}
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    r = gpuops(
        "drill", "run", "cluster-loss", "--speed", str(SPEED), "--report-dir", str(tmp_path / "reports"),
        env={**journals(tmp_path), "TMPDIR": str(tmp)}, timeout=600,
    )  # fmt: skip
    assert "starting the global view" in r.stderr and "starting Alertmanager" in r.stderr, r.stderr
    # The rollbacks take the pre-scaled replicas back while the surviving regions still carry the evening's
    # load: their headroom dips until the HPAs scale, and the drill waits for it.
    assert_passed_and_agrees_with_the_journal(r, "cluster-loss", tmp_path, settles_after=True)

    records = Journal(tmp_path / "drills.jsonl").records()
    drill = next(rec["run"] for rec in records if rec["event"] == "drill_start")
    ttd, ttm = times(records, drill)
    assert ttd <= _seconds(plain["targets"]["detect"]) and ttm <= _seconds(plain["targets"]["mitigate"])
    # Detected by the lost cluster's own alert, from the global view; the drill acted through a survivor.
    found = next(rec for rec in records if rec["event"] == "alert_firing" and rec["detects"])
    assert (found["alert"], found["labels"]["cluster"]) == ("ClusterDown", lost)
    start = next(rec for rec in records if rec["event"] == "drill_start")
    assert start["context"] in regions - {lost}
    # The steady state broke during the loss (the survivors' headroom ran down) and came back.
    during = [rec for rec in records if rec["event"] == "probe" and rec["phase"] == "during"]
    assert any(not rec["holds"] for rec in during) and during[-1]["holds"]

    # Every change was made in a cluster that answered: each deployment and HPA in its region's own cluster,
    # the failover's weight in the target's routing config map, in the target's cluster.
    rb = Journal(tmp_path / "runbooks.jsonl").records()
    done = {(rec["run"], rec["key"]) for rec in rb if rec["event"] == "change_done"}
    changes = [rec["change"] for rec in rb if rec["event"] == "change_start" and (rec["run"], rec["key"]) in done]
    assert changes
    for c in changes:
        t = c["target"]
        assert t.get("cluster") in regions - {lost}, c
        if t["kind"] in ("deployment", "hpa"):
            assert t["name"].endswith(f"-{t['cluster']}"), c
    failover = next(x for x in plain["runbooks"] if x["runbook"] == "region-failover")["params"]
    weights = [c for c in changes if c["target"]["kind"] == "configmap"]
    assert [(c["target"]["cluster"], c["path"]) for c in weights] == [
        (failover["target"], ["data", f"weight.{failover['target']}"])
    ]
    left = subprocess.run(["pgrep", "-f", str(tmp)], capture_output=True, text=True).stdout.split()
    assert left == [], f"servers left running: {left}"
