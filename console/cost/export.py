"""A cost report grouped `--by` a dimension, as a table, CSV, JSON, or FinOps FOCUS rows.

Every format adds up to the same totals: the rows are one per pod (and per pool's idle GPUs), and grouping
only sums them.
"""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from console.cost.attribution import Allocation

DIMENSIONS = ("team", "namespace", "service", "region", "pool", "model", "pod")
# FinOps FOCUS 1.0 columns this export writes, with their types. The provider is the platform team: it
# charges each team (a sub-account, billed to its cost centre) for GPUs.
FOCUS_COLUMNS = {
    "BillingAccountId": "string",
    "BillingAccountName": "string",
    "BilledCost": "decimal",
    "EffectiveCost": "decimal",
    "ListCost": "decimal",
    "ListUnitPrice": "decimal",
    "ContractedCost": "decimal",
    "ContractedUnitPrice": "decimal",
    "BillingCurrency": "string",
    "ChargePeriodStart": "datetime",
    "ChargePeriodEnd": "datetime",
    "BillingPeriodStart": "datetime",
    "BillingPeriodEnd": "datetime",
    "ChargeCategory": "string",
    "ChargeClass": "string",
    "ChargeDescription": "string",
    "ChargeFrequency": "string",
    "ConsumedQuantity": "decimal",
    "ConsumedUnit": "string",
    "PricingQuantity": "decimal",
    "PricingUnit": "string",
    "ProviderName": "string",
    "PublisherName": "string",
    "InvoiceIssuerName": "string",
    "ResourceId": "string",
    "ResourceName": "string",
    "ResourceType": "string",
    "ServiceName": "string",
    "ServiceCategory": "string",
    "RegionId": "string",
    "RegionName": "string",
    "SubAccountId": "string",
    "SubAccountName": "string",
    "Tags": "json",
}


@dataclass(frozen=True)
class Report:
    start: datetime
    end: datetime
    currency: str
    rows: tuple[Allocation, ...]
    step_s: float  # the fleet seconds one reading stands for (the report's resolution)
    measured_from: datetime | None = None  # where Prometheus' history of the period starts, when after `start`

    @property
    def hours(self) -> float:
        return (self.end - self.start).total_seconds() / 3600


@dataclass(frozen=True)
class Line:
    key: str
    gpu_hours: float
    busy_gpu_hours: float | None
    list_cost: float
    effective_cost: float
    billed_cost: float

    @property
    def efficiency(self) -> float | None:
        return self.busy_gpu_hours / self.gpu_hours if self.busy_gpu_hours is not None and self.gpu_hours else None

    @property
    def price(self) -> float:
        """The effective price of one GPU-hour here (tier, package and jobs included)."""
        return self.effective_cost / self.gpu_hours if self.gpu_hours else 0.0


def _key(r: Allocation, by: str) -> str:
    if by == "service":
        return r.service or ("__idle__" if r.idle else f"job/{r.job}" if r.job else "(none)")
    if by == "pod":
        return f"__idle__/{r.pool}/{r.region}" if r.idle else r.pod
    return getattr(r, by) or "(none)"


def group(rows: tuple[Allocation, ...] | list[Allocation], by: str) -> list[Line]:
    """Lines by `by`, largest effective cost first."""
    if by not in DIMENSIONS:
        raise ValueError(f"--by {by!r}: one of {', '.join(DIMENSIONS)}")
    acc: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    for r in rows:
        a = acc[_key(r, by)]
        a[0] += r.gpu_hours
        if r.busy_gpu_hours is not None:
            a[1] += r.busy_gpu_hours
            a[2] += r.gpu_hours
        a[3] += r.list_cost
        a[4] += r.effective_cost
        a[5] += r.billed_cost
    lines = [Line(k, a[0], a[1] * a[0] / a[2] if a[2] else None, a[3], a[4], a[5]) for k, a in acc.items()]
    return sorted(lines, key=lambda ln: (-ln.effective_cost, ln.key))


def _eff(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.0f}%"


def table(report: Report, by: str) -> str:
    lines = group(report.rows, by)
    head = (
        f"GPU cost {report.start:%Y-%m-%d %H:%M} to {report.end:%Y-%m-%d %H:%M} UTC ({report.hours:.1f} h),"
        f" by {by}, {report.currency}"
    )
    if report.measured_from:
        head += f"\nPrometheus' history starts {report.measured_from:%Y-%m-%d %H:%M:%S} UTC: nothing before it counts"
    width = max([len(by), 5, *(len(ln.key) for ln in lines)])
    out = [
        head,
        f"{by.upper():<{width}}  {'GPU-HOURS':>10}  {'EFFIC.':>6}  {'LIST':>11}  {'EFFECTIVE':>11}  {'PER GPU-H':>9}",
    ]
    for ln in lines:
        cells = f"{ln.gpu_hours:>10.2f}  {_eff(ln.efficiency):>6}  {ln.list_cost:>11.2f}  {ln.effective_cost:>11.2f}"
        out.append(f"{ln.key:<{width}}  {cells}  {ln.price:>9.3f}")
    t = totals(report.rows)
    out.append(
        f"{'TOTAL':<{width}}  {t['gpu_hours']:>10.2f}  {'':>6}  {t['list_cost']:>11.2f}  {t['effective_cost']:>11.2f}"
    )
    return "\n".join(out)


def totals(rows: tuple[Allocation, ...] | list[Allocation]) -> dict[str, float]:
    return {
        "gpu_hours": sum(r.gpu_hours for r in rows),
        "list_cost": sum(r.list_cost for r in rows),
        "effective_cost": sum(r.effective_cost for r in rows),
        "billed_cost": sum(r.billed_cost for r in rows),
    }


def to_csv(report: Report, by: str) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([by, "gpu_hours", "efficiency", "list_cost", "effective_cost", "billed_cost", "price_per_gpu_hour",
                "currency"])  # fmt: skip
    for ln in group(report.rows, by):
        eff = "" if ln.efficiency is None else f"{ln.efficiency:.4f}"
        w.writerow([ln.key, f"{ln.gpu_hours:.6f}", eff, f"{ln.list_cost:.6f}", f"{ln.effective_cost:.6f}",
                    f"{ln.billed_cost:.6f}", f"{ln.price:.6f}", report.currency])  # fmt: skip
    return buf.getvalue()


def to_json(report: Report, by: str) -> str:
    doc = {
        "start": report.start.isoformat(),
        "end": report.end.isoformat(),
        "currency": report.currency,
        "by": by,
        "resolution_s": report.step_s,
        "measured_from": report.measured_from.isoformat() if report.measured_from else None,
        "lines": [
            {
                by: ln.key,
                "gpu_hours": ln.gpu_hours,
                "efficiency": ln.efficiency,
                "list_cost": ln.list_cost,
                "effective_cost": ln.effective_cost,
                "billed_cost": ln.billed_cost,
                "price_per_gpu_hour": ln.price,
            }
            for ln in group(report.rows, by)
        ],
        "totals": totals(report.rows),
    }
    return json.dumps(doc, indent=2)


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def to_focus(
    report: Report,
    billing_start: datetime,
    billing_end: datetime,
    cost_centres: dict[str, str] | None = None,
    region_names: dict[str, str] | None = None,
) -> str:
    """FOCUS rows as CSV: one per pod (and per pool's idle GPUs), the charge period the report's;
    `cost_centres` by team (the billing account), `region_names` by region id (the catalog's titles)."""
    centres, regions = cost_centres or {}, region_names or {}
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(FOCUS_COLUMNS), lineterminator="\n")
    w.writeheader()
    for r in report.rows:
        resource = f"{r.namespace}/{r.pod}" if not r.idle else f"__idle__/{r.pool}/{r.region}/{r.team}"
        tags = {"team": r.team, "namespace": r.namespace, "pool": r.pool, "gpu_model": r.model}
        if r.service:
            tags["service"] = r.service
        if r.job:
            tags["job"] = r.job
        w.writerow(
            {
                "BillingAccountId": centres.get(r.team, r.team),
                "BillingAccountName": r.team,
                "BilledCost": f"{r.billed_cost:.6f}",
                "EffectiveCost": f"{r.effective_cost:.6f}",
                "ListCost": f"{r.list_cost:.6f}",
                "ListUnitPrice": f"{r.list_cost / r.gpu_hours if r.gpu_hours else 0:.6f}",
                # The rate the team's billing mode sets is the contract between the platform and the team.
                "ContractedCost": f"{r.billed_cost:.6f}",
                "ContractedUnitPrice": f"{r.billed_cost / r.gpu_hours if r.gpu_hours else 0:.6f}",
                "BillingCurrency": report.currency,
                "ChargePeriodStart": _iso(report.start),
                "ChargePeriodEnd": _iso(report.end),
                "BillingPeriodStart": _iso(billing_start),
                "BillingPeriodEnd": _iso(billing_end),
                "ChargeCategory": "Usage",
                "ChargeClass": "",  # null: not a correction of an earlier period
                "ChargeDescription": f"{r.model or 'GPU'} GPU-hours in {r.pool}/{r.region}"
                + (" (idle)" if r.idle else ""),
                "ChargeFrequency": "Usage-Based",
                "ConsumedQuantity": f"{r.gpu_hours:.6f}",
                "ConsumedUnit": "GPU-Hours",
                "PricingQuantity": f"{r.gpu_hours:.6f}",
                "PricingUnit": "GPU-Hours",
                "ProviderName": "gpuops",
                "PublisherName": "gpuops",
                "InvoiceIssuerName": "gpuops",
                "ResourceId": resource,
                "ResourceName": r.pod if not r.idle else f"idle {r.model or 'GPU'} GPUs in {r.pool}/{r.region}",
                "ResourceType": "GPU idle" if r.idle else "GPU allocation",
                "ServiceName": r.service or ("GPU idle" if r.idle else "GPU workload"),
                "ServiceCategory": "AI and Machine Learning",
                "RegionId": r.region,
                "RegionName": regions.get(r.region, r.region),
                "SubAccountId": r.team,
                "SubAccountName": r.team,
                "Tags": json.dumps(tags, sort_keys=True),
            }
        )
    return buf.getvalue()
