"""Alertmanager's webhook body (version 4), read strictly: the relay's one input from outside."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

MAX_BODY = 4 * 1024 * 1024  # a group of a thousand alerts is far under this; anything bigger is refused


class WebhookAlert(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    status: str
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    startsAt: str = ""
    endsAt: str = ""
    generatorURL: str = ""
    fingerprint: str = ""


class Webhook(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    version: str = "4"
    status: str
    receiver: str = ""
    groupKey: str = ""
    truncatedAlerts: int = 0
    groupLabels: dict[str, str] = Field(default_factory=dict)
    commonLabels: dict[str, str] = Field(default_factory=dict)
    commonAnnotations: dict[str, str] = Field(default_factory=dict)
    externalURL: str = ""
    alerts: list[WebhookAlert]


class PayloadError(ValueError):
    pass


def parse(body: bytes) -> Webhook:
    """The body as a Webhook; PayloadError says which field is wrong, as Alertmanager's log would want."""
    import json

    if len(body) > MAX_BODY:
        raise PayloadError(f"body of {len(body)} bytes is over {MAX_BODY}")
    try:
        doc: Any = json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise PayloadError(f"not JSON: {e}") from None
    try:
        return Webhook.model_validate(doc)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(body)"
        raise PayloadError(f"{where}: {first['msg']}") from None
