"""Every link the build writes must resolve: alerts' runbook_url and dashboard_url, dashboards' runbook links.

A runbook link is `<grafana.runbooks_url>/<name>.yaml` (or `runbooks/<name>.yaml`): the file must exist in
`runbooks/` and load as a runbook. A dashboard link is `<grafana.url>/d/<uid>?viewPanel=<id>[&var-<name>=…]`:
the build must hold that dashboard, that panel and those variables. Links elsewhere (another team's mixin
pointing at its own wiki) are listed as external: nothing here can reach them.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from console.codegen.dashboards import BuiltDashboard
from console.codegen.lint import Finding
from console.runbooks import RunbookError, load_runbook, load_runbooks

_VAR = re.compile(r"[?&]var-([A-Za-z0-9_]+)=")
_PANEL_URL = re.compile(r"/d/(?P<uid>[A-Za-z0-9_-]+)(?:/[^?]*)?\?(?:.*&)?viewPanel=(?:panel-)?(?P<id>\d+)")


class Resolver:
    def __init__(self, dashboards: list[BuiltDashboard], grafana_url: str, runbooks_url: str, runbooks_dir: Path):
        self.panels = {b.uid: {p["id"]: p.get("title", "") for p in b.panels()} for b in dashboards}
        self.variables = {b.uid: set(b.variables()) for b in dashboards}
        self.grafana = grafana_url.rstrip("/")
        self.runbook_bases = [runbooks_url.rstrip("/") + "/", "runbooks/"]
        self.runbooks_dir = runbooks_dir
        self._loaded: dict[str, str | None] = {}

    def runbook(self, url: str) -> str | None:
        """None when `url` names a runbook that loads; otherwise why not ('external' for another site's)."""
        base = next((b for b in self.runbook_bases if url.startswith(b)), None)
        if base is None:
            return "external" if re.match(r"^https?://", url) else f"{url!r} is neither a runbook nor a URL"
        name = url[len(base) :]
        if name not in self._loaded:
            path = self.runbooks_dir / name
            if "/" in name or not path.is_file():
                self._loaded[name] = f"no runbook {self.runbooks_dir / name}"
            else:
                try:
                    load_runbook(path)
                    self._loaded[name] = None
                except RunbookError as e:
                    self._loaded[name] = f"{path} does not load: {e.issues[0]}"
        return self._loaded[name]

    def any(self, url: str) -> str | None:
        """A link of either kind, told apart by where it points."""
        if any(url.startswith(b) for b in self.runbook_bases):
            return self.runbook(url)
        return self.panel(url)

    def panel(self, url: str) -> str | None:
        if self.grafana and not url.startswith(self.grafana + "/"):
            return "external" if re.match(r"^https?://", url) else f"{url!r} is not a {self.grafana} URL"
        m = _PANEL_URL.search(url)
        if not m:
            return f"{url!r} names no dashboard and panel (/d/<uid>?viewPanel=<id>)"
        uid, pid = m.group("uid"), int(m.group("id"))
        if uid not in self.panels:
            return f"no built dashboard {uid!r}"
        if pid not in self.panels[uid]:
            return f"dashboard {uid!r} has no panel {pid}"
        unknown = sorted(set(_VAR.findall(url)) - self.variables.get(uid, set()))
        if unknown:
            return f"dashboard {uid!r} has no variable {', '.join(unknown)} (the link sets var-{unknown[0]})"
        return None


def _report(tool: str, target: str, problems: list[str], external: list[str]) -> Finding:
    lines = problems + [f"external, not checked: {x}" for x in external]
    return Finding(tool, target, not problems, "\n".join(lines))


def check_alert_links(rule_files: list[Path], resolver: Resolver) -> list[Finding]:
    out = []
    for f in rule_files:
        doc: dict[str, Any] = yaml.safe_load(f.read_text()) or {}
        problems, external = [], []
        for g in doc.get("groups", []):
            for r in g.get("rules", []):
                if "alert" not in r:
                    continue
                ann = r.get("annotations", {})
                for key, check in (("runbook_url", resolver.runbook), ("dashboard_url", resolver.panel)):
                    if key not in ann:
                        continue
                    why = check(ann[key])
                    if why == "external":
                        external.append(f"{r['alert']} {key} {ann[key]}")
                    elif why:
                        problems.append(f"{r['alert']} (group {g.get('name')}): {key}: {why}")
        out.append(_report("links", str(f), problems, sorted(set(external))))
    return out


def check_dashboard_links(dashboards: list[BuiltDashboard], resolver: Resolver) -> list[Finding]:
    out = []
    for d in dashboards:
        problems, external = [], []
        holders = [("dashboard", d.model), *((f'panel "{p.get("title")}"', p) for p in d.panels())]
        for where, holder in holders:
            for link in holder.get("links", []):
                url = link.get("url", "")
                if link.get("type") != "link" or not url:
                    continue
                why = resolver.any(url)
                if why == "external":
                    external.append(f"{where} {url}")
                elif why:
                    problems.append(f"{where}: link {link.get('title')!r}: {why}")
        out.append(_report("links", str(d.path or d.source), problems, external))
    return out


def check_runbooks(folder: Path) -> Finding:
    """Every runbook file loads (file:line: field: message for each problem)."""
    try:
        n = len(load_runbooks(folder))
    except RunbookError as e:
        return Finding("runbooks", str(folder), False, "\n".join(str(i) for i in e.issues))
    return Finding("runbooks", f"{folder} ({n} runbooks)", n > 0, "" if n else "no runbooks")
