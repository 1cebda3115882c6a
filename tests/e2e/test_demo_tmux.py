"""`gpuops demo` in a real terminal (tmux): the pools screen appears; `:quotas`, `/team-` and `?` work as
typed; q quits and nothing is left running."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import FLEET_START, ROOT, wait_for
from tests.fleetdoc import doc, node_count

FLEET = doc()
START = FLEET_START.strftime("%Y-%m-%dT%H:%M:%S")


def _tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], capture_output=True, text=True, check=False).stdout


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # the process ended while we looked
        if text in args:
            found.append(f"{cmdline.parent.name}: {args}")
    return found


def test_demo_in_tmux(tmp_path):
    workdir = tmp_path / "demo"
    session = f"gpuops-demo-{uuid.uuid4().hex[:12]}"  # unique: another run's session is not ours to kill
    gpuops = Path(sys.executable).parent / "gpuops"
    cmd = f"cd {ROOT} && {gpuops} demo --keep {workdir} --scrape-interval 1 --start {START} --history 0"
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "150", "-y", "40", cmd], check=True)
    try:
        screen = wait_for(
            lambda: (s := _tmux("capture-pane", "-p", "-t", session)) and "train-h100" in s and s,
            timeout=90,
            what="the pools screen",
        )
        assert "Pool" in screen and all(p["name"] in screen for p in FLEET["pools"])
        assert f"ctx {FLEET['clusters'][0]['context']}" in screen
        assert _processes_mentioning(str(workdir)), "the demo's servers run while the console is open"

        def shown(text: str) -> str:
            return wait_for(
                lambda: (s := _tmux("capture-pane", "-p", "-t", session)) and text in s and s, timeout=15, what=text
            )

        _tmux("send-keys", "-t", session, ":quotas", "Enter")
        namespaces = {ns: t["name"] for t in FLEET["teams"] for ns in t["namespaces"]}
        # The view's title comes before its rows on a loaded machine: wait for every row, then check them.
        screen = wait_for(
            lambda: (
                (s := _tmux("capture-pane", "-p", "-t", session))
                and "GPU used/hard" in s
                and all(ns in s and team in s for ns, team in namespaces.items())
                and s
            ),
            timeout=15,
            what="every namespace with its team on the quotas view",
        )
        assert all(ns in screen and team in screen for ns, team in namespaces.items())
        _tmux("send-keys", "-t", session, "/team-")
        screen = shown("/team-")
        assert all(ns in screen for ns in namespaces if ns.startswith("team-"))
        _tmux("send-keys", "-t", session, "r")  # typing on narrows the table as you type
        kept = {ns for ns in namespaces if ns.startswith("team-r")}
        assert kept and set(namespaces) - kept

        def narrowed() -> str:
            table = _tmux("capture-pane", "-p", "-t", session).split("GPU used/hard", 1)[-1]
            shown_rows = {w[0] for w in (ln.split() for ln in table.splitlines()) if w and w[0] in namespaces}
            return "/team-r" in table and shown_rows == kept and table

        wait_for(narrowed, timeout=15, what=f"the quotas narrowed to {sorted(kept)}")
        _tmux("send-keys", "-t", session, "Enter")
        time.sleep(0.5)
        _tmux("send-keys", "-t", session, "?")
        # The whole dialog: a capture can catch Textual mid-draw, with "Commands" on screen and the lines around
        # it not yet.
        screen = wait_for(
            lambda: (
                (s := _tmux("capture-pane", "-p", "-t", session))
                and all(t in s for t in ("Commands", ":ctx NAME", "filter the current table"))
                and s
            ),
            timeout=15,
            what="the help dialog",
        )
        assert ":ctx NAME" in screen and "filter the current table" in screen
        _tmux("send-keys", "-t", session, "Escape")
        wait_for(lambda: "Commands" not in _tmux("capture-pane", "-p", "-t", session), timeout=10, what="help closed")
        _tmux("send-keys", "-t", session, "q")
        wait_for(
            lambda: session not in _tmux("list-sessions", "-F", "#{session_name}"), timeout=30, what="the demo to exit"
        )
        wait_for(lambda: not _processes_mentioning(str(workdir)), timeout=15, what="no process left")
    finally:
        _tmux("kill-session", "-t", session)


def _urls(log: Path) -> dict[str, str] | None:
    text = log.read_text()
    if "working dir" not in text:
        return None
    wanted = {"twin", "prometheus", "alertmanager", "relay", "kubeconfig"}
    return {w[0]: w[1] for w in (ln.split() for ln in text.splitlines()) if len(w) >= 2 and w[0] in wanted}


def _stop_demo(proc: subprocess.Popen[bytes], workdir: Path) -> None:
    """However the test ended: SIGTERM lets the demo stop its servers (each in its own session, so a kill of
    the demo alone would orphan them); whatever still mentions the workdir after that is killed."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
    for line in _processes_mentioning(str(workdir)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(line.split(":")[0]), signal.SIGKILL)


def _demo_without_console(tmp_path: Path) -> tuple[subprocess.Popen[bytes], Path, Path]:
    workdir = tmp_path / "demo"
    gpuops = Path(sys.executable).parent / "gpuops"
    log = tmp_path / "demo.log"
    argv = [
        str(gpuops), "demo", "--no-console", "--keep", str(workdir), "--scrape-interval", "1", "--start", START,
        "--history", "0",
    ]  # fmt: skip
    with log.open("w") as out:
        proc = subprocess.Popen(argv, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    return proc, workdir, log


def test_demo_without_a_console_notices_its_prometheus_dying_and_stops_the_rest(tmp_path):
    proc, workdir, log = _demo_without_console(tmp_path)
    try:
        wait_for(lambda: "servers running" in log.read_text(), timeout=90, what="the demo's servers")
        (prom,) = [p for p in _processes_mentioning(str(workdir)) if "--storage.tsdb.path" in p]
        os.kill(int(prom.split(":")[0]), signal.SIGKILL)
        assert proc.wait(timeout=30) == 1
        text = log.read_text()
        assert "gpuops demo: prometheus exited (code -9)" in text and "stopping the others" in text, text
        wait_for(lambda: not _processes_mentioning(str(workdir)), timeout=15, what="no process left")
    finally:
        _stop_demo(proc, workdir)


def test_demo_without_a_console_serves_its_urls_and_stops_on_sigterm(tmp_path):
    """`gpuops demo --no-console`: the servers up, their URLs printed, a kubeconfig kubectl can use; SIGTERM
    (what systemd or `timeout` sends) stops them all."""
    proc, workdir, log = _demo_without_console(tmp_path)
    try:
        urls = wait_for(lambda: _urls(log), timeout=90, what="the demo's URLs")
        assert set(urls) == {"twin", "prometheus", "alertmanager", "relay", "kubeconfig"}, log.read_text()
        assert httpx.get(f"{urls['prometheus']}/-/ready").status_code == 200
        assert httpx.get(f"{urls['alertmanager']}/-/ready").status_code == 200
        # An alert for the platform team reaches its Feishu group through the relay, as a signed card in the
        # demo's local sink, and the relay says so (what the console's Alerts view shows).
        platform = FLEET["alerting"]["platform_team"]
        alert = {"labels": {"alertname": "DemoNotifies", "severity": "warning", "team": platform},
                 "annotations": {"summary": "a notification the demo can show"}}  # fmt: skip
        assert httpx.post(f"{urls['alertmanager']}/api/v2/alerts", json=[alert]).status_code == 200

        def carded() -> list[dict]:
            sink = workdir / "feishu.jsonl"
            lines = sink.read_text().splitlines() if sink.exists() else []
            return [c for c in map(json.loads, lines) if "DemoNotifies" in json.dumps(c["card"]["header"])]

        (card,) = wait_for(carded, timeout=60, what="the card in the demo's Feishu sink")
        assert card["sign"] and card["timestamp"] and card["msg_type"] == "interactive"
        sent = httpx.get(f"{urls['relay']}/notifications").json()["notifications"]
        group = FLEET["alerting"]["platform_feishu_group"]
        assert any(n["channel"] == f"feishu:{group}" and n["delivered"] for n in sent), sent
        assert httpx.get(f"{urls['twin']}/twin/clock").json()["segments"][0]["sim"].startswith(START)
        env = {**os.environ, "KUBECONFIG": urls["kubeconfig"]}
        nodes = subprocess.run(["kubectl", "get", "nodes", "-o", "name"], env=env, capture_output=True, text=True)
        assert nodes.returncode == 0 and len(nodes.stdout.split()) == node_count(), nodes.stderr
        assert _processes_mentioning(str(workdir)), "the servers run until the signal"
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        wait_for(lambda: not _processes_mentioning(str(workdir)), timeout=15, what="no process left")
        assert "stopping" in log.read_text()
    finally:
        _stop_demo(proc, workdir)


def test_console_command_with_its_options_in_a_terminal(stack):
    """`gpuops console` as an operator starts it on an existing fleet: a context scopes the screen to its
    regions (every pool there, none elsewhere); q quits."""
    apac = next(c for c in FLEET["clusters"] if c.get("readonly") and c.get("production"))
    session = f"gpuops-console-{uuid.uuid4().hex[:12]}"
    gpuops = Path(sys.executable).parent / "gpuops"
    cmd = (
        f"cd {ROOT} && {gpuops} console --catalog fleet.yaml --prometheus {stack.prom_url} --alertmanager"
        f" {stack.am_url} --kubeconfig {stack.kubeconfig} --context {apac['context']} --interval 1 --operator tester"
    )
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "150", "-y", "40", cmd], check=True)
    try:
        in_region = [p["name"] for p in FLEET["pools"] if set(p["nodes"]) <= set(apac["regions"])]
        elsewhere = [p["name"] for p in FLEET["pools"] if not set(p["nodes"]) & set(apac["regions"])]
        assert in_region or elsewhere
        screen = wait_for(
            lambda: (s := _tmux("capture-pane", "-p", "-t", session)) and f"ctx {apac['context']}" in s
            and all(r in s for r in apac["regions"]) and s,
            timeout=60, what=f"the pools of {apac['context']}",
        )  # fmt: skip
        others = {r["name"] for r in FLEET["regions"]} - set(apac["regions"])
        table = screen.split("Pool", 1)[-1]
        assert not any(f" {r} " in table for r in others), screen
        assert all(p not in table for p in elsewhere), screen
        _tmux("send-keys", "-t", session, "q")
        wait_for(lambda: session not in _tmux("list-sessions", "-F", "#{session_name}"), timeout=30, what="quit")
    finally:
        _tmux("kill-session", "-t", session)


def _shifted_catalog(tmp_path: Path) -> tuple[Path, str]:
    """The demo's catalog with its first event moved to twelve days from now (read and written plainly): the
    demo runs on the real clock here, so the event must lie ahead whatever the date."""
    import yaml

    doc_ = yaml.safe_load((ROOT / "fleet.yaml").read_text())
    ev = doc_["events"][0]
    length = ev["end"] - ev["start"]
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=12)
    doc_["events"] = [{**ev, "start": start, "end": start + length}]
    path = tmp_path / "fleet.yaml"
    path.write_text(yaml.safe_dump(doc_, sort_keys=False))
    return path, ev["name"]


def _demo_until_pools(session: str, cmd: str, timeout: float) -> float:
    """Start the demo in tmux; the seconds until its Pools view shows every pool."""
    t0 = time.monotonic()
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "200", "-y", "50", cmd], check=True)
    wait_for(
        lambda: all(p["name"] in _tmux("capture-pane", "-p", "-t", session) for p in FLEET["pools"]),
        timeout=timeout, what="the pools screen",
    )  # fmt: skip
    return time.monotonic() - t0


def _readiness_with_a_model(session: str, event: str) -> tuple[str, float]:
    """Press 7; the screen once every row is forecast, and the seconds that took."""
    t0 = time.monotonic()
    _tmux("send-keys", "-t", session, "7")
    screen = wait_for(
        lambda: (s := _tmux("capture-pane", "-p", "-t", session)) and f"Readiness — {event}" in s
        and "learned from" in s and "forecasting" not in s and s,
        timeout=120, what="the readiness view with its forecasts",
    )  # fmt: skip
    return screen, time.monotonic() - t0


@pytest.mark.heavy  # its 21 days' backfill: run alone, after the others (tests/conftest.py)
def test_a_demo_with_history_forecasts_from_a_model_and_a_second_start_continues_it(tmp_path):
    """The default 21 days of history: the Readiness view's rows name a model (no "max-seen", the last value)
    and the uplift learned from the history's rehearsal; a second start on the same cache reuses the kept
    blocks. The seconds each step took are printed (figures, not asserted: this machine is shared)."""
    catalog, event = _shifted_catalog(tmp_path)
    gpuops = Path(sys.executable).parent / "gpuops"
    figures = []
    for run in ("cold", "cached"):
        workdir = tmp_path / run
        session = f"gpuops-hist-{uuid.uuid4().hex[:12]}"
        # The pane's size, not the test runner's COLUMNS and LINES (the tmux server inherits them).
        cmd = (f"cd {ROOT} && env -u COLUMNS -u LINES {gpuops} demo --catalog {catalog} --keep {workdir} --scrape-interval 1 "
               f"--history-cache {tmp_path / 'cache'}")  # fmt: skip
        try:
            paint = _demo_until_pools(session, cmd, timeout=600)
            screen, ready = _readiness_with_a_model(session, event)
            rows = [ln for ln in screen.splitlines() if " us-east " in ln or " eu-west " in ln or " ap-" in ln]
            assert rows and "max-seen" not in screen and "peak-ensemble" in screen, screen
            assert f"uplift learned from {event}-rehearsal-" in screen, screen
            twin_log = (workdir / "twin.log").read_text()
            assert ("cache not used" in twin_log) == (run == "cold"), twin_log[-1500:]
            figures.append(f"{run}: pools painted {paint:.1f} s after the command, a model forecast {ready:.1f} s "
                           "after pressing 7")  # fmt: skip
            _tmux("send-keys", "-t", session, "q")
            wait_for(lambda s=session: s not in _tmux("list-sessions", "-F", "#{session_name}"), timeout=60,
                     what="the demo to exit")  # fmt: skip
            wait_for(lambda w=str(workdir): not _processes_mentioning(w), timeout=15, what="no process left")
        finally:
            _tmux("kill-session", "-t", session)
    print("\n".join(figures))
