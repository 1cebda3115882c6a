"""A drill's report, computed from its journal records alone: a timeline in simulated time from the first
fault, time to detect (first fault -> the detecting alert firing), time to mitigate (first fault -> the
steady state holding again), pass or fail against the targets, and what the operator did."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Line:
    offset_s: float | None  # simulated seconds from the first fault (None before it)
    sim: datetime
    event: str
    text: str


@dataclass
class DrillReport:
    drill: str
    scenario: str
    title: str
    context: str
    speed: float
    operator: str
    started: str  # wall time
    ended: str
    status: str  # passed | failed | running
    reasons: list[str]
    first_fault: datetime | None
    detected: datetime | None
    mitigated: datetime | None
    targets: dict[str, float]
    timeline: list[Line] = field(default_factory=list)
    runbook_runs: list[dict[str, Any]] = field(default_factory=list)
    probes: dict[str, dict[str, int]] = field(default_factory=dict)  # phase -> {checked, violated}

    @property
    def ttd_s(self) -> float | None:
        return _diff(self.detected, self.first_fault)

    @property
    def ttm_s(self) -> float | None:
        return _diff(self.mitigated, self.first_fault)

    @property
    def wall_s(self) -> float | None:
        if not self.ended:
            return None
        return (datetime.fromisoformat(self.ended) - datetime.fromisoformat(self.started)).total_seconds()


def _diff(a: datetime | None, b: datetime | None) -> float | None:
    return (a - b).total_seconds() if a and b else None


def drills(records: list[dict[str, Any]]) -> list[str]:
    """Drill ids in the journal, oldest first."""
    return list(dict.fromkeys(r["run"] for r in records if r["event"] == "drill_start"))


def last_by_scenario(records: list[dict[str, Any]]) -> dict[str, DrillReport]:
    """Each scenario's latest drill in the journal."""
    out = {}
    for d in drills(records):
        rep = build_report(records, d)
        if rep:
            out[rep.scenario] = rep
    return out


def _first(recs: list[dict[str, Any]], event: str) -> dict[str, Any] | None:
    return next((r for r in recs if r["event"] == event), None)


def _sim_of(rec: dict[str, Any] | None) -> datetime | None:
    return datetime.fromisoformat(rec["sim"]) if rec else None


def build_report(records: list[dict[str, Any]], drill: str) -> DrillReport | None:
    recs = [r for r in records if r["run"] == drill]
    start = _first(recs, "drill_start")
    if start is None:
        return None
    end = _first(recs, "drill_end") or {}
    faults = [datetime.fromisoformat(r["sim"]) for r in recs if r["event"] == "fault_start"]
    first = min(faults) if faults else None
    detect = next((r for r in recs if r["event"] == "alert_firing" and r.get("detects")), None)
    rep = DrillReport(
        drill,
        start["scenario"],
        start.get("title", ""),
        start.get("context", ""),
        float(start.get("speed", 1)),
        start.get("operator", ""),
        start.get("wall", start["time"]),
        end.get("wall", ""),
        end.get("status", "running"),
        list(end.get("reasons", [])),
        first,
        _sim_of(detect),
        _sim_of(_first(recs, "steady_again")),
        start.get("targets", {}),
    )
    for r in recs:
        _add_record(rep, r, first)
    rep.timeline.sort(key=lambda line: line.sim)
    return rep


def _add_record(rep: DrillReport, r: dict[str, Any], first: datetime | None) -> None:
    sim = datetime.fromisoformat(r["sim"])
    if r["event"] == "probe":
        p = rep.probes.setdefault(r["phase"], {"checked": 0, "violated": 0})
        p["checked"] += 1
        p["violated"] += 0 if r["holds"] else 1
        # Every probe is in the journal; the timeline shows those whose verdict changed.
        if not r["changed"]:
            return
    if r["event"] in ("runbook_start", "runbook_end"):
        rep.runbook_runs.append(r)
    rep.timeline.append(Line(_diff(sim, first) if first else None, sim, r["event"], r.get("text", "")))


def mmss(s: float | None) -> str:
    if s is None:
        return "—"
    s = round(s)
    sign = "-" if s < 0 else ""
    s = abs(s)
    return (
        f"{sign}{int(s // 3600)}:{int(s % 3600 // 60):02d}:{int(s % 60):02d}"
        if s >= 3600
        else (f"{sign}{int(s // 60)}:{int(s % 60):02d}")
    )


def _verdict(value: float | None, target: float | None) -> str:
    if value is None:
        return "FAIL (never)"
    if target is None:
        return ""
    return "pass" if value <= target else "FAIL"


def summary_rows(rep: DrillReport) -> list[tuple[str, str, str, str]]:
    """(measure, value, target, verdict) in simulated time."""
    td, tm = rep.targets.get("detect_s"), rep.targets.get("mitigate_s")
    return [
        ("time to detect", mmss(rep.ttd_s), mmss(td), _verdict(rep.ttd_s, td)),
        ("time to mitigate", mmss(rep.ttm_s), mmss(tm), _verdict(rep.ttm_s, tm)),
    ]


def _operator_lines(rep: DrillReport) -> list[str]:
    out = []
    for r in rep.runbook_runs:
        if r["event"] == "runbook_start":
            out.append(f"started {r['runbook']} ({r.get('by', '')}), run {r.get('run_id', '')}")
        else:
            out.append(f"{r['runbook']}: {r.get('status', '')}" + (f" — {r['detail']}" if r.get("detail") else ""))
    return out


def render_markdown(rep: DrillReport) -> str:
    wall = f"{rep.wall_s:.0f} s" if rep.wall_s is not None else "running"
    out = [
        f"# Drill {rep.drill}: {rep.status.upper()}",
        "",
        f"**{rep.title}** (`{rep.scenario}`) on `{rep.context}` at {rep.speed:g}x, by {rep.operator}.",
        f"Started {rep.started} (wall), took {wall} of wall time. Times below are simulated, from the first fault.",
        "",
        "| measure | value | target | verdict |",
        "|---|---|---|---|",
        *(f"| {m} | {v} | {t} | {d} |" for m, v, t, d in summary_rows(rep)),
        "",
    ]
    if rep.reasons:
        out += ["## Why it failed", "", *(f"- {r}" for r in rep.reasons), ""]
    out += ["## What the operator did", "", *(f"- {x}" for x in _operator_lines(rep) or ["nothing"]), ""]
    out += ["## Steady-state probes", "", "| phase | readings | violated |", "|---|---|---|"]
    out += [f"| {ph} | {p['checked']} | {p['violated']} |" for ph, p in rep.probes.items()]
    out += ["", "## Timeline", "", "| T+ (sim) | sim time | event | detail |", "|---|---|---|---|"]
    for line in rep.timeline:
        t = mmss(line.offset_s) if line.offset_s is not None else ""
        out.append(f"| {t} | {line.sim:%Y-%m-%d %H:%M:%S} | {line.event} | {line.text.replace('|', '/')} |")
    return "\n".join(out) + "\n"


def render_html(rep: DrillReport) -> str:
    e = html.escape
    rows = "".join(
        f"<tr><td>{e(m)}</td><td>{e(v)}</td><td>{e(t)}</td>"
        f"<td class='{'ok' if d == 'pass' else 'bad'}'>{e(d)}</td></tr>"
        for m, v, t, d in summary_rows(rep)
    )
    timeline = "".join(
        f"<tr class='{e(line.event)}'><td>{e(mmss(line.offset_s) if line.offset_s is not None else '')}</td>"
        f"<td>{line.sim:%H:%M:%S}</td><td>{e(line.event)}</td><td>{e(line.text)}</td></tr>"
        for line in rep.timeline
    )
    reasons = "".join(f"<li>{e(r)}</li>" for r in rep.reasons)
    ops = "".join(f"<li>{e(x)}</li>" for x in _operator_lines(rep)) or "<li>nothing</li>"
    wall = f"{rep.wall_s:.0f} s" if rep.wall_s is not None else "running"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Drill {e(rep.drill)}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;max-width:70em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:.2em .6em;text-align:left}}.ok{{color:#1a7f37}}.bad{{color:#cf222e}}
tr.fault_start td,tr.abort td{{background:#fff0f0}}tr.steady_again td{{background:#effff0}}</style></head>
<body><h1>Drill {e(rep.drill)}:
<span class="{"ok" if rep.status == "passed" else "bad"}">{e(rep.status.upper())}</span></h1>
<p><b>{e(rep.title)}</b> (<code>{e(rep.scenario)}</code>) on <code>{e(rep.context)}</code> at {rep.speed:g}x,
by {e(rep.operator)}. Started {e(rep.started)} (wall), took {e(wall)} of wall time.
Times are simulated, from the first fault.</p>
<table><tr><th>measure</th><th>value</th><th>target</th><th>verdict</th></tr>{rows}</table>
{f"<h2>Why it failed</h2><ul>{reasons}</ul>" if reasons else ""}
<h2>What the operator did</h2><ul>{ops}</ul>
<h2>Timeline</h2><table><tr><th>T+ (sim)</th><th>sim time</th><th>event</th><th>detail</th></tr>{timeline}</table>
</body></html>
"""


def render_index(reports: list[DrillReport], fmt: str) -> str:
    """Every drill in the journal, one row each: as text (the default), a Markdown table or an HTML page."""
    rows = [(r.drill, r.scenario, r.status, mmss(r.ttd_s), mmss(r.ttm_s), r.context) for r in reports]
    if fmt == "markdown":
        head = "| drill | scenario | status | detect | mitigate | context |\n|---|---|---|---|---|---|\n"
        return head + "".join("| " + " | ".join(row) + " |\n" for row in rows)
    if fmt == "html":
        e = html.escape
        cells = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in rows)
        heads = "".join(f"<th>{h}</th>" for h in ("drill", "scenario", "status", "detect", "mitigate", "context"))
        return (
            '<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>Drills</title></head>'
            f"<body><h1>Drills</h1><table><tr>{heads}</tr>{cells}</table></body></html>\n"
        )
    return "".join(f"{d}  {s:<7}  detect {ttd:>6}  mitigate {ttm:>6}\n" for d, _, s, ttd, ttm, _ in rows)
