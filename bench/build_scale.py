"""Rules build time: the mixin compiled for the demo catalog and for one with N times its services, and what
scoping the compiled rules to the catalog's selectors and cluster label then adds (console/fleet/promql.py).

    .venv/bin/python bench/build_scale.py [--times 20] [--repeat 3]

Uses the project's jsonnet binding (gojsonnet); if the C++ binding (`pip install jsonnet`) is importable
too, it is timed on the same input for comparison.
"""

from __future__ import annotations

import argparse
import importlib
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from console.catalog import load_catalog
from console.catalog.model import Catalog
from console.codegen.mixin import OUR_MIXIN, gpuops_config

SNIPPET = """
local config = std.parseJson(std.extVar('gpuops_config'));
local m = (import %s) + { _config+:: config };
{ prometheusRules: m.prometheusRules, prometheusAlerts: m.prometheusAlerts }
"""


def scaled(cat: Catalog, times: int) -> Catalog:
    """`times` copies of every service (new names), and the events naming every copy."""
    services = [s.model_copy(update={"name": f"{s.name}-{i}"}) for i in range(times) for s in cat.services]
    events = [
        e.model_copy(update={"services": [f"{n}-{i}" for i in range(times) for n in e.services]}) for e in cat.events
    ]
    return cat.model_copy(update={"services": services, "events": events})


def measure_scoping(cat: Catalog, doc: dict, repeat: int) -> tuple[float, int, int]:
    """Median seconds to scope `doc`'s expressions; their characters before and after."""
    from console.codegen.mixin import scoped

    size = lambda d: sum(len(r["expr"]) for k in d for g in d[k]["groups"] for r in g["rules"])  # noqa: E731
    times, out = [], doc
    for _ in range(repeat):
        fresh = json.loads(json.dumps(doc))
        t0 = time.perf_counter()
        out = scoped(fresh, cat)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), size(doc), size(out)


def measure(binding: str, config: dict, repeat: int) -> tuple[float, int]:
    mod = importlib.import_module(binding)
    snippet = SNIPPET % json.dumps(str(OUR_MIXIN))
    times, out = [], "{}"
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = mod.evaluate_snippet("bench", snippet, ext_vars={"gpuops_config": json.dumps(config)})
        times.append(time.perf_counter() - t0)
    doc = json.loads(out)
    LAST[binding] = doc
    return statistics.median(times), sum(len(g["rules"]) for k in doc for g in doc[k]["groups"])


LAST: dict[str, dict] = {}  # the last compiled rules per binding, for the scoping figure


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--times", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    cat = load_catalog(Path(__file__).resolve().parent.parent / "fleet.yaml")
    inputs = {"demo": cat, f"{args.times}x services": scaled(cat, args.times)}
    bindings = ["_gojsonnet"] + (["_jsonnet"] if importlib.util.find_spec("_jsonnet") else [])
    for name, c in inputs.items():
        config = gpuops_config(c)
        took = {}
        for b in bindings:
            t, rules = measure(b, config, args.repeat)
            took[b] = t
            print(
                f"{name:>16}: {len(c.services):>4} services, {rules:>5} rules:"
                f" {b} {t * 1000:.0f} ms (median of {args.repeat})"
            )
        s, before, after = measure_scoping(c, LAST[bindings[0]], args.repeat)
        print(
            f"{name:>16}: scoping the rules {s * 1000:.0f} ms = {s / took[bindings[0]]:.3f}x the {bindings[0]} compile;"
            f" expressions {before:,} -> {after:,} characters"
        )


if __name__ == "__main__":
    main()
