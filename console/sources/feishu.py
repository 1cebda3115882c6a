"""A Feishu/Lark custom bot (group webhook) over httpx: a signed message, retried with backoff.

The bot checks `sign`: HMAC-SHA256 keyed by "<timestamp>\\n<secret>" over an empty message, base64, with the
timestamp in seconds (Feishu rejects one more than an hour off). Feishu answers HTTP 200 with a non-zero
`code` for a refused message (a bad signature, a rate limit): that is a failure too, not a delivery.

A `file://` URL appends the signed body to that file instead (one JSON object a line): the demo's and a
staging relay's sink, where a notification can be read without a Feishu tenant.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx

from console.atomic import append_line

# Feishu's codes for a message it may accept later: rate limited (9499 "too many request", 11232 frequency).
RETRYABLE_CODES = frozenset({9499, 11232})


class FeishuError(Exception):
    def __init__(self, message: str, retryable: bool):
        super().__init__(message)
        self.retryable = retryable


def sign(timestamp: int, secret: str) -> str:
    key = f"{timestamp}\n{secret}".encode()
    return base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()


def signed_body(message: dict[str, Any], secret: str, now: float) -> dict[str, Any]:
    """The message with `timestamp` and `sign` added (unchanged without a secret: an unsigned bot)."""
    if not secret:
        return dict(message)
    ts = int(now)
    return {"timestamp": str(ts), "sign": sign(ts, secret), **message}


@dataclass(frozen=True)
class Delivery:
    attempts: int
    answer: str  # what the bot said, for the log


class FeishuBot:
    def __init__(
        self,
        url: str,
        secret: str = "",
        *,
        timeout_s: float = 10.0,
        tries: int = 4,
        backoff_s: float = 1.0,
        clock: Callable[[], float] = time.time,
        transport: httpx.BaseTransport | None = None,
    ):
        self.url, self.secret, self.clock = url, secret, clock
        self.tries, self.backoff_s = max(1, tries), backoff_s
        self._http = httpx.Client(timeout=timeout_s, transport=transport)

    def close(self) -> None:
        self._http.close()

    def send(self, message: dict[str, Any]) -> Delivery:
        """Post `message` (msg_type and its content), signed afresh on every try; raises FeishuError after the
        last try, or at once for an answer no retry can change (a bad signature, a 4xx)."""
        last = ""
        for attempt in range(1, self.tries + 1):
            if attempt > 1:
                time.sleep(self.backoff_s * 2 ** (attempt - 2))
            try:
                return Delivery(attempt, self._post(signed_body(message, self.secret, self.clock())))
            except FeishuError as e:
                last = str(e)
                if not e.retryable:
                    raise FeishuError(f"{last} (attempt {attempt}; not retried)", False) from None
        raise FeishuError(f"{last} (gave up after {self.tries} attempts)", True)

    def _post(self, body: dict[str, Any]) -> str:
        if self.url.startswith("file://"):
            return _append(Path(unquote(urlsplit(self.url).path)), body)
        try:
            r = self._http.post(self.url, json=body)
        except httpx.TransportError as e:
            raise FeishuError(f"no answer from the bot: {type(e).__name__}: {e}", True) from None
        if r.status_code >= 300:
            raise FeishuError(f"HTTP {r.status_code}: {r.text[:200]}", r.status_code >= 500 or r.status_code == 429)
        try:
            answer = r.json()
        except ValueError:
            raise FeishuError(f"HTTP {r.status_code} with no JSON: {r.text[:200]}", True) from None
        code = answer.get("code", answer.get("StatusCode", 0)) if isinstance(answer, dict) else None
        if code != 0:
            msg = answer.get("msg", answer.get("StatusMessage", "")) if isinstance(answer, dict) else answer
            raise FeishuError(f"refused: code {code}: {msg}", code in RETRYABLE_CODES)
        return "ok"


def _append(path: Path, body: dict[str, Any]) -> str:
    try:
        append_line(path, body)
    except OSError as e:
        raise FeishuError(f"cannot write the sink {path}: {e.strerror}", True) from None
    return f"written to {path}"
