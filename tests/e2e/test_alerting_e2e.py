"""The built rules in a real Prometheus and the built Alertmanager config in a real Alertmanager: a region
outage in the twin reaches the platform team's receivers, and it silences that region's per-service alerts."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

import httpx
import pytest

from console.catalog import load_catalog
from console.codegen.mixin import alertmanager_config
from console.procs.relay import relay as relay_process
from console.relay.targets import feishu_groups
from console.sources.alertmanager import AlertmanagerSource
from console.sources.relay import RelaySource
from tests.e2e.conftest import ROOT, Stack, built_rules, start_stack, wait_for
from tests.fleetdoc import named, replica_rps


class _Inbox(BaseHTTPRequestHandler):
    """Where the chat receivers deliver: the Slack URL (from its secret file) and each team's Feishu bot, to
    which `gpuops relay` posts; it answers as Feishu does, and keeps only a correctly signed card."""

    received: list[tuple[str, dict]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        answer = {"code": 0, "msg": "success"}
        if self.path.startswith("/feishu-bot/"):
            # Feishu's check, written here: HMAC-SHA256 keyed by "timestamp\nsecret" over nothing, base64.
            key = f"{body.get('timestamp')}\n{BOT_SECRET}".encode()
            sign = base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()
            if body.get("sign") != sign or abs(time.time() - int(body.get("timestamp", 0))) > 3600:
                answer = {"code": 19021, "msg": "sign match fail or timestamp is not within one hour"}
        if answer["code"] == 0:
            type(self).received.append((self.path, body))
        data = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


BOT_SECRET = "the-bots-signing-secret"


@pytest.fixture(scope="module")
def inbox() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Inbox)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture(scope="module")
def secrets(tmp_path_factory: pytest.TempPathFactory, inbox: str) -> Path:
    """Every receiver's secret file, each URL the test's inbox."""
    folder = tmp_path_factory.mktemp("secrets")
    base = load_catalog(ROOT / "fleet.yaml")
    for team in [t.name for t in base.teams] + [base.alerting.platform_team]:
        (folder / f"slack-{team}").write_text(f"{inbox}/slack/{team}")
        (folder / f"pagerduty-{team}").write_text("0123456789abcdef0123456789abcdef")
    (folder / "relay-token").write_text("not-a-real-token")
    for team in feishu_groups(base):
        (folder / f"feishu-{team}.url").write_text(f"{inbox}/feishu-bot/{team}")
        (folder / f"feishu-{team}.secret").write_text(BOT_SECRET)
    return folder


@pytest.fixture(scope="module")
def relay(tmp_path_factory: pytest.TempPathFactory, secrets: Path) -> Iterator[str]:
    """`gpuops relay` as it runs in production: its own process, the catalog's teams, secrets from files."""
    server = relay_process(tmp_path_factory.mktemp("relay"), ROOT / "fleet.yaml", secrets)
    server.start()
    try:
        yield server.base_url
    finally:
        server.stop()


@pytest.fixture(scope="module")
def astack(tmp_path_factory: pytest.TempPathFactory, secrets: Path, relay: str) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp("alerting")
    base = load_catalog(ROOT / "fleet.yaml")
    alerting = base.alerting.model_copy(
        update={"secrets_dir": str(secrets), "relay_url": relay, "group_wait": "1s", "group_interval": "1s"}
    )
    # Events of the test's own, so that the verdict holds on any date: Prometheus evaluates the event windows
    # with its own `time()`, the machine's clock, which no test can set.
    gala = base.events[0]
    events = [
        gala.model_copy(
            update={"name": name, "start": datetime.fromisoformat(start), "end": datetime.fromisoformat(end)}
        )
        for name, start, end in EVENTS
    ]
    catalog = base.model_copy(update={"alerting": alerting, "events": events})
    yield from start_stack(
        workdir,
        "--catalog",
        str(ROOT / "fleet.yaml"),
        "--warmup",
        "3",
        rule_files=built_rules(workdir, catalog, regionDownFor="5s", gpusGoneFor="5s", **SHORT),
        am_config=alertmanager_config(catalog),
    )


# The GPU health alerts' waits and windows, short enough for a test (their real lengths are promtool-tested).
SHORT = {
    "xidFor": "5s", "xidWindow": "30s", "throttleWindow": "30s", "throttleFor": "5s", "slowdownFor": "5s",
    "remapFor": "5s", "eccWindow": "30s", "eccFor": "5s", "linkWindow": "30s", "linkFor": "5s",
}  # fmt: skip

EVENTS = (
    ("always-open", "2001-01-08T00:00:00+00:00", "2099-12-31T00:00:00+00:00"),
    ("long-past", "2001-01-08T00:00:00+00:00", "2001-01-09T00:00:00+00:00"),
    ("far-ahead", "2099-01-01T00:00:00+00:00", "2099-01-02T00:00:00+00:00"),
)


def _service_alert(region: str) -> dict:
    return {
        "labels": {
            "alertname": "ServiceLatencyHigh",
            "severity": "critical",
            "team": "media-ai",
            "service": "tts-dub",
            "region": region,
        },
        "annotations": {"summary": f"tts-dub p95 over its SLO in {region}"},
        "startsAt": datetime.now(UTC).isoformat(),
    }


def test_region_outage_reaches_the_platform_team_and_inhibits_that_regions_service_alerts(astack):
    am = AlertmanagerSource(astack.am_url or "")
    r = httpx.post(
        f"{astack.twin_url}/twin/faults",
        json={"kind": "region_outage", "target": {"region": "eu-west"}, "duration_s": 300},
    )
    assert r.status_code == 201, r.text
    try:

        def region_down() -> dict | None:
            raw = httpx.get(f"{astack.am_url}/api/v2/alerts").json()
            return next((a for a in raw if a["labels"]["alertname"] == "RegionDown"), None)

        alert = wait_for(region_down, timeout=60, what="RegionDown in Alertmanager")
        assert alert["labels"]["region"] == "eu-west" and alert["labels"]["team"] == "sre"
        assert {x["name"] for x in alert["receivers"]} == {"sre-pagerduty", "sre-chat"}

        # The region's nodes stop reporting their GPUs too; RegionDown explains them, so they are inhibited.
        def nodes_gone() -> list[dict] | None:
            raw = httpx.get(f"{astack.am_url}/api/v2/alerts").json()
            gone = [a for a in raw if a["labels"]["alertname"] == "NodeGpusGone"]
            return gone if gone and all(a["status"]["state"] != "unprocessed" for a in gone) else None

        gone = wait_for(nodes_gone, timeout=60, what="NodeGpusGone for the region's nodes")
        assert {a["labels"]["region"] for a in gone} == {"eu-west"}
        assert all(a["status"]["state"] == "suppressed" and a["status"]["inhibitedBy"] for a in gone)

        am.post_alerts([_service_alert("eu-west"), _service_alert("us-east")])

        def states() -> dict[str, dict] | None:
            raw = httpx.get(f"{astack.am_url}/api/v2/alerts").json()
            got = {a["labels"]["region"]: a["status"] for a in raw if a["labels"]["alertname"] == "ServiceLatencyHigh"}
            return got if len(got) == 2 and all(s["state"] != "unprocessed" for s in got.values()) else None

        got = wait_for(states, timeout=30, what="both service alerts processed")
        assert got["eu-west"]["state"] == "suppressed" and got["eu-west"]["inhibitedBy"]
        assert got["us-east"]["state"] == "active" and not got["us-east"]["inhibitedBy"]

        # What the receivers were sent: RegionDown to the platform team's chat, never the inhibited alert.
        def delivered() -> set[str]:
            # Slack from Alertmanager, the Feishu card through the relay: each in its own time.
            paths = {p for p, b in _Inbox.received if "RegionDown" in json.dumps(b)}
            return paths if paths >= {"/feishu-bot/sre", "/slack/sre"} else set()

        wait_for(delivered, timeout=30, what="RegionDown delivered to Slack and, as a card, to Feishu")
        wait_for(
            lambda: any(
                "us-east" in json.dumps(b) and "ServiceLatencyHigh" in json.dumps(b) for _, b in _Inbox.received
            ),
            timeout=30,
            what="the us-east service alert delivered",
        )
        inhibited = [
            b
            for _, b in _Inbox.received
            if "ServiceLatencyHigh" in json.dumps(b)
            and any(a["labels"].get("region") == "eu-west" for a in b.get("alerts", []))
        ]
        assert not inhibited, "an inhibited alert reached a receiver"
    finally:
        httpx.delete(f"{astack.twin_url}/twin/faults/{r.json()['id']}")
        am.close()


def test_recorded_capacity_matches_the_ready_replicas(astack):
    """The capacity rule reads the ready replicas of each region's deployment, at the target utilisation."""
    from console.sources.prometheus import PrometheusSource

    svc = named("services", "tts-dub")
    per_replica = replica_rps(svc)
    p = PrometheusSource(astack.prom_url)

    def matches() -> bool:
        # Retried: the rule is evaluated once a second, a step behind the replicas it reads.
        got = {s.labels["region"]: s.value for s in p.query('gpuops:service_region:capacity_rps{service="tts-dub"}')}
        ready = {
            s.labels["deployment"].removeprefix("tts-dub-"): s.value
            for s in p.query(
                'kube_deployment_status_replicas_available{namespace="team-media", deployment=~"tts-dub-.+"}'
            )
        }
        regions = svc["regions"]
        return len(got) == len(regions) and got == pytest.approx({r: ready[r] * per_replica for r in regions})

    wait_for(matches, timeout=30, what="the capacity rule to equal ready replicas x per-replica capacity")
    # An event's window is open from a week before its start to its end, and closed otherwise.
    assert {s.labels["event"] for s in p.query("gpuops:event:upcoming")} == {"always-open"}


# Each twin fault, and the alerts it must fire (by the exporter's own series, through the built rules).
HEALTH = {
    "thermal_throttle": {"GpuHardwareSlowdown", "GpuThermalThrottling"},
    "ecc_failure": {"GpuRowRemapFailure", "GpuUncorrectableMemoryErrors"},
    "nvlink_errors": {"GpuLinkErrors"},
    "xid_storm": {"GpuXidErrors"},
    "exporter_down": {"NodeGpusGone"},
}
# What the milder alert of each pair must be muted by, on the same GPU.
MUTED_BY = {"GpuThermalThrottling": "GpuHardwareSlowdown", "GpuUncorrectableMemoryErrors": "GpuRowRemapFailure"}


def _cards(alertname: str, state: str) -> list[dict]:
    """The cards the relay got Feishu to accept (signed right) for the platform team's group."""
    return [
        b["card"]
        for p, b in _Inbox.received
        if p == "/feishu-bot/sre" and b["card"]["header"]["title"]["content"].startswith(f"[{state}")
        and alertname in b["card"]["header"]["title"]["content"]
    ]  # fmt: skip


def test_each_gpu_health_fault_fires_its_alerts_the_graver_mutes_the_milder_and_all_resolve(astack, relay):
    gpus = httpx.get(f"{astack.prom_url}/api/v1/query", params={"query": "count by (Hostname) (DCGM_FI_DEV_GPU_UTIL)"})
    nodes = sorted(
        r["metric"]["Hostname"] for r in gpus.json()["data"]["result"] if "us-east" in r["metric"]["Hostname"]
    )
    assert len(nodes) >= len(HEALTH), nodes
    on = dict(zip(HEALTH, nodes, strict=False))
    ids = []
    for kind, node in on.items():
        r = httpx.post(
            f"{astack.twin_url}/twin/faults", json={"kind": kind, "target": {"node": node}, "duration_s": 600}
        )
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])

    def health_alerts() -> dict[tuple[str, str], dict]:
        raw = httpx.get(f"{astack.am_url}/api/v2/alerts").json()
        wanted = set().union(*HEALTH.values())
        return {
            (a["labels"]["alertname"], a["labels"].get("Hostname") or a["labels"].get("node", "")): a
            for a in raw
            if a["labels"]["alertname"] in wanted and a["status"]["state"] != "unprocessed"
        }

    expected = {(alert, node) for kind, node in on.items() for alert in HEALTH[kind]}
    try:
        got = wait_for(lambda: (a := health_alerts()) and expected <= set(a) and a, timeout=120, what="every alert")
        for (alert, node), a in got.items():
            if (alert, node) not in expected:
                continue
            assert a["labels"]["team"] == "sre", a
            if alert in MUTED_BY:
                # Muted by its graver form on the same GPU: inhibited, delivered to nobody.
                assert a["status"]["state"] == "suppressed" and a["status"]["inhibitedBy"], a
            else:
                assert a["status"]["state"] == "active", a
        # The relay's card for the graver alert: signed (the inbox keeps no other), its links the alert's own.
        slow = got[("GpuHardwareSlowdown", on["thermal_throttle"])]
        card = wait_for(lambda: _cards("GpuHardwareSlowdown", "FIRING"), timeout=60, what="a signed card")[-1]
        assert slow["labels"]["severity"] == "critical" and card["header"]["template"] == "red"
        buttons = {
            b["text"]["content"]: b["url"] for e in card["elements"] if e["tag"] == "action" for b in e["actions"]
        }
        assert buttons["Runbook"] == slow["annotations"]["runbook_url"]
        assert buttons["Dashboard"] == slow["annotations"]["dashboard_url"]
        silence = unquote(buttons["Silence"])
        assert "/#/silences/new?filter={" in silence and 'alertname="GpuHardwareSlowdown"' in silence
        assert on["thermal_throttle"] in card["elements"][0]["text"]["content"]
        assert not _cards("GpuThermalThrottling", "FIRING"), "an inhibited alert reached Feishu"
        # What the console's Alerts view reads: the alert, by Alertmanager's fingerprint, reached #sre-oncall.
        notified = wait_for(lambda: RelaySource(relay).notified().get(slow["fingerprint"]), timeout=30, what="it")
        assert notified.channel == "feishu:#sre-oncall" and notified.status == "firing"
    finally:
        for fid in ids:
            httpx.delete(f"{astack.twin_url}/twin/faults/{fid}")
    # Over: the gauges clear at once, the windowed alerts when their window has passed; all resolve.
    wait_for(lambda: not (expected & set(health_alerts())), timeout=120, what="every health alert resolved")
    resolved = wait_for(lambda: _cards("GpuHardwareSlowdown", "RESOLVED"), timeout=60, what="the resolved card")
    assert resolved[-1]["header"]["template"] == "green"


# Every graver/milder pair the built Alertmanager must mute, and the labels they share.
# The burn tiers of both SLOs: each pair on its own service, so that no other source mutes its target.
_SLO = [
    ("FastBurn", "SlowBurn", "tts-dub"),
    ("FastBurn", "Ticket", "llm-chat"),
    ("SlowBurn", "Ticket", "asr-subtitles"),
]
GRAVER = [
    (f"{kind}Slo{graver}", f"{kind}Slo{milder}", {"service": service, "region": "us-east", "team": "media-ai"})
    for kind in ("Latency", "Availability")
    for graver, milder, service in _SLO
] + [
    ("QuotaFull", "QuotaNearlyFull", {"namespace": "team-media", "resource": "requests.nvidia.com/gpu"}),
    ("TeamBudgetProjected100", "TeamBudgetProjected80", {"team": "research"}),
    ("GpuHardwareSlowdown", "GpuThermalThrottling", {"Hostname": "n1", "gpu": "3", "team": "sre"}),
    ("GpuRowRemapFailure", "GpuUncorrectableMemoryErrors", {"Hostname": "n1", "gpu": "3", "team": "sre"}),
]


def test_each_graver_alert_mutes_its_milder_form_on_the_same_object_only(astack):
    am = AlertmanagerSource(astack.am_url or "")
    now = datetime.now(UTC).isoformat()

    def alert(name: str, severity: str, labels: dict[str, str]) -> dict:
        return {"labels": {"alertname": name, "severity": severity, **labels}, "startsAt": now}

    sent = []
    for i, (source, target, labels) in enumerate(GRAVER):
        # The same object, and one that differs in the first shared label: only the first is muted.
        other = dict(labels, **{next(iter(labels)): f"elsewhere-{i}"})
        sent += [alert(source, "critical", labels), alert(target, "warning", labels), alert(target, "warning", other)]
    try:
        am.post_alerts(sent)

        # Each target twice: on its source's object and elsewhere (a source may be another pair's target).
        wanted = {
            (target, value)
            for i, (_, target, labels) in enumerate(GRAVER)
            for value in (labels[next(iter(labels))], f"elsewhere-{i}")
        }

        def states() -> dict[tuple[str, str], dict] | None:
            raw = httpx.get(f"{astack.am_url}/api/v2/alerts").json()
            got = {
                (a["labels"]["alertname"], a["labels"][next(iter(labels))]): a["status"]
                for _, target, labels in GRAVER
                for a in raw
                if a["labels"]["alertname"] == target and a["labels"]["severity"] == "warning"
            }
            done = wanted <= set(got) and all(got[k]["state"] != "unprocessed" for k in wanted)
            return got if done else None

        got = wait_for(states, timeout=30, what="every milder alert processed")
        for i, (_, target, labels) in enumerate(GRAVER):
            same = got[(target, labels[next(iter(labels))])]
            assert same["state"] == "suppressed" and same["inhibitedBy"], (target, same)
            assert got[(target, f"elsewhere-{i}")]["state"] == "active", target
    finally:
        am.post_alerts([dict(a, endsAt=now) for a in sent])
        am.close()
