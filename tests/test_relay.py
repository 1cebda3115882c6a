"""`gpuops relay`: Alertmanager's webhook in, a signed Feishu card out, retried, and never dropped silently.

The fake bot below checks the signature as Feishu documents it, with its own code: HMAC-SHA256 keyed by
"timestamp\\nsecret" over an empty message, base64.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import httpx
import pytest

from console.catalog import load_catalog
from console.codegen.mixin import alertmanager_config
from console.relay.server import Relay, RelayServer
from console.relay.targets import Target, TargetError, targets
from console.sources.feishu import FeishuBot

ROOT = Path(__file__).resolve().parents[1]
SECRET = "s3cret-of-the-bot"


class _Bot(BaseHTTPRequestHandler):
    """A Feishu custom bot: refuses a bad signature with code 19021, as Feishu does; `fail_next` 500s."""

    got: list[dict] = []
    fail_next = 0

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        cls = type(self)
        if cls.fail_next:
            cls.fail_next -= 1
            self._reply(500, {"code": 500, "msg": "busy"})
            return
        key = f"{body.get('timestamp')}\n{SECRET}".encode()
        want = base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()
        fresh = abs(time.time() - int(body.get("timestamp", 0))) < 3600
        if body.get("sign") != want or not fresh:
            self._reply(200, {"code": 19021, "msg": "sign match fail or timestamp is not within one hour"})
            return
        cls.got.append(body)
        self._reply(200, {"code": 0, "msg": "success", "data": {}})

    def _reply(self, code: int, doc: dict) -> None:
        data = json.dumps(doc).encode()
        self.send_response(code)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def bot_url() -> Iterator[str]:
    _Bot.got, _Bot.fail_next = [], 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Bot)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/open-apis/bot/v2/hook/abc"
    server.shutdown()
    server.server_close()


@pytest.fixture
def relay(bot_url: str, tmp_path: Path) -> Iterator[tuple[str, Relay, list[str]]]:
    lines: list[str] = []
    target = Target("llm-platform", "#llm-oncall", bot_url, SECRET)
    core = Relay(
        {"llm-platform": target},
        failures=tmp_path / "failures.jsonl",
        sink=tmp_path / "sink.jsonl",
        bot=lambda t: FeishuBot(t.url, t.secret, tries=3, backoff_s=0.01),
        log=lines.append,
    )
    server = RelayServer(core, token="tok")
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.url, core, lines
    server.shutdown()
    server.server_close()
    core.close()


def hook(n: int = 1, status: str = "firing", severity: str = "critical") -> dict:
    alerts = [
        {
            "status": status,
            "labels": {"alertname": "LatencySloFastBurn", "severity": severity, "service": "llm-chat",
                       "region": f"r{i}", "team": "llm-platform"},
            "annotations": {"summary": f"llm-chat burns its budget in r{i}",
                            "runbook_url": "https://git.example/runbooks/pre-scale.yaml",
                            "dashboard_url": "https://grafana.example/d/gpuops-services?viewPanel=3"},
            "startsAt": "2026-12-02T08:00:00Z",
            "fingerprint": f"fp{i}",
        }
        for i in range(n)
    ]  # fmt: skip
    return {
        "version": "4", "status": status, "receiver": "llm-platform-chat", "groupKey": "{}:{}", "truncatedAlerts": 0,
        "groupLabels": {"alertname": "LatencySloFastBurn", "team": "llm-platform"},
        "commonLabels": {"alertname": "LatencySloFastBurn"}, "commonAnnotations": {},
        "externalURL": "http://am.example:9093", "alerts": alerts,
    }  # fmt: skip


def post(url: str, body: object, token: str = "tok", path: str = "/feishu/llm-platform") -> httpx.Response:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(url + path, content=data, headers={"Authorization": f"Bearer {token}"}, timeout=10)


def test_a_group_becomes_one_signed_card_with_its_colour_summaries_and_links(relay):
    url, _, _ = relay
    r = post(url, hook(10))
    assert r.status_code == 200, r.text
    (body,) = _Bot.got
    assert body["msg_type"] == "interactive"
    card = body["card"]
    assert card["header"]["template"] == "red"
    assert card["header"]["title"]["content"] == "[FIRING:10] LatencySloFastBurn · llm-platform"
    text = card["elements"][0]["text"]["content"]
    assert "llm-chat burns its budget in r0" in text and "… and 2 more" in text  # 8 shown of 10
    buttons = {b["text"]["content"]: b["url"] for e in card["elements"] if e["tag"] == "action" for b in e["actions"]}
    assert buttons["Runbook"] == "https://git.example/runbooks/pre-scale.yaml"
    assert buttons["Dashboard"] == "https://grafana.example/d/gpuops-services?viewPanel=3"
    silence = urlsplit(buttons["Silence"])
    assert f"{silence.scheme}://{silence.netloc}" == "http://am.example:9093"
    fragment = urlsplit(silence.fragment)
    assert fragment.path == "/silences/new"
    assert unquote(parse_qs(fragment.query)["filter"][0]) == '{alertname="LatencySloFastBurn", team="llm-platform"}'
    seen = httpx.get(url + "/notifications").json()["notifications"]
    assert [(n["channel"], n["delivered"], len(n["alerts"])) for n in seen] == [("feishu:#llm-oncall", True, 10)]
    latest = httpx.get(url + "/notified").json()["notified"]
    assert set(latest) == {f"fp{i}" for i in range(10)}
    assert {(n["channel"], n["status"]) for n in latest.values()} == {("feishu:#llm-oncall", "firing")}


def test_a_resolved_group_is_green_and_a_warning_orange(relay):
    url, _, _ = relay
    assert post(url, hook(1, "resolved")).status_code == 200
    assert post(url, hook(1, severity="warning")).status_code == 200
    resolved, warning = _Bot.got
    assert resolved["card"]["header"]["template"] == "green"
    assert resolved["card"]["header"]["title"]["content"].startswith("[RESOLVED] ")
    assert warning["card"]["header"]["template"] == "orange"


def test_a_busy_bot_is_retried_and_a_dead_one_logged_kept_and_answered_502(relay, tmp_path):
    url, core, lines = relay
    _Bot.fail_next = 2  # two 500s, then a delivery on the third try
    assert post(url, hook()).status_code == 200
    assert len(_Bot.got) == 1 and core.notifications()[-1]["attempts"] == 3
    _Bot.fail_next = 3  # every try fails: Alertmanager must hear it and retry
    r = post(url, hook(1, "resolved"))
    assert r.status_code == 502 and "gave up after 3 attempts" in r.json()["message"]
    # The alert's last delivery is still the firing one: a group that failed reached no one.
    assert httpx.get(url + "/notified").json()["notified"]["fp0"]["status"] == "firing"
    kept = [json.loads(line) for line in (tmp_path / "failures.jsonl").read_text().splitlines()]
    assert len(kept) == 1 and kept[0]["message"]["msg_type"] == "interactive" and "HTTP 500" in kept[0]["error"]
    metrics = httpx.get(url + "/metrics").text
    assert 'gpuops_relay_notifications_total{team="llm-platform",result="delivered"} 1' in metrics
    assert 'gpuops_relay_notifications_total{team="llm-platform",result="failed"} 1' in metrics
    assert any("UNDELIVERED" in line and "feishu:#llm-oncall" in line for line in lines)


def test_a_wrong_signing_secret_is_refused_by_the_bot_and_not_retried(bot_url):
    bot = FeishuBot(bot_url, "not-the-secret", tries=3, backoff_s=0.01)
    with pytest.raises(Exception, match=r"refused: code 19021.*attempt 1; not retried"):
        bot.send({"msg_type": "text", "content": {"text": "hi"}})
    assert not _Bot.got


def test_bad_callers_and_bodies_get_a_clear_status(relay):
    url, _, _ = relay
    assert post(url, hook(), token="wrong").status_code == 401
    assert post(url, hook(), path="/feishu/nobody").status_code == 404
    bad = post(url, {"status": "firing", "alerts": [{"status": "firing", "labels": {"a": 1}}]})
    assert bad.status_code == 400 and "alerts.0.labels.a" in bad.json()["message"]
    assert post(url, b"\xff\xfe not json").status_code == 400
    # A declared gigabyte is refused before a byte of it is read.
    host, port = urlsplit(url).hostname, urlsplit(url).port
    with socket.create_connection((host, port), timeout=10) as s:
        s.sendall(b"POST /feishu/llm-platform HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n\r\n")
        assert s.recv(100).startswith(b"HTTP/1.1 413 ")
    assert not _Bot.got


def test_the_sink_keeps_what_any_receiver_posts(relay, tmp_path):
    url, _, _ = relay
    assert post(url, {"text": "from slack"}, path="/sink/sre-chat").status_code == 200
    (line,) = [json.loads(x) for x in (tmp_path / "sink.jsonl").read_text().splitlines()]
    assert line["receiver"] == "sre-chat" and line["body"] == {"text": "from slack"}


def test_targets_read_each_teams_files_and_name_every_one_missing_or_hostile(tmp_path):
    cat = load_catalog(ROOT / "fleet.yaml")
    groups = {t.name: t.feishu_group for t in cat.teams if t.feishu_group}
    groups[cat.alerting.platform_team] = cat.alerting.platform_feishu_group
    with pytest.raises(TargetError) as e:
        targets(cat, tmp_path)
    for team in groups:
        assert f"{tmp_path / f'feishu-{team}.url'}: missing" in str(e.value)
    for team in groups:
        (tmp_path / f"feishu-{team}.url").write_text(f"https://open.feishu.cn/open-apis/bot/v2/hook/{team}\n")
    (tmp_path / f"feishu-{next(iter(groups))}.secret").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(TargetError, match=r"\.secret: byte 0: not UTF-8 text"):
        targets(cat, tmp_path)
    (tmp_path / f"feishu-{next(iter(groups))}.secret").write_text("k")
    found = targets(cat, tmp_path)
    assert {t: found[t].group for t in found} == groups
    assert found[next(iter(groups))].secret == "k"


def test_alertmanager_posts_to_the_relay_for_teams_with_a_feishu_group_only():
    cat = load_catalog(ROOT / "fleet.yaml")
    config = alertmanager_config(cat)
    hooks = {r["name"]: r.get("webhook_configs") for r in config["receivers"]}
    base = cat.alerting.relay_url.rstrip("/")
    for t in cat.teams:
        if t.feishu_group:
            (wh,) = hooks[f"{t.name}-chat"]
            assert wh["url"] == f"{base}/feishu/{t.name}" and wh["send_resolved"] is True
            assert wh["http_config"]["authorization"]["credentials_file"].endswith("/relay-token")
        else:
            assert hooks[f"{t.name}-chat"] is None, t.name
    slack = next(r for r in config["receivers"] if r["name"] == "sre-chat")["slack_configs"][0]
    assert "{{ .Annotations.dashboard_url }}" in slack["text"]
