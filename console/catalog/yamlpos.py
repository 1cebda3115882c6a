"""YAML loading that remembers where every value came from, so errors can name file:line:field."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

Path_ = tuple[str | int, ...]


@dataclass(frozen=True)
class CatalogIssue:
    file: str
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.field}: {self.message}"


@dataclass
class Located:
    """Plain Python data plus a map from each value's path to its 1-based line."""

    data: Any
    lines: dict[Path_, int] = field(default_factory=dict)
    issues: list[CatalogIssue] = field(default_factory=list)

    def line_of(self, path: Path_) -> int:
        # Walk up to the nearest recorded ancestor: a missing field is reported at its parent.
        p = tuple(path)
        while p:
            if p in self.lines:
                return self.lines[p]
            p = p[:-1]
        return self.lines.get((), 1)


def dotted(path: Path_) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(document)"


def load_located(path: Path) -> Located:
    text = path.read_text(encoding="utf-8")
    return parse_located(text, str(path))


def parse_located(text: str, filename: str) -> Located:
    loc = Located(data=None)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark else 1
        loc.issues.append(CatalogIssue(filename, line, "(syntax)", f"YAML syntax error: {e.problem or e}"))
        return loc
    if node is None:
        loc.issues.append(CatalogIssue(filename, 1, "(document)", "the file is empty"))
        return loc
    loc.data = _convert(node, (), loc, filename)
    return loc


def _convert(node: yaml.Node, path: Path_, loc: Located, filename: str) -> Any:
    loc.lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = key_node.value
            if key in out:
                loc.issues.append(
                    CatalogIssue(filename, key_node.start_mark.line + 1, dotted((*path, key)), f"duplicate key {key!r}")
                )
            loc.lines[(*path, key)] = key_node.start_mark.line + 1
            out[key] = _convert(value_node, (*path, key), loc, filename)
            # A key's line is where the key is written, not where its (block) value starts.
            loc.lines[(*path, key)] = key_node.start_mark.line + 1
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_convert(v, (*path, i), loc, filename) for i, v in enumerate(node.value)]
    # Scalars: let PyYAML's resolver give ints, floats, bools, timestamps as usual.
    return _SCALARS.construct_object(node, deep=True)


_SCALARS = yaml.SafeLoader("")
