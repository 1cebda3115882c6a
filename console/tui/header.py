"""The header line: context and its regions, the data's age, firing alerts by severity, the next event."""

from __future__ import annotations

from datetime import datetime

from console.catalog.model import Event, next_event
from console.fleet.snapshot import SEVERITY_ORDER, FleetSnapshot
from console.timefmt import age, countdown
from console.tui.format import SEVERITY_STYLE


def header_markup(
    *,
    context: str,
    regions: list[str],
    snap: FleetSnapshot | None,
    events: list[Event],
    now: datetime,
    readonly: bool,
    compact: bool,
    fleet_now: datetime | None = None,
) -> str:
    """`now` is wall time (the data's age); `fleet_now` the fleet's (the twin's simulated time on a twin),
    which the event countdown reads, as readiness does."""
    fleet_now = fleet_now or now
    parts = [f"[b]gpuops[/b] ctx [b]{context}[/b]" + ("" if compact else f" ({' '.join(regions) or 'all regions'})")]
    if snap is None:
        parts.append("loading…")
    else:
        # Which series the refresh read: the rules' recorded ones, or every GPU's (no rules there).
        how = "" if compact or not snap.reads else f" ({snap.read_as()})"
        parts.append(f"data {age((now - snap.taken_at).total_seconds())} old{how}")
        counts = snap.firing_by_severity()
        shown = [s for s in SEVERITY_ORDER if counts.get(s)] + sorted(set(counts) - set(SEVERITY_ORDER))
        alerts = " ".join(f"[{SEVERITY_STYLE.get(s, 'b')}]{counts[s]} {s[:4] if compact else s}[/]" for s in shown)
        parts.append(f"▲ {alerts}" if alerts else "no alerts firing")
    ev = next_event(events, fleet_now)
    if ev:
        e, live = ev
        left = e.end - fleet_now if live else e.start - fleet_now
        when = f"[b]LIVE[/b] ends in {countdown(left)}" if live else f"in {countdown(left)}"
        parts.append(f"{e.name} {when}")
    if readonly:
        parts.append("[reverse] READ-ONLY [/]")
    return " │ ".join(parts)
