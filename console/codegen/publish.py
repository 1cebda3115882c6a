"""Diff the built dashboards against a Grafana, and publish the ones that changed.

A dashboard is compared without `id` and `version`, which Grafana owns. Publishing reads every dashboard
first (an unchanged set costs reads only), creates the folder if it is missing, then posts each changed one
with the version it was read at and `overwrite: false`: an edit made in Grafana meanwhile is refused (412
version-mismatch), never silently lost. `--force` posts with `overwrite: true`.
"""

from __future__ import annotations

import difflib
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from console.codegen.dashboards import BuiltDashboard, dumps
from console.sources.grafana import GrafanaClient, GrafanaError, RemoteDashboard

OWNED_BY_GRAFANA = ("id", "version")


class PublishAborted(Exception):
    """A failure that stops every dashboard alike: credentials, permissions, an unreachable Grafana."""


@dataclass
class Change:
    uid: str
    title: str
    state: str  # "create", "update", "move" (other folder only), "unchanged"
    diff: str = ""
    remote: RemoteDashboard | None = None


@dataclass
class Report:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    folder_created: bool = False


def comparable(model: dict[str, Any]) -> str:
    return dumps({k: v for k, v in model.items() if k not in OWNED_BY_GRAFANA})


def plan(built: list[BuiltDashboard], client: GrafanaClient, folder_uid: str) -> list[Change]:
    """One read per dashboard; no writes."""
    out = []
    for b in built:
        remote = client.dashboard(b.uid)
        if remote is None:
            diff = "".join(difflib.unified_diff([], comparable(b.model).splitlines(True), "/dev/null", _local(b)))
            out.append(Change(b.uid, b.title, "create", diff))
            continue
        a, z = comparable(remote.model), comparable(b.model)
        diff = "".join(difflib.unified_diff(a.splitlines(True), z.splitlines(True), f"grafana:/d/{b.uid}", _local(b)))
        if remote.folder_uid != folder_uid:
            diff = f"folder: {remote.folder_uid or '(General)'} -> {folder_uid}\n" + diff
        state = "update" if a != z else "move" if remote.folder_uid != folder_uid else "unchanged"
        out.append(Change(b.uid, b.title, state, diff, remote))
    return out


def _local(b: BuiltDashboard) -> str:
    return str(b.path or b.source)


def commit_message(repo: Path) -> str:
    """`gpuops publish <commit>` (with `-dirty` when the tree has changes), for Grafana's version history."""
    try:
        rev = subprocess.run(
            ["git", "-C", str(repo), "describe", "--always", "--dirty", "--abbrev=12"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        rev = "(not a git checkout)"
    return f"gpuops publish {rev}"


def raise_if_global(e: GrafanaError, folder_uid: str) -> None:
    if e.status == 401:
        raise PublishAborted(
            "Grafana refused the credentials (401 Unauthorized): check GRAFANA_TOKEN or --token-file"
        ) from e
    if e.status == 403:
        raise PublishAborted(
            f"the token may not do this (403 Forbidden, {e.method} {e.path}): it needs the Editor role"
            f" on folder {folder_uid!r}"
        ) from e
    if e.status == 0:
        raise PublishAborted(e.message) from e


def ensure_folder(client: GrafanaClient, uid: str, title: str) -> bool:
    """True when the folder had to be created."""
    if client.folder(uid) is not None:
        return False
    try:
        client.create_folder(uid, title)
    except GrafanaError as e:
        if e.status in (409, 412) and client.folder(uid) is not None:  # created meanwhile: fine
            return False
        raise
    return True


def _post(
    client: GrafanaClient, b: BuiltDashboard, c: Change, folder_uid: str, message: str, force: bool
) -> str | None:
    """Post one dashboard; None when it went through, else what went wrong."""
    model = dict(b.model)
    model["id"] = c.remote.model.get("id") if c.remote else None
    if c.remote and not force:
        model["version"] = c.remote.version
    try:
        # Retrying is safe: with the version pinned a repeat cannot overwrite anyone's edit (it gets a 412,
        # handled below), and with --force overwriting is what was asked.
        client.save_dashboard(model, folder_uid, message, overwrite=force, retry=True)
        return None
    except GrafanaError as e:
        raise_if_global(e, folder_uid)
        if e.status == 412 and e.status_word == "version-mismatch":
            now = client.dashboard(b.uid)
            if now and comparable(now.model) == comparable(b.model) and now.folder_uid == folder_uid:
                return None  # an earlier try of this post went through before its answer was lost
            return (
                "changed in Grafana since it was read (412 version-mismatch): run `gpuops diff` to see the"
                " edit, then publish again, or --force to overwrite it"
            )
        if e.status == 412 and e.status_word == "name-exists":
            others = [h.get("uid") for h in client.search_title(b.title, folder_uid) if h.get("uid") != b.uid]
            held = f" (uid {', '.join(map(str, others))})" if others else ""
            return (
                f"another dashboard titled {b.title!r} is already in folder {folder_uid!r}{held}"
                " (412 name-exists): rename or delete it, or retitle this one"
            )
        if e.status >= 500:
            return f"Grafana failed after {client.tries} tries ({e.status}): {e.message}"
        return f"Grafana refused it ({e.status}): {e.message}"


def publish(
    built: list[BuiltDashboard],
    client: GrafanaClient,
    folder_uid: str,
    folder_title: str,
    message: str,
    dry_run: bool = False,
    force: bool = False,
) -> tuple[list[Change], Report]:
    report = Report()
    try:
        changes = plan(built, client, folder_uid)
        if dry_run:
            report.folder_created = client.folder(folder_uid) is None
        elif any(c.state != "unchanged" for c in changes):
            report.folder_created = ensure_folder(client, folder_uid, folder_title)
        by_uid = {b.uid: b for b in built}
        for c in changes:
            if c.state == "unchanged":
                report.unchanged.append(c.uid)
                continue
            err = None if dry_run else _post(client, by_uid[c.uid], c, folder_uid, message, force)
            if err:
                report.failed[c.uid] = err
            elif c.state == "create":
                report.created.append(c.uid)
            else:
                report.updated.append(c.uid)
    except GrafanaError as e:
        raise_if_global(e, folder_uid)
        raise
    return changes, report
