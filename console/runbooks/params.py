"""A runbook's parameters, from what the operator gave: typed, checked against the catalog, defaults filled.

Nothing runs with a value that failed here; every value that reaches PromQL or a label selector is also
checked by `queries.runbook_query` and the Kubernetes source.
"""

from __future__ import annotations

import re

from console.catalog.model import Catalog
from console.fleet.queries import label_value
from console.runbooks.model import REF, Check, Parameter, ParamType, Runbook

Value = str | int | float | tuple[str, ...]  # a tuple: every service of an event, every batch queue
_DURATION = re.compile(r"^\d+(s|m|h)$")


class ParameterError(Exception):
    """Every parameter problem at once, each naming the parameter."""

    def __init__(self, runbook: str, problems: list[str]):
        self.problems = problems
        super().__init__(f"{runbook}: " + "; ".join(problems))

    @property
    def named(self) -> list[tuple[str, str]]:
        """(parameter, problem) pairs: each problem starts with its parameter's name."""
        out = []
        for p in self.problems:
            name, _, rest = p.partition(": ")
            if p.startswith("unknown parameter "):
                name, rest = p.split("'")[1], p
            out.append((name, rest))
        return out


def _known(kind: ParamType, catalog: Catalog) -> list[str] | None:
    """The catalog's names a parameter of this type must be one of (None: not a catalog name)."""
    return {
        ParamType.SERVICE: lambda: [s.name for s in catalog.services],
        ParamType.REGION: catalog.region_names,
        ParamType.NAMESPACE: lambda: [ns for t in catalog.teams for ns in t.namespaces],
        ParamType.EVENT: lambda: [e.name for e in catalog.events],
        ParamType.CLUSTER_QUEUE: lambda: [q.name for q in catalog.queues.cluster_queues] if catalog.queues else [],
    }.get(kind, lambda: None)()


def _one(p: Parameter, raw: Value, catalog: Catalog) -> Value:
    text = str(raw)
    if p.type in (ParamType.INTEGER, ParamType.NUMBER):
        try:
            num: float = int(text) if p.type is ParamType.INTEGER else float(text)
        except ValueError:
            raise ValueError(f"{text!r} is not {'an integer' if p.type is ParamType.INTEGER else 'a number'}") from None
        lo, hi = p.min, p.max
        if (lo is not None and num < lo) or (hi is not None and num > hi):
            rng = f"{'' if lo is None else f'{lo:g}'}..{'' if hi is None else f'{hi:g}'}"
            raise ValueError(f"{num:g} is outside {rng}")
        return num
    if p.type is ParamType.DURATION:
        if not _DURATION.match(text):
            raise ValueError(f"{text!r} is not a duration like 90s, 15m or 2h")
        return text
    known = _known(p.type, catalog)
    if known is not None and text not in known:
        raise ValueError(f"no {p.type.value} {text!r} in the catalog; known: {', '.join(sorted(known))}")
    return label_value(text)  # a node name: checked the same way as every label value


def resolve(rb: Runbook, catalog: Catalog, given: dict[str, str]) -> dict[str, Value]:
    problems = []
    declared = {p.name: p for p in rb.parameters}
    for name in sorted(set(given) - set(declared)):
        problems.append(f"unknown parameter {name!r}; {rb.name} takes {', '.join(declared) or 'none'}")
    values: dict[str, Value] = {}
    for p in rb.parameters:
        raw = given.get(p.name, p.default)
        if raw is None:
            if not p.optional:
                problems.append(f"{p.name}: missing ({p.type.value}{': ' + p.description if p.description else ''})")
            continue
        try:
            values[p.name] = _one(p, raw, catalog)
        except ValueError as e:
            problems.append(f"{p.name}: {e}")
    _expand(rb, catalog, values, problems, set(given))
    if problems:
        raise ParameterError(rb.name, problems)
    return values


def _expand(rb: Runbook, catalog: Catalog, values: dict[str, Value], problems: list[str], given: set[str]) -> None:
    """An optional service left out means every service of the event given (without one it is a problem); an
    optional cluster queue, every queue the catalog marks hold_for_events."""
    event = next((values[p.name] for p in rb.parameters if p.type is ParamType.EVENT and p.name in values), None)
    for p in rb.parameters:
        if p.type is ParamType.CLUSTER_QUEUE and p.optional and p.name not in values and p.name not in given:
            held = tuple(catalog.queues.held_for_events()) if catalog.queues else ()
            if held:
                values[p.name] = held
            else:
                problems.append(f"{p.name}: no cluster queue in the catalog is marked hold_for_events (queues:)")
            continue
        if p.type is not ParamType.SERVICE or not p.optional or p.name in values or p.name in given:
            continue
        if event is None:
            problems.append(f"{p.name}: give a service, or an event for every service of it")
        else:
            values[p.name] = tuple(catalog.event(str(event)).services)


def fill(template: str, values: dict[str, Value], absent: str | None = None) -> str:
    """`{name}` replaced by its resolved value (the loader proved every name is a parameter); a list of
    services as `a|b`; a parameter left out as `absent` (`.*` in a regex matcher), or a KeyError."""

    def value(m: re.Match[str]) -> str:
        if m.group(1) not in values and absent is not None:
            return absent
        v = values[m.group(1)]
        if isinstance(v, tuple):
            return "|".join(v)
        return f"{v:g}" if isinstance(v, float) else str(v)

    return REF.sub(value, template)


def check_args(check: Check, values: dict[str, Value]) -> dict[str, str]:
    """A check's query arguments, filled (one absent: every value)."""
    return {k: fill(v, values, absent=".*") for k, v in check.args.items()}


def bounds(check: Check, values: dict[str, Value]) -> tuple[float | None, float | None]:
    def num(v: float | str | None) -> float | None:
        return None if v is None else float(fill(v, values)) if isinstance(v, str) else float(v)

    return num(check.expect.min), num(check.expect.max)
