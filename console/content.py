"""Where gpuops finds the content a platform team edits: the monitoring mixin and Alertmanager template
(`alerts/`), the dashboards, the runbooks and the example catalog.

A team's own copy, in the working directory (a repository `gpuops init` made), comes first; otherwise the copy
gpuops ships. A wheel carries that copy in `console/shipped/` (setup.py puts it there at build time); a checkout
of gpuops, editable installs included, reads it at the repository's root, where it is edited.
"""

from __future__ import annotations

from pathlib import Path

# What setup.py packs into the wheel (its CONTENT: setup.py cannot import the package it builds).
ALERTS, DASHBOARDS, RUNBOOKS, EXAMPLE_CATALOG = "alerts", "dashboards", "runbooks", "fleet.yaml"

_PACKAGED = Path(__file__).resolve().parent / "shipped"
SHIPPED = _PACKAGED if _PACKAGED.is_dir() else Path(__file__).resolve().parents[1]


def shipped(name: str) -> Path:
    """The copy gpuops ships of `name` (one of the names above, or a path below one)."""
    return SHIPPED / name


def local_or_shipped(name: str, cwd: Path | None = None) -> Path:
    """`name` in the working directory when it is there, else the shipped copy."""
    here = cwd / name if cwd is not None else Path(name)
    return here if here.exists() else shipped(name)


def mixin(alerts: Path) -> Path:
    return alerts / "mixin.libsonnet"


def alertmanager_template(alerts: Path) -> Path:
    return alerts / "alertmanager.libsonnet"
