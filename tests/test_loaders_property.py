"""Any bytes given to the catalog, runbook or drill-scenario loader give a model or `file:line: …` errors,
never a traceback. Hypothesis writes the files: random bytes, real files with bytes spliced in, cut out or
doubled, alias bombs and deep nesting.

CI runs a bounded number of examples and checks the outcome only: a verdict on seconds would depend on
this shared machine's speed. `bench/fuzz_loaders.py` runs 10,000 per loader and holds each example to the
2 s and 200 MB allowed (CPU seconds and the rise of the process's peak memory), exiting 1 past either.
"""

from __future__ import annotations

import os
import re
import resource
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from console.catalog import CatalogError, load_catalog
from console.drills.load import ScenarioError, load_scenario
from console.runbooks import RunbookError, load_runbook, load_runbooks

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = int(os.environ.get("GPUOPS_FUZZ_EXAMPLES", "200"))
SECONDS, BYTES = 2.0, 200 * 1024 * 1024


def _rss() -> int:
    """This process's resident memory now, in bytes."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _peak_rss() -> int:
    """The process's highest resident memory so far (Linux reports it in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


CATALOG = load_catalog(ROOT / "fleet.yaml")
RUNBOOKS = load_runbooks(ROOT / "runbooks")
SEEDS = {
    "catalog": [(ROOT / "fleet.yaml").read_bytes()],
    "runbook": [p.read_bytes() for p in sorted((ROOT / "runbooks").glob("*.yaml"))],
    "scenario": [p.read_bytes() for p in sorted((ROOT / "runbooks" / "drills").glob("*.yaml"))],
}
LOADERS: dict[str, tuple[Callable[[Path], Any], type[Exception]]] = {
    "catalog": (load_catalog, CatalogError),
    "runbook": (load_runbook, RunbookError),
    "scenario": (lambda p: load_scenario(p, CATALOG, RUNBOOKS), ScenarioError),
}


@st.composite
def mutated(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    """A real file with a few edits: bytes spliced in, a slice cut out or doubled, one byte replaced."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data)))
        op = draw(st.sampled_from(["splice", "cut", "double", "byte"]))
        if op == "splice":
            data[at:at] = draw(
                st.binary(min_size=1, max_size=64)
                | st.sampled_from(
                    [b"&a ", b"*a", b"!!python/object:os.system ", b": [", b"\t", b"\x00", b"\xff\xfe", b"{{", b"- - -"]
                )
            )
        else:
            end = min(len(data), at + draw(st.integers(1, 400)))
            if op == "cut":
                del data[at:end]
            elif op == "double":
                data[at:at] = data[at:end]
            elif at < len(data):
                data[at] = draw(st.integers(0, 255))
    return bytes(data)


@st.composite
def alias_bomb(draw: st.DrawFn) -> bytes:
    """Billion laughs: each level a list of `fan` aliases of the one before."""
    levels, fan = draw(st.integers(1, 12)), draw(st.integers(2, 10))
    lines = ['a0: &a0 ["lol"]']
    for i in range(1, levels + 1):
        lines.append(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * fan)}]")
    key = draw(st.sampled_from(["name", "pools", "steps", "faults", "x"]))
    lines.append(f"{key}: *a{levels}")
    return ("\n".join(lines) + "\n").encode()


@st.composite
def deep(draw: st.DrawFn) -> bytes:
    n = draw(st.integers(1, 5000))
    opener, closer = draw(st.sampled_from([("[", "]"), ("{a: ", "}"), ("- ", "")]))
    return (
        (opener * n + "x" + closer * n).encode()
        if closer
        else "".join("  " * i + "- " for i in range(min(n, 300))).encode()
    )


def inputs(kind: str) -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.binary(max_size=2048),
        st.text(alphabet=st.sampled_from(list(":-[]{}&*!|>'\"#%@` \n\tabcxyz019")), max_size=400).map(str.encode),
        mutated(SEEDS[kind]),
        alias_bomb(),
        deep(),
    )


def check_one(kind: str, folder: Path, data: bytes) -> tuple[float, int]:
    """Load `data` as a file of `kind`: a model or located errors, never another exception. Returns the
    CPU seconds it took and how far the process's peak memory rose above its memory before (for the bench).

    Memory is the process's high-water mark (no tracing: tracemalloc slows a parse many times over). The
    mark only rises, so an example that used 200 MB more than the process held before it shows here."""
    load, error = LOADERS[kind]
    path = folder / f"{'fleet' if kind == 'catalog' else 'sample'}.yaml"
    path.write_bytes(data)
    before = _rss()
    t0 = time.process_time()
    try:
        load(path)
    except error as e:
        issues = [str(i) for i in e.issues]  # type: ignore[attr-defined]
        assert issues, "an error without an issue"
        where = re.compile(rf"^{re.escape(str(path))}:\d+: ")
        assert all(where.match(i) for i in issues), issues[:3]
    return time.process_time() - t0, max(0, _peak_rss() - before)


# What the suite found, kept as fixed examples: a NUL byte (PyYAML's ReaderError), a scalar PyYAML cannot
# build, a collection as a key (unhashable), flow brackets 5000 deep (a scanner quadratic in them).
FOUND = [b"\x00", b'a: !!timestamp "x"\n', b"a: 2026-02-30\n", b"[a]: b\n", b"{}: c\n", b"[" * 5000 + b"]" * 5000]


def _property(kind: str) -> Callable[[Path], None]:
    @settings(
        max_examples=EXAMPLES,
        deadline=None,  # timed inside, with the 2 s the issue allows, not Hypothesis' 200 ms
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
        database=None,
    )
    @given(data=inputs(kind))
    def prop(tmp_path: Path, data: bytes) -> None:
        check_one(kind, tmp_path, data)

    for found in FOUND:
        prop = example(data=found)(prop)
    return prop


test_any_bytes_as_a_catalog_give_a_model_or_located_errors = _property("catalog")
test_any_bytes_as_a_runbook_give_a_model_or_located_errors = _property("runbook")
test_any_bytes_as_a_drill_scenario_give_a_model_or_located_errors = _property("scenario")
