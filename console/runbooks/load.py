"""Load `runbooks/*.yaml`, reporting every problem as file:line: field: message."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol, TypeVar

from pydantic import BaseModel, ValidationError

from console.catalog.load import issue_message
from console.catalog.yamlpos import CatalogIssue, FileRefused, Located, Path_, dotted, parse_located, read_text
from console.runbooks.model import Runbook

M = TypeVar("M", bound=BaseModel)


class Named(Protocol):
    @property
    def name(self) -> str: ...


N = TypeVar("N", bound=Named)


def load_located(path: Path, model: type[M], what: str) -> tuple[M, Located]:
    """A YAML file validated as `model`, with its line positions; every problem as a CatalogIssue, raised
    together in a list."""
    name = str(path)
    try:
        text = read_text(path)
    except OSError as e:
        raise FileIssues([CatalogIssue(name, 0, "(file)", f"cannot read: {e.strerror or e}")]) from e
    except FileRefused as e:  # binary or huge: refused before YAML sees it
        raise FileIssues([CatalogIssue(name, e.line, "(file)", str(e))]) from None
    loc = parse_located(text, name)
    if loc.issues:
        raise FileIssues(loc.issues)
    if not isinstance(loc.data, dict):
        raise FileIssues([CatalogIssue(name, 1, "(document)", f"{what} is a mapping")])
    try:
        return model.model_validate(loc.data), loc
    except ValidationError as e:
        issues = []
        for err in e.errors():
            # Drop pydantic's union tags (`do.scale`) so the field reads as written in the file.
            p: Path_ = tuple(x for x in err["loc"] if not (isinstance(x, str) and x.startswith("function-")))
            p = tuple(x for i, x in enumerate(p) if not (i and p[i - 1] == "do" and isinstance(x, str)))
            issues.append(CatalogIssue(name, loc.line_of(p), dotted(p), issue_message(err)))
        raise FileIssues(issues) from None


class FileIssues(Exception):
    def __init__(self, issues: list[CatalogIssue]):
        self.issues = issues
        super().__init__("\n".join(str(i) for i in issues))


class RunbookError(FileIssues):
    pass


def load_usable(folder: Path, load_one: Callable[[Path], N]) -> tuple[dict[str, N], list[CatalogIssue]]:
    """Every `*.yaml` in `folder` that loads, by name, and the problems of those that do not."""
    out, issues = {}, []
    for path in sorted(folder.glob("*.yaml")):
        try:
            item = load_one(path)
        except FileIssues as e:
            issues += e.issues
            continue
        out[item.name] = item
    return out, issues


def load_folder(folder: Path, load_one: Callable[[Path], N], error: type[FileIssues]) -> dict[str, N]:
    """Every `*.yaml` in `folder` loaded, by name; every file's problems together in one `error`."""
    out, issues = load_usable(folder, load_one)
    if issues:
        raise error(issues)
    return out


def load_runbook(path: Path) -> Runbook:
    name = str(path)
    try:
        rb, loc = load_located(path, Runbook, "a runbook")
    except FileIssues as e:
        raise RunbookError(e.issues) from None
    issues = []
    if rb.name != path.stem:
        issues.append(CatalogIssue(name, loc.line_of(("name",)), "name", f"must match the file name {path.stem!r}"))
    params = {p.name for p in rb.parameters}
    for where, ref in rb.references():
        if ref not in params:
            issues.append(CatalogIssue(name, loc.line_of(where), dotted(where), f"unknown parameter {{{ref}}}"))
    if issues:
        raise RunbookError(issues)
    return rb


def load_runbooks(folder: Path) -> dict[str, Runbook]:
    """Every runbook in `folder` by name; every file's problems together (what `lint` wants)."""
    return load_folder(folder, load_runbook, RunbookError)


def usable_runbooks(folder: Path) -> tuple[dict[str, Runbook], list[CatalogIssue]]:
    """The runbooks that load, and the problems of the files that do not: one broken file must not take
    `restore-normal` away in an incident."""
    return load_usable(folder, load_runbook)


def parameter_line(path: Path, name: str) -> int:
    """The line where a runbook file declares parameter `name` (0 if it cannot say): what a parameter error
    points at."""
    try:
        loc = parse_located(read_text(path), str(path))
    except (OSError, FileRefused):
        return 0
    params = loc.data.get("parameters") if isinstance(loc.data, dict) else None
    for i, p in enumerate(params or []):
        if isinstance(p, dict) and p.get("name") == name:
            return loc.line_of(("parameters", i, "name"))
    return loc.line_of(("parameters",)) if params else 0
