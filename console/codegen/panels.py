"""What a dashboard file (`dashboards/*.py`) builds with: grafanalib panels with this fleet's defaults.

Every panel reads the `$datasource` variable by `{type, uid}`; sizes are given here and the positions are set
by `flow`, left to right in rows of 24 columns. What grafanalib writes in an older shape is corrected once, in
`console/codegen/normalise.py`, not here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import attr
from grafanalib import core as G

from console.fleet.queries import VARIABLE_QUERIES

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
GREEN, ORANGE, RED = "green", "orange", "red"

Thresholds = Sequence[tuple[float | None, str]]  # (from value, colour); the first is None: from -inf


def _steps(thresholds: Thresholds) -> list[G.Threshold]:
    # grafanalib wants a number for the base step too; `normalise` writes it as null, as Grafana does.
    return [G.Threshold(color, i, value=0.0 if v is None else float(v)) for i, (v, color) in enumerate(thresholds)]


def target(expr: str, legend: str = "", ref: str = "A", instant: bool = False, fmt: str = "time_series") -> G.Target:
    return G.Target(expr=expr, legendFormat=legend, refId=ref, instant=instant, format=fmt, datasource=DATASOURCE)


def _targets(queries: Sequence[G.Target | tuple[str, str] | str]) -> list[G.Target]:
    """Targets from `(expr, legend)` pairs or bare expressions, lettered A, B, ..."""
    out = []
    for i, q in enumerate(queries):
        ref = chr(ord("A") + i)
        if isinstance(q, G.Target):
            out.append(attr.evolve(q, refId=ref))
        elif isinstance(q, tuple):
            out.append(target(q[0], q[1], ref))
        else:
            out.append(target(q, "", ref))
    return out


def _grid(w: int, h: int) -> G.GridPos:
    return G.GridPos(h=h, w=w, x=0, y=0)  # x, y set by `flow`


def link(title: str, url: str) -> dict[str, object]:
    """A link as Grafana's schema describes one (a panel's or a dashboard's)."""
    return {
        "title": title,
        "type": "link",
        "url": url,
        "icon": "doc",
        "tooltip": "",
        "tags": [],
        "asDropdown": False,
        "targetBlank": True,
        "includeVars": False,
        "keepTime": False,
    }


def timeseries(
    title: str,
    queries: Sequence[G.Target | tuple[str, str] | str],
    unit: str = "short",
    w: int = 12,
    h: int = 8,
    description: str = "",
    thresholds: Thresholds = (),
    links: Iterable[dict[str, object]] = (),
    stack: bool = False,
    max_value: float | None = None,
) -> G.TimeSeries:
    return G.TimeSeries(
        title=title,
        description=description,
        dataSource=DATASOURCE,
        targets=_targets(queries),
        unit=unit,
        gridPos=_grid(w, h),
        links=list(links),
        legendDisplayMode="table",
        legendPlacement="right" if w >= 12 else "bottom",
        legendCalcs=["lastNotNull", "max"],
        tooltipMode="multi",
        tooltipSort="desc",
        fillOpacity=10,
        stacking={"mode": "normal", "group": "A"} if stack else {"mode": "none", "group": "A"},
        thresholds=_steps(thresholds or [(None, GREEN)]),
        thresholdsStyleMode="dashed" if thresholds else "off",
        valueMax=max_value,
        valueMin=0,
    )


def stat(
    title: str,
    expr: str,
    unit: str = "short",
    w: int = 4,
    h: int = 4,
    description: str = "",
    thresholds: Thresholds = ((None, GREEN),),
    decimals: int | None = None,
) -> G.Stat:
    return G.Stat(
        title=title,
        description=description,
        dataSource=DATASOURCE,
        targets=[target(expr, "", "A", instant=True)],
        format=unit,
        gridPos=_grid(w, h),
        thresholds=_steps(thresholds),
        reduceCalc="lastNotNull",
        graphMode="none",
        decimals=decimals,
    )


def bargauge(
    title: str,
    expr: str,
    legend: str,
    unit: str = "percentunit",
    w: int = 12,
    h: int = 8,
    description: str = "",
    thresholds: Thresholds = ((None, GREEN), (0.8, ORANGE), (0.95, RED)),
    max_value: float | None = 1,
    min_value: float = 0,
    links: Iterable[dict[str, object]] = (),
) -> G.BarGauge:
    return G.BarGauge(
        title=title,
        description=description,
        dataSource=DATASOURCE,
        targets=[target(expr, legend, "A", instant=True)],
        format=unit,
        gridPos=_grid(w, h),
        thresholds=_steps(thresholds),
        displayMode="gradient",
        orientation="horizontal",
        calc="lastNotNull",
        min=min_value,
        max=max_value,
        links=list(links),
    )


def table(
    title: str,
    queries: Sequence[tuple[str, str]],
    w: int = 24,
    h: int = 9,
    description: str = "",
) -> G.Table:
    """One row per series, one column per query (`(expr, column name)`): instant queries merged on their labels.

    Column names carry their units: per-column unit overrides hold strings where Grafana's published schema
    allows objects only, and the dashboards validate against that schema with zero errors."""
    targets = [target(expr, "", chr(ord("A") + i), instant=True, fmt="table") for i, (expr, _) in enumerate(queries)]
    renames = {f"Value #{chr(ord('A') + i)}": name for i, (_, name) in enumerate(queries)}
    return G.Table(
        title=title,
        description=description,
        dataSource=DATASOURCE,
        targets=targets,
        gridPos=_grid(w, h),
        filterable=True,
        transformations=[
            {"id": "merge", "options": {}},
            {"id": "organize", "options": {"excludeByName": {"Time": True}, "renameByName": renames}},
        ],
    )


def heatmap(
    title: str,
    expr: str,
    unit: str,
    buckets: bool,
    w: int = 12,
    h: int = 8,
    description: str = "",
) -> G.Heatmap:
    """`buckets`: the query returns Prometheus histogram buckets (`le`); otherwise Grafana buckets the values."""
    fmt = "heatmap" if buckets else "time_series"
    options = {
        "calculate": not buckets,
        "cellGap": 1,
        "color": {
            "mode": "scheme",
            "scheme": "Oranges",
            "fill": "dark-orange",
            "scale": "exponential",
            "exponent": 0.5,
            "steps": 64,
            "reverse": False,
        },
        "yAxis": {"axisPlacement": "left", "unit": unit, "reverse": False},
        "rowsFrame": {"layout": "auto"},
        "legend": {"show": True},
        "tooltip": {"mode": "single", "yHistogram": True},
        "filterValues": {"le": 1e-9},
    }
    return G.Heatmap(
        title=title,
        description=description,
        dataSource=DATASOURCE,
        targets=[target(expr, "{{le}}" if buckets else "", "A", fmt=fmt)],
        gridPos=_grid(w, h),
        extraJson={"options": options},
    )


def state_timeline(
    title: str,
    expr: str,
    legend: str,
    states: Sequence[tuple[int, str, str]],
    w: int = 12,
    h: int = 8,
    description: str = "",
    thresholds: Thresholds = ((None, GREEN),),
) -> G.StateTimeline:
    """`states`: (value, text, colour) for each value the series take."""
    mapping = {
        "type": "value",
        "options": {str(v): {"text": text, "color": color, "index": i} for i, (v, text, color) in enumerate(states)},
    }
    return G.StateTimeline(
        title=title,
        description=description,
        dataSource=DATASOURCE,
        targets=[target(expr, legend, "A")],
        gridPos=_grid(w, h),
        mappings=[mapping],
        thresholds=_steps(thresholds),
        mergeValues=True,
        showValue="never",
    )


def row(title: str) -> G.RowPanel:
    return G.RowPanel(title=title, gridPos=_grid(24, 1), collapsed=False)


def flow(panels: Iterable[G.Panel]) -> list[G.Panel]:
    """Positions: left to right, a new line when 24 columns are full; a row starts its own line."""
    out: list[G.Panel] = []
    x = y = line_h = 0
    for p in panels:
        w, h = (p.gridPos.w, p.gridPos.h) if p.gridPos else (12, 8)  # a plain grafanalib panel: half width
        if isinstance(p, G.RowPanel) or x + w > 24:
            y, x, line_h = y + line_h, 0, 0
        out.append(attr.evolve(p, gridPos=G.GridPos(h=h, w=w, x=x, y=y)))
        x, line_h = x + w, max(line_h, h)
        if isinstance(p, G.RowPanel):
            y, x, line_h = y + h, 0, 0
    return out


def variables(*names: str) -> G.Templating:
    """The datasource variable, then each of `names` (region, pool, node, team, service): multi-value, with All."""
    ds = G.Template(
        name="datasource", type="datasource", query="prometheus", label="Data source", default="Prometheus", hide=0
    )
    out = [ds]
    for n in names:
        out.append(
            G.Template(
                name=n,
                label=n.capitalize(),
                type="query",
                query=VARIABLE_QUERIES[n],
                dataSource=DATASOURCE,
                includeAll=True,
                multi=True,
                allValue=".*",
                default="$__all",
                refresh=2,
                sort=1,
                hide=0,
            )
        )
    return G.Templating(list=out)


def dashboard(
    title: str,
    description: str,
    panels: Iterable[G.Panel],
    templating: G.Templating,
    time_from: str = "now-6h",
) -> G.Dashboard:
    """The uid, tags and links between dashboards are set by the build, from the file's name and the catalog."""
    return G.Dashboard(
        title=title,
        description=description,
        panels=flow(panels),
        templating=templating,
        time=G.Time(time_from, "now"),
        timezone="browser",
        refresh="30s",
        graphTooltip=1,
    )


def runbook(runbooks_url: str, name: str, title: str) -> dict[str, object]:
    """A link to `runbooks/<name>.yaml` where the catalog says runbooks are browsed; `gpuops lint` checks the file."""
    return link(f"Runbook: {title}", f"{runbooks_url.rstrip('/')}/{name}.yaml")


def demand_title(service: str, event: str) -> str:
    """The event readiness panel of one service: its title, and so the anchor the capacity alert links to."""
    return f"{service}: demand against capacity ({event})"
