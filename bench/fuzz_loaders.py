"""The loaders' property suite at length: N Hypothesis examples per loader (catalog, runbook, drill scenario),
each one any bytes, a real file edited, an alias bomb or deep nesting (tests/test_loaders_property.py).

Prints, per loader: examples, failures (none allowed: the first stops the run with Hypothesis' shrunk example),
the slowest example's CPU seconds and the most the process's peak memory rose above its memory before an
example, against the 2 s / 200 MB allowed; exits 1 if an example went past either. CPU seconds, not wall: on a
shared machine a stalled second is the machine's, not the loader's.

    .venv/bin/python bench/fuzz_loaders.py [--examples 10000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hypothesis import HealthCheck, given, settings

from tests.test_loaders_property import BYTES, LOADERS, SECONDS, check_one, inputs


def run(kind: str, examples: int, folder: Path) -> bool:
    seen: list[tuple[float, int]] = []
    worst: list[tuple[float, bytes]] = [(0.0, b"")]

    @settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(data=inputs(kind))
    def prop(data: bytes) -> None:
        seen.append(check_one(kind, folder, data))
        if seen[-1][0] > worst[0][0]:
            worst[0] = (seen[-1][0], data)

    t0 = time.perf_counter()
    prop()
    wall = time.perf_counter() - t0
    slowest = max(s for s, _ in seen)
    largest = max(b for _, b in seen)
    print(
        f"{kind:<9} {len(seen):>6} examples  0 failures  {wall:7.1f} s  slowest {slowest:.3f} CPU s (of {SECONDS:g})  "
        f"peak rise {largest / 2**20:6.1f} MiB (of {BYTES / 2**20:.0f})",
        flush=True,
    )
    print(f"          slowest input ({len(worst[0][1])} bytes): {worst[0][1][:160]!r}", flush=True)
    return slowest < SECONDS and largest < BYTES


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--examples", type=int, default=10_000, help="examples per loader (default 10000)")
    ap.add_argument("--loaders", nargs="+", choices=list(LOADERS), default=list(LOADERS), help="default: all")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="gpuops-fuzz-") as tmp:
        ok = [run(kind, args.examples, Path(tmp)) for kind in args.loaders]
    sys.exit(0 if all(ok) else 1)


if __name__ == "__main__":
    main()
