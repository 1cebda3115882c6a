"""PromQL text scoped to one fleet's exporters and clusters, as kubernetes-mixin's `_config` selectors scope
its rules: a label matcher added to each raw series of an exporter (`DCGM_FI_DEV_GPU_UTIL{job="dcgm-exporter"}`)
and the cluster label kept by every aggregation and join over a place (a node, pool, region, namespace).

The named expressions in `console.fleet.queries` are written once, without either; `scope` applies the
catalog's `monitoring:` section to the built rules, the dashboards' targets and the console's queries alike.
A small lexer, not a parser: it knows strings, label matchers `{...}`, ranges `[...]`, the grouping clauses
and function calls, which is all it needs to tell a series name from a function or a label.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

# Clauses followed by a list of labels, not of series.
_GROUPING = {"by", "without", "on", "ignoring", "group_left", "group_right"}
# Words that are not series names where a series name could stand.
_WORDS = {"and", "or", "unless", "bool", "offset", "atan2", "inf", "nan", "start", "end"} | _GROUPING
_IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_MATCHER = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*')


@dataclass(frozen=True)
class Token:
    kind: str  # ident, string, braces, brackets, number, punct
    start: int
    end: int


def _string_end(text: str, i: int) -> int:
    quote, i = text[i], i + 1
    while i < len(text) and text[i] != quote:
        i += 2 if text[i] == "\\" and quote != "`" else 1
    if i >= len(text):
        raise ValueError(f"unterminated string at {i}: {text!r}")
    return i + 1


def _closing(text: str, i: int, close: str) -> int:
    """The index after the `close` that ends the group opened at `i`, skipping strings."""
    j = i + 1
    while j < len(text):
        c = text[j]
        if c in "\"'`":
            j = _string_end(text, j)
            continue
        if c == close:
            return j + 1
        j += 1
    raise ValueError(f"unclosed {text[i]!r} at {i}: {text!r}")


def tokens(text: str) -> list[Token]:
    out: list[Token] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c.isspace():
            i += 1
        elif c == "#":  # a comment, to the end of its line
            nl = text.find("\n", i)
            i = len(text) if nl < 0 else nl
        elif c in "\"'`":
            j = _string_end(text, i)
            out.append(Token("string", i, j))
            i = j
        elif c == "{":
            j = _closing(text, i, "}")
            out.append(Token("braces", i, j))
            i = j
        elif c == "[":
            j = _closing(text, i, "]")
            out.append(Token("brackets", i, j))
            i = j
        elif c.isdigit() or (c == "." and text[i + 1 : i + 2].isdigit()):
            j = i + 1
            while j < len(text) and (text[j].isalnum() or text[j] in "._" or (text[j] in "+-" and text[j - 1] in "eE")):
                j += 1
            out.append(Token("number", i, j))
            i = j
        elif m := _IDENT.match(text, i):
            out.append(Token("ident", i, m.end()))
            i = m.end()
        else:
            out.append(Token("punct", i, i + 1))
            i += 1
    return out


@dataclass(frozen=True)
class Selector:
    name: str | None  # the series name; None for `{__name__=...}` alone
    insert: int  # where a matcher goes: after `{`, or after the name when it has no braces
    braces: str  # the `{...}` text, "" when none
    labels: frozenset[str]  # the labels it already matches on


@dataclass(frozen=True)
class Grouping:
    clause: str  # by, on, ...
    open: int  # the index just after its `(`
    labels: tuple[str, ...]


def _matched_labels(braces: str) -> frozenset[str]:
    return frozenset(m.group(1) for m in _MATCHER.finditer(braces[1:-1])) if braces else frozenset()


def _grouping(text: str, toks: list[Token], k: int) -> tuple[Grouping, int] | None:
    """The label list of a `by (...)`, `on (...)`, ... clause at token `k`, and the token after it."""
    t = toks[k]
    if t.kind != "ident" or text[t.start : t.end].lower() not in _GROUPING or k + 1 >= len(toks):
        return None
    if text[toks[k + 1].start] != "(":
        return None
    close = next((j for j in range(k + 2, len(toks)) if text[toks[j].start] == ")"), None)
    if close is None:
        raise ValueError(f"unclosed label list at {t.start}: {text!r}")
    names = tuple(text[x.start : x.end].strip("\"'`") for x in toks[k + 2 : close] if x.kind in ("ident", "string"))
    return Grouping(text[t.start : t.end].lower(), toks[k + 1].end, names), close + 1


def _is_series(text: str, toks: list[Token], k: int) -> bool:
    """Whether the identifier at `k` names a series: not a function, keyword, aggregation or `$variable`."""
    t = toks[k]
    word = text[t.start : t.end]
    nxt = toks[k + 1] if k + 1 < len(toks) else None
    after = text[nxt.start : nxt.end].lower() if nxt else ""
    if after == "(" or word.lower() in _WORDS:
        return False
    if nxt is not None and nxt.kind == "ident" and after in ("by", "without"):  # `sum by (...)`
        return False
    return not (t.start > 0 and text[t.start - 1] == "$")  # a dashboard variable (`$node`)


def scan(text: str) -> tuple[list[Selector], list[Grouping]]:
    """The series selectors and the grouping label lists of `text`."""
    toks = tokens(text)
    selectors: list[Selector] = []
    groupings: list[Grouping] = []
    k = 0
    while k < len(toks):
        t = toks[k]
        if found := _grouping(text, toks, k):
            groupings.append(found[0])
            k = found[1]
            continue
        if t.kind == "ident" and _is_series(text, toks, k):
            braced = k + 1 < len(toks) and toks[k + 1].kind == "braces"
            b = toks[k + 1] if braced else None
            braces = text[b.start : b.end] if b else ""
            at = b.start + 1 if b else t.end
            selectors.append(Selector(text[t.start : t.end], at, braces, _matched_labels(braces)))
            k += 2 if braced else 1
            continue
        if t.kind == "braces" and (k == 0 or toks[k - 1].kind != "ident"):  # `{__name__="..."}` alone
            braces = text[t.start : t.end]
            named = re.search(r'__name__\s*=\s*"([^"]*)"', braces)
            selectors.append(Selector(named.group(1) if named else None, t.start + 1, braces, _matched_labels(braces)))
        k += 1
    return selectors, groupings


def parse_matchers(text: str) -> tuple[tuple[str, str], ...]:
    """`job="dcgm-exporter", env=~"prod|gpu"` as ((label, 'op"value"'), ...); ValueError names what is wrong."""
    out: list[tuple[str, str]] = []
    rest = text.strip()
    while rest:
        m = _MATCHER.match(rest)
        if not m:
            raise ValueError(f'not a label matcher: {rest!r} (write label="value", =~, != or !~)')
        out.append((m.group(1), rest[m.start(2) : m.end(3) + 1]))
        rest = rest[m.end() :]
        if rest.startswith(","):
            rest = rest[1:].lstrip()
        elif rest:
            raise ValueError(f"matchers are separated by commas: {rest!r}")
    return tuple(out)


Matchers = Callable[[str | None], Sequence[tuple[str, str]]]


def add_matchers(text: str, matchers_for: Matchers) -> str:
    """`text` with each selector given the matchers `matchers_for(its name)` returns, except on labels it
    already matches on."""
    edits: list[tuple[int, str]] = []
    for s in scan(text)[0]:
        add = [f"{label}{m}" for label, m in matchers_for(s.name) if label not in s.labels]
        if not add:
            continue
        if s.braces:
            empty = not s.braces[1:-1].strip()
            edits.append((s.insert, ", ".join(add) + ("" if empty else ", ")))
        else:
            edits.append((s.insert, "{" + ", ".join(add) + "}"))
    return _apply(text, edits)


def keep_label(text: str, label: str, places: Iterable[str], every_by: bool = False) -> str:
    """`text` with `label` added to each `by (...)` and `on (...)` list that names one of `places`: an
    aggregation or a join over nodes, pools or namespaces then keeps each cluster's apart. Lists of other
    labels (a team, a service, a month) are left as they are: those sum across clusters, or join series the
    catalog gives once for every cluster. `every_by`: every `by` list keeps it (each answer of a global view
    says its cluster)."""
    where = set(places)
    edits = [
        (g.open, f"{label}, " if g.labels else label)
        for g in scan(text)[1]
        if g.clause in ("by", "on")
        and label not in g.labels
        and (where.intersection(g.labels) or (every_by and g.clause == "by"))
    ]
    return _apply(text, edits)


def _apply(text: str, edits: list[tuple[int, str]]) -> str:
    for at, insert in sorted(edits, reverse=True):
        text = text[:at] + insert + text[at:]
    return text
