"""YAML loading that remembers where every value came from, so errors can name file:line:field."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

Path_ = tuple[str | int, ...]

MAX_BYTES = 4 * 1024 * 1024  # a catalog of thousands of nodes is tens of kilobytes: more is not a config
MAX_VALUES = 50_000  # values after aliases are expanded (the demo catalog has 459): an alias bomb stops here
MAX_DEPTH = 64  # nesting: no config of ours goes deeper than a handful
# libyaml's parser where PyYAML was built with it: the same events and nodes (with their lines), several times
# faster than the pure-Python one, which is most of a catalog's load and a share of the console's first paint.
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _TooBig(Exception):
    def __init__(self, line: int, message: str):
        self.line, self.message = line, message


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
    return parse_located(read_text(path), str(path))


class FileRefused(ValueError):
    """A file refused before it is parsed (binary, huge); `line` is where (1 when the whole file)."""

    def __init__(self, line: int, message: str):
        super().__init__(message)
        self.line = line


def read_text(path: Path) -> str:
    """A config file's text, or OSError as reading raises it, or FileRefused: over MAX_BYTES, or not UTF-8
    (naming the line of the first bad byte), so a binary or huge file is refused before YAML reads it."""
    with path.open("rb") as f:
        raw = f.read(MAX_BYTES + 1)
    if len(raw) > MAX_BYTES:
        raise FileRefused(1, f"over {MAX_BYTES // 2**20} MiB: not a config file")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise FileRefused(raw.count(b"\n", 0, e.start) + 1, "not UTF-8 text (a binary file?)") from None


def parse_located(text: str, filename: str) -> Located:
    loc = Located(data=None)
    try:
        _precheck(text)
        node = yaml.compose(text, Loader=_LOADER)
    except _TooBig as e:
        loc.issues.append(CatalogIssue(filename, e.line, "(document)", e.message))
        return loc
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark else 1
        loc.issues.append(CatalogIssue(filename, line, "(syntax)", f"YAML syntax error: {e.problem or e}"))
        return loc
    except RecursionError:  # thousands of nested brackets: the parser recurses per level
        loc.issues.append(CatalogIssue(filename, 1, "(document)", f"nested over {MAX_DEPTH} levels deep"))
        return loc
    except yaml.reader.ReaderError as e:  # a control character (NUL, ESC…): YAML allows none
        line = text.count("\n", 0, max(0, e.position)) + 1
        loc.issues.append(CatalogIssue(filename, line, "(syntax)", f"not YAML text: character #x{e.character:04x}"))
        return loc
    except yaml.YAMLError as e:  # any other refusal of PyYAML's, still a file:line error, never a traceback
        loc.issues.append(CatalogIssue(filename, 1, "(syntax)", f"YAML error: {e}"))
        return loc
    if node is None:
        loc.issues.append(CatalogIssue(filename, 1, "(document)", "the file is empty"))
        return loc
    loc.data = _convert(node, (), loc, filename)
    return loc


_QUOTED_OR_COMMENT = re.compile(r'"(?:[^"\\\n]|\\.)*"|\'[^\'\n]*\'|#[^\n]*')
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


def _flow_too_deep(text: str) -> bool:
    """Flow brackets nested (or left open) over MAX_DEPTH deep. PyYAML's scanner is quadratic in open
    brackets before its parser sees the first one too deep, so this looks at the text alone, at C speed:
    strip strings and comments, keep the brackets, remove the innermost pairs MAX_DEPTH times."""
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return False
    brackets = _NOT_BRACKET.sub("", _QUOTED_OR_COMMENT.sub("", text))
    for _ in range(MAX_DEPTH):
        shorter = brackets.replace("[]", "").replace("{}", "")
        if shorter == brackets:
            break
        brackets = shorter
    return brackets.count("[") + brackets.count("{") > MAX_DEPTH


def _precheck(text: str) -> None:
    """Walk the event stream once, before anything is built: too deep, or too many values once aliases are
    expanded, raises _TooBig at the line where it happens. Counting, not expanding, keeps an alias bomb
    linear; stopping at the first level too deep keeps PyYAML's scanner (quadratic in flow depth) short."""
    if _flow_too_deep(text):
        raise _TooBig(1, f"brackets nested (or left open) over {MAX_DEPTH} levels deep")
    sizes: dict[str, int] = {}  # an anchored value's size, its own aliases expanded
    stack: list[tuple[str | None, int]] = []  # open collections: (anchor, size so far)
    total = 0  # values the expanded document holds so far

    def seen(n: int, line: int) -> None:
        """n more values, inside the innermost open collection."""
        nonlocal total
        total += n
        if total > MAX_VALUES:
            raise _TooBig(line, f"over {MAX_VALUES:,} values once aliases are expanded (an alias bomb?)")
        if stack:
            stack[-1] = (stack[-1][0], stack[-1][1] + n)

    for ev in yaml.parse(text, Loader=_LOADER):
        line = ev.start_mark.line + 1 if ev.start_mark else 1
        if isinstance(ev, yaml.CollectionStartEvent):
            if len(stack) >= MAX_DEPTH:
                raise _TooBig(line, f"nested over {MAX_DEPTH} levels deep")
            seen(1, line)
            stack.append((ev.anchor, 1))
        elif isinstance(ev, yaml.CollectionEndEvent):
            anchor, size = stack.pop()
            if anchor:
                sizes[anchor] = size
            if stack:  # its values are in `total` already; its parent's size grows by them
                stack[-1] = (stack[-1][0], stack[-1][1] + size - 1)
        elif isinstance(ev, yaml.ScalarEvent):
            if ev.anchor:
                sizes[ev.anchor] = 1
            seen(1, line)
        elif isinstance(ev, yaml.AliasEvent):
            seen(sizes.get(ev.anchor or "", 1), line)


def _convert(node: yaml.Node, path: Path_, loc: Located, filename: str) -> Any:
    # _precheck has bounded what this walk makes: its values with aliases expanded, and its depth.
    loc.lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):  # `[a]: b`, `{}: c`: YAML allows it, no config of ours
                loc.issues.append(
                    CatalogIssue(filename, key_node.start_mark.line + 1, dotted(path), "a key must be a plain name")
                )
                continue
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
    try:
        return _SCALARS.construct_object(node, deep=True)
    # 2026-02-30 looks like a date and is not one; an explicit `!!timestamp "x"` even trips PyYAML itself
    # (AttributeError): any failure to build a scalar is the file's error, at its line.
    except Exception as e:
        loc.issues.append(CatalogIssue(filename, node.start_mark.line + 1, dotted(path), f"not a valid value: {e}"))
        return node.value


_SCALARS = yaml.SafeLoader("")
