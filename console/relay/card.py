"""One Feishu/Lark interactive card for one Alertmanager group: what an on-call reads on a phone.

Header: state, count, alert name and the group's labels, coloured by the gravest severity (green once
resolved). Body: each alert's summary and where (at most `SHOWN`; the rest counted). Buttons: the runbook,
the dashboard panel, a silence pre-filled with the group's labels, and the alert in Alertmanager.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from console.relay.payload import Webhook, WebhookAlert

SHOWN = 8  # alerts listed in one card: a phone screen; the count says how many more
# Feishu card header templates by severity.
COLOUR = {"critical": "red", "warning": "orange", "info": "blue", "none": "grey"}
RANK = ("critical", "warning", "info", "none")
WHERE = ("service", "region", "namespace", "node", "Hostname", "gpu", "pool", "team")


def gravest(alerts: list[WebhookAlert]) -> str:
    sevs = {a.labels.get("severity", "") for a in alerts}
    return next((s for s in RANK if s in sevs), "info")


def title(hook: Webhook) -> str:
    firing = [a for a in hook.alerts if a.status == "firing"]
    state = f"FIRING:{len(firing)}" if firing else "RESOLVED"
    name = hook.groupLabels.get("alertname") or hook.commonLabels.get("alertname", "alerts")
    rest = [v for k, v in sorted(hook.groupLabels.items()) if k != "alertname" and v]
    return f"[{state}] {name}" + (f" · {' · '.join(rest)}" if rest else "")


def silence_url(hook: Webhook) -> str:
    """Alertmanager's new-silence form with the group's labels as its matchers (the UI's own link shape)."""
    labels = hook.groupLabels or {"alertname": hook.commonLabels.get("alertname", "")}
    matchers = ", ".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items()))
    return f"{hook.externalURL.rstrip('/')}/#/silences/new?filter={quote('{' + matchers + '}', safe='')}"


def alerts_url(hook: Webhook) -> str:
    labels = hook.groupLabels or {"alertname": hook.commonLabels.get("alertname", "")}
    matchers = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items()))
    return f"{hook.externalURL.rstrip('/')}/#/alerts?filter={quote('{' + matchers + '}', safe='')}"


def _escape(v: str) -> str:
    return v.replace("\\", "\\\\").replace('"', '\\"')


def _line(a: WebhookAlert) -> str:
    where = ", ".join(f"{k}={a.labels[k]}" for k in WHERE if a.labels.get(k))
    summary = a.annotations.get("summary") or a.annotations.get("description") or a.labels.get("alertname", "")
    mark = "✅" if a.status == "resolved" else "🔴" if a.labels.get("severity") == "critical" else "🟠"
    since = a.startsAt[:16].replace("T", " ") + " UTC" if a.startsAt else ""
    return f"{mark} **{_md(summary)}**\n{_md(where)}" + (f" · since {since}" if since else "")


def _md(s: str) -> str:
    """Text safe in lark_md: a label value must not open a link or bold the rest of the card."""
    return s.replace("*", "\\*").replace("[", "\\[").replace("]", "\\]").replace("<", "&lt;")


def _button(text: str, url: str, kind: str = "default") -> dict[str, Any]:
    return {"tag": "button", "text": {"tag": "plain_text", "content": text}, "url": url, "type": kind}


def links(hook: Webhook) -> dict[str, str]:
    """The card's buttons by name: the first runbook and dashboard any alert of the group carries."""

    def first(key: str) -> str:
        return next((a.annotations[key] for a in hook.alerts if a.annotations.get(key)), "")

    out = {"Runbook": first("runbook_url"), "Dashboard": first("dashboard_url")}
    if hook.externalURL:
        out |= {"Silence": silence_url(hook), "Alertmanager": alerts_url(hook)}
    return {k: v for k, v in out.items() if v}


def card(hook: Webhook, group: str = "") -> dict[str, Any]:
    """The message body (without signature): `msg_type` interactive and its card."""
    firing = [a for a in hook.alerts if a.status == "firing"]
    shown = (firing or hook.alerts)[:SHOWN]
    more = len(firing or hook.alerts) - len(shown) + hook.truncatedAlerts
    colour = COLOUR.get(gravest(firing), "blue") if firing else "green"
    body = "\n\n".join(_line(a) for a in shown)
    if more > 0:
        body += f"\n\n… and {more} more"
    elements: list[dict[str, Any]] = [{"tag": "div", "text": {"tag": "lark_md", "content": body}}]
    buttons = [_button(k, v, "primary" if k == "Runbook" else "default") for k, v in links(hook).items()]
    if buttons:
        elements += [{"tag": "hr"}, {"tag": "action", "actions": buttons}]
    note = f"{hook.receiver} → {group}" if group else hook.receiver
    elements.append({"tag": "note", "elements": [{"tag": "plain_text", "content": f"gpuops relay · {note}"}]})
    return {
        "msg_type": "interactive",
        "card": {
            "config": {"wide_screen_mode": True},
            "header": {"template": colour, "title": {"tag": "plain_text", "content": title(hook)}},
            "elements": elements,
        },
    }
