"""The Alertmanager source against a real Alertmanager (API v2): alerts in, silences out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from console.sources.alertmanager import AlertmanagerSource
from tests.e2e.conftest import wait_for


def test_alerts_and_silences_round_trip(stack):
    am = AlertmanagerSource(stack.am_url)
    now = datetime.now(UTC)
    am.post_alerts(
        [
            {
                "labels": {
                    "alertname": "GpuopsE2EQuotaHigh",
                    "severity": "warning",
                    "team": "media-ai",
                    "namespace": "team-media",
                },
                "annotations": {"summary": "quota at 85 %"},
                "startsAt": now.isoformat(),
                "endsAt": (now + timedelta(minutes=5)).isoformat(),
            }
        ]
    )
    alert = wait_for(
        lambda: next((a for a in am.alerts() if a.name == "GpuopsE2EQuotaHigh"), None), what="the alert in Alertmanager"
    )
    assert alert.severity == "warning" and alert.state == "active" and alert.annotations["summary"] == "quota at 85 %"
    sid = am.create_silence(
        {"alertname": "GpuopsE2EQuotaHigh", "team": "media-ai"},
        timedelta(minutes=30),
        created_by="alice",
        comment="e2e",
    )
    silence = next(s for s in am.silences() if s.id == sid)
    assert silence.created_by == "alice" and silence.state == "active"
    assert {m["name"]: m["value"] for m in silence.matchers} == {"alertname": "GpuopsE2EQuotaHigh", "team": "media-ai"}
    wait_for(
        lambda: next(a for a in am.alerts() if a.name == "GpuopsE2EQuotaHigh").state == "suppressed",
        what="the alert to be silenced",
    )
    am.close()
