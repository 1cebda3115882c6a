"""A runbook as an operator reads it on a terminal (`gpuops runbook show`)."""

from __future__ import annotations

from console.runbooks.model import Check, Runbook


def _expect(c: Check) -> str:
    lo, hi = c.expect.min, c.expect.max
    if lo is not None and hi is not None:
        return f"between {lo} and {hi}"
    return f">= {lo}" if lo is not None else f"<= {hi}"


def _check(c: Check) -> str:
    args = ", ".join(f"{k}={v}" for k, v in sorted(c.args.items()))
    within = f" within {c.within}" if c.within else ""
    return f"{c.name}: {c.query}({args}) {_expect(c)}{within}"


def describe(rb: Runbook) -> str:
    lines = [f"{rb.name}: {rb.title}", f"owners: {', '.join(rb.owners)}"]
    if rb.description:
        lines.append(rb.description.strip())
    if rb.restore_with:
        lines.append(f"restore later with: {rb.restore_with}")
    lines.append("\nparameters:")
    for p in rb.parameters:
        lo, hi = ("" if v is None else f"{v:g}" for v in (p.min, p.max))
        rng = f" [{lo}..{hi}]" if lo or hi else ""
        default = f" (default {p.default})" if p.default is not None else ""
        lines.append(f"  {p.name}: {p.type.value}{rng}{default}  {p.description}".rstrip())
    if rb.preconditions:
        lines.append("\npreconditions:")
        lines += [f"  - {_check(c)}" for c in rb.preconditions]
    lines.append("\nsteps:")
    for i, s in enumerate(rb.steps, 1):
        args = ", ".join(f"{k}={v}" for k, v in s.do.model_dump(exclude={"action"}).items() if k != "check")
        what = _check(s.do.check) if hasattr(s.do, "check") else args
        retry = f", retry {s.retry.count}x every {s.retry.delay}" if s.retry.count else ""
        lines.append(f"  {i}. {s.name}")
        lines.append(f"     {s.do.action}: {what}")
        lines.append(
            f"     timeout {s.timeout}{retry}, on failure: {s.on_failure.value}, rollback: {s.rollback or 'none'}"
        )
    if rb.verification:
        lines.append("\nverification:")
        lines += [f"  - {_check(c)}" for c in rb.verification]
    return "\n".join(lines)
