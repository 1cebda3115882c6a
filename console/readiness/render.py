"""A readiness report as a text table, JSON or Markdown."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from console.readiness.assess import Readiness, Row
from console.readiness.demand import Demand
from console.timefmt import countdown


def when(r: Readiness) -> str:
    """Where the event stands: `starts in 35d 14:51:37`, `live now`, `ended`."""
    return {"upcoming": f"starts in {countdown(r.countdown)}", "live": "live now", "ended": "ended"}[r.status]


def why(row: Row) -> str:
    """The row's reason, and what its forecast rests on when that is thin (short history, no model)."""
    note = row.demand.note if row.demand else ""
    return f"{row.reason} ({note})" if note else row.reason


def headline(r: Readiness) -> str:
    e = r.event
    return (
        f"{e.title} ({e.name}): {r.verdict} — {when(r)}; {e.start:%Y-%m-%d %H:%M} to {e.end:%Y-%m-%d %H:%M} UTC, "
        f"x{e.multiplier:g} traffic, {e.buffer:.0%} buffer"
    )


def uplift(d: Demand) -> str:
    """The uplift the row is sized on: `x2.94` learned, or `x3 prior` (the catalog's)."""
    return f"x{d.uplift.factor:.2f}" if d.uplift else f"x{d.prior:g} prior"


def uplift_summary(r: Readiness) -> str:
    """One line on where the rows' uplift comes from: the past event it was learned from, and its range."""
    learned = [x.demand.uplift for x in r.rows if x.demand and x.demand.uplift]
    if not learned:
        return ""
    names = sorted({u.event for u in learned})
    lo, hi = min(u.factor for u in learned), max(u.factor for u in learned)
    rest = sum(1 for x in r.rows if x.demand and not x.demand.uplift)
    return (f"uplift learned from {', '.join(names)}: x{lo:.2f}" + (f" to x{hi:.2f}" if hi - lo >= 0.005 else "")
            + f" over {len(learned)} rows (the catalog's prior x{r.event.multiplier:g})"
            + (f"; {rest} rows on the prior" if rest else ""))  # fmt: skip


COLUMNS = ("service", "region", "verdict", "P95 peak", "cover", "ready", "need", "required", "gap repl", "gap GPUs")


def cover(d: Demand) -> str:
    """The P95's coverage on the service's own history: `92%` of its past windows, `-` when not back-tested."""
    return "-" if d.coverage is None else f"{100 * d.coverage:.0f}%"


def row_cells(row: Row) -> tuple[str, ...]:
    s, d = row.sizing, row.demand
    if s is None or d is None:
        return (row.service, row.region, str(row.verdict), "-", "-", "-", "-", "-", "-", "-")
    return (
        row.service,
        row.region,
        str(row.verdict),
        f"{d.peak_rps:.1f}",
        cover(d),
        str(s.current_replicas),
        str(s.needed_replicas),
        str(s.required_replicas),
        str(s.gap_replicas) if s.gap_replicas else "",
        f"{s.gap_gpus:g}" if s.gap_gpus else "",
    )


def text_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()  # noqa: E731
    return [line(header), *(line(r) for r in rows)]


def render_table(r: Readiness) -> str:
    out = [headline(r), *r.notes, *filter(None, [uplift_summary(r)])]
    if r.rows:
        out += ["", *text_table(COLUMNS, [row_cells(x) for x in r.rows])]
        out += ["", "why:", *(f"  {x.service} {x.region}: {why(x)}" for x in r.rows)]
    if r.checklist:
        out += ["", "checklist:"]
        out += [f"  [{'ok' if i.ok else 'FAIL'}] {i.name}: {i.reason}" for i in r.checklist]
    if r.actions:
        out += ["", "actions:"]
        out += [f"  {a.command()}\n      {a.why}" for a in r.actions]
    return "\n".join(out)


def as_dict(r: Readiness) -> dict[str, Any]:
    e = r.event
    return {
        "event": e.name,
        "title": e.title,
        "start": e.start.isoformat(),
        "end": e.end.isoformat(),
        "now": r.now.isoformat(),
        "status": r.status,
        "countdown_s": r.countdown.total_seconds(),
        "verdict": r.verdict,
        "multiplier": e.multiplier,
        "buffer": e.buffer,
        "notes": list(r.notes),
        "services": [
            {
                "service": x.service,
                "region": x.region,
                "verdict": str(x.verdict),
                "reason": x.reason,
                "forecast": None
                if x.demand is None
                else {
                    "method": x.demand.method,
                    "peak_rps": x.demand.peak_rps,
                    "point_rps": x.demand.point_rps,
                    "coverage": x.demand.coverage,
                    "backtest_windows": x.demand.checked,
                    "baselines_p95_rps": x.demand.baselines,
                    "history_points": x.demand.history_points,
                    "note": x.demand.note,
                    "uplift": None
                    if x.demand.uplift is None
                    else {
                        "learned_from": x.demand.uplift.event,
                        "factor": x.demand.uplift.factor,
                        "usual_peak_rps": x.demand.uplift.usual_rps,
                        "plain_days": x.demand.uplift.days,
                    },
                    "prior": x.demand.prior,
                },
                "sizing": None
                if x.sizing is None
                else {
                    "gpu_seconds_per_request": x.sizing.cost.gpu_seconds,
                    "cost_basis": x.sizing.cost.basis,
                    "replica_rps": x.sizing.replica_rps,
                    "gpus_per_replica": x.sizing.gpus_per_replica,
                    "current_replicas": x.sizing.current_replicas,
                    "needed_replicas": x.sizing.needed_replicas,
                    "needed_gpus": x.sizing.needed_gpus,
                    "required_replicas": x.sizing.required_replicas,
                    "required_gpus": x.sizing.required_gpus,
                    "gap_replicas": x.sizing.gap_replicas,
                    "gap_gpus": x.sizing.gap_gpus,
                    "fillable": x.sizing.fillable,
                    "from_batch_gpus": x.batch_gpus,
                },
            }
            for x in r.rows
        ],
        "checklist": [{"item": i.name, "ok": i.ok, "reason": i.reason} for i in r.checklist],
        "actions": [
            {"runbook": a.runbook, "params": a.params, "why": a.why, "command": a.command()} for a in r.actions
        ],
    }


def render_json(r: Readiness) -> str:
    return json.dumps(as_dict(r), indent=1)


def render_markdown(r: Readiness) -> str:
    out = [f"# Readiness: {r.event.title}", "", f"**{headline(r)}**", "", *r.notes, *filter(None, [uplift_summary(r)])]
    if r.rows:
        cells = [row_cells(x) for x in r.rows]
        out += ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
        out += ["| " + " | ".join(c or " " for c in row) + " |" for row in cells]
    if r.checklist:
        out += ["", "## Checklist", ""]
        out += [f"- [{'x' if i.ok else ' '}] **{i.name}**: {i.reason}" for i in r.checklist]
    if r.actions:
        out += ["", "## Actions", ""]
        out += [f"- `{a.command()}` — {a.why}" for a in r.actions]
    return "\n".join(out) + "\n"
