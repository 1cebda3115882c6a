"""The relay's HTTP server: `POST /feishu/<team>` from Alertmanager, a card to that team's Feishu group.

A card is sent before the answer, with retries and backoff (`FeishuBot`). One that still fails is written to
the failure log with its whole body (so it can be sent by hand), logged, and answered 502, so Alertmanager
retries the group on its next flush as well: nothing is dropped silently.

With `sink`, `POST /sink/<name>` appends whatever it is sent to that file: where the demo points the other
receivers (Slack, PagerDuty), so every notification of a fleet without a chat tenant can still be read.

`GET /notifications` lists the recent deliveries, `GET /notified` each alert's last delivery by fingerprint
(the console's "feishu:#… 12s ago"), `GET /metrics` counts them for Prometheus, and `/-/ready` and
`/-/healthy` answer as Alertmanager's do.
"""

from __future__ import annotations

import hmac
import json
import sys
import threading
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from console.atomic import append_line
from console.relay.card import card, title
from console.relay.payload import MAX_BODY, PayloadError, parse
from console.relay.targets import Target
from console.sources.feishu import FeishuBot, FeishuError

KEEP = 500  # deliveries `/notifications` remembers
KEEP_ALERTS = 5000  # alerts `/notified` remembers the last delivery of


@dataclass(frozen=True)
class Notification:
    at: str  # ISO 8601 UTC
    team: str
    channel: str
    status: str  # the group's: firing | resolved
    delivered: bool
    attempts: int
    alerts: list[dict[str, str]]  # fingerprint, alertname, status
    error: str = ""


class Relay:
    """What the server does, apart from HTTP: deliver one group, remember it, count it."""

    def __init__(
        self,
        targets: dict[str, Target],
        *,
        failures: Path | None = None,
        sink: Path | None = None,
        bot: Callable[[Target], FeishuBot] | None = None,
        log: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True),
    ):
        self.targets, self.failures, self.sink, self.log = targets, failures, sink, log
        self._bot = bot or (lambda t: FeishuBot(t.url, t.secret))
        self._bots: dict[str, FeishuBot] = {}
        self._lock = threading.Lock()
        self.recent: deque[Notification] = deque(maxlen=KEEP)
        # Each alert's last delivery, kept as deliveries come: what the console reads on every refresh.
        self.latest: OrderedDict[str, dict[str, str]] = OrderedDict()
        self.counts: Counter[tuple[str, str]] = Counter()
        self.last_success: dict[str, float] = {}

    def close(self) -> None:
        for b in self._bots.values():
            b.close()

    def deliver(self, team: str, body: bytes) -> tuple[int, str]:
        """(HTTP status, message) for Alertmanager."""
        target = self.targets.get(team)
        if target is None:
            self.log(f"relay: refused a group for team {team!r}: no Feishu group configured for it")
            return 404, f"no Feishu group for team {team!r}"
        try:
            hook = parse(body)
        except PayloadError as e:
            self.log(f"relay: refused a body for {team}: {e}")
            return 400, str(e)
        message, heading = card(hook, target.group), title(hook)
        alerts = [
            {"fingerprint": a.fingerprint, "alertname": a.labels.get("alertname", ""), "status": a.status}
            for a in hook.alerts
        ]
        with self._lock:
            bot = self._bots.get(team) or self._bots.setdefault(team, self._bot(target))
        try:
            sent = bot.send(message)
        except FeishuError as e:
            self._record(Notification(_now(), team, target.channel, hook.status, False, bot.tries, alerts, str(e)))
            self._keep_failed(team, target, message, str(e))
            self.log(f"relay: UNDELIVERED {heading} to {target.channel}: {e}")
            return 502, f"not delivered to {target.channel}: {e}"
        self._record(Notification(_now(), team, target.channel, hook.status, True, sent.attempts, alerts))
        self.log(f"relay: sent {heading} to {target.channel} ({sent.answer})")
        return 200, f"delivered to {target.channel}"

    def _record(self, n: Notification) -> None:
        with self._lock:
            self.recent.append(n)
            self.counts[(n.team, "delivered" if n.delivered else "failed")] += 1
            if n.delivered:
                self.last_success[n.team] = time.time()
                for a in n.alerts:
                    if a["fingerprint"]:
                        self.latest[a["fingerprint"]] = {"channel": n.channel, "at": n.at, "status": a["status"]}
                        self.latest.move_to_end(a["fingerprint"])
                while len(self.latest) > KEEP_ALERTS:
                    self.latest.popitem(last=False)

    def take(self, name: str, body: bytes) -> tuple[int, str]:
        """`POST /sink/<name>`: the body, whatever it is, appended to the sink with when and for whom."""
        if self.sink is None:
            return 404, "no sink (gpuops relay --sink FILE)"
        try:
            doc: Any = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            doc = body.decode("utf-8", "replace")
        self._append(self.sink, {"at": _now(), "receiver": name, "body": doc})
        self.log(f"relay: sink took a notification for {name}")
        return 200, "taken"

    def _append(self, path: Path, line: dict[str, Any]) -> None:
        try:
            append_line(path, line)
        except OSError as e:
            self.log(f"relay: cannot write {path}: {e.strerror}")

    def _keep_failed(self, team: str, target: Target, message: dict[str, Any], error: str) -> None:
        if self.failures is None:
            return
        self._append(
            self.failures, {"at": _now(), "team": team, "channel": target.channel, "error": error, "message": message}
        )

    def notifications(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(n) for n in self.recent]

    def notified(self) -> dict[str, dict[str, str]]:
        with self._lock:
            return dict(self.latest)

    def metrics(self) -> str:
        lines = [
            "# HELP gpuops_relay_notifications_total Alert groups the relay delivered or failed to, by team.",
            "# TYPE gpuops_relay_notifications_total counter",
        ]
        with self._lock:
            for (team, result), n in sorted(self.counts.items()):
                lines.append(f'gpuops_relay_notifications_total{{team="{team}",result="{result}"}} {n}')
            lines += [
                "# HELP gpuops_relay_last_success_timestamp_seconds When a group last reached the team's chat.",
                "# TYPE gpuops_relay_last_success_timestamp_seconds gauge",
            ] + [
                f'gpuops_relay_last_success_timestamp_seconds{{team="{t}"}} {at:.3f}'
                for t, at in sorted(self.last_success.items())
            ]
        return "\n".join(lines) + "\n"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class _Handler(BaseHTTPRequestHandler):
    server: RelayServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the relay logs what it did with each group, not each request

    def _answer(self, code: int, body: str | dict[str, Any] | list[Any], ctype: str = "application/json") -> None:
        data = (body if isinstance(body, str) else json.dumps(body)).encode()
        if isinstance(body, str) and ctype == "application/json":
            data = json.dumps({"message": body}).encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        relay = self.server.relay
        if self.path in ("/-/ready", "/-/healthy"):
            self._answer(200, "OK", "text/plain")
        elif self.path == "/notifications":
            self._answer(200, {"notifications": relay.notifications()})
        elif self.path == "/notified":
            self._answer(200, {"notified": relay.notified()})
        elif self.path == "/metrics":
            self._answer(200, relay.metrics(), "text/plain; version=0.0.4")
        else:
            self._answer(404, f"no such path: {self.path}")

    def do_POST(self) -> None:
        n = int(self.headers.get("Content-Length") or 0)
        if n > MAX_BODY:
            self.close_connection = True  # the body is not read
            self._answer(413, f"body of {n} bytes is over {MAX_BODY}")
            return
        body = self.rfile.read(n) if n else b""
        # The sink takes Slack's and PagerDuty's own posts, which carry no bearer token: it is a local stand-in.
        if not self.path.startswith("/sink/") and not self._authorised():
            self._answer(401, "a bearer token is required (the relay's relay-token file)")
            return
        parts = self.path.strip("/").split("/")
        if len(parts) != 2 or parts[0] not in ("feishu", "sink"):
            self._answer(404, f"no such path: {self.path} (POST /feishu/<team>)")
            return
        relay = self.server.relay
        code, message = relay.deliver(parts[1], body) if parts[0] == "feishu" else relay.take(parts[1], body)
        self._answer(code, message)

    def _authorised(self) -> bool:
        token = self.server.token
        if not token:
            return True
        given = self.headers.get("Authorization", "")
        return hmac.compare_digest(given.encode(), f"Bearer {token}".encode())


class RelayServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, relay: Relay, host: str = "127.0.0.1", port: int = 0, token: str = ""):
        super().__init__((host, port), _Handler)
        self.relay, self.token = relay, token

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return  # a caller that hung up (Alertmanager's timeout, a refused body): nothing to say about it
        super().handle_error(request, client_address)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"
