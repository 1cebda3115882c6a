"""Rolling-origin back-test of the readiness forecaster on the Azure LLM inference trace (2023).

    .venv/bin/python bench/forecast_backtest.py [--bucket 30] [--min-train 40] [--horizons 1 4 10]

Requests per 30 s bucket from ../shared/data/azure-llm-2023/ (conversation, code, and both together: one LLM
service serving both). At every origin from the 40th bucket on, each forecaster sees only the buckets before
it and forecasts the next ten; horizons 1, 4 and 10 buckets (30 s, 2 min, 5 min) are scored: sMAPE, MAPE
(over non-zero actuals) and the coverage of its 80 % interval. Seasonal-naive repeats the bucket one season
(5 min, --season) before; last-value repeats the last bucket. Prints whether Prophet beats both on sMAPE.
With --split, the origins are also scored in two halves (the first and the second half of the trace's
origins), so a setting chosen on one half can be judged on the other.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from console.readiness.backtest import overall, rolling_origin, trace_buckets
from console.readiness.forecast import last_value, prophet, seasonal_naive

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "azure-llm-2023"
TRACES = {
    "conversation": ("AzureLLMInferenceTrace_conv.csv",),
    "code": ("AzureLLMInferenceTrace_code.csv",),
    "both": ("AzureLLMInferenceTrace_conv.csv", "AzureLLMInferenceTrace_code.csv"),
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bucket", type=float, default=30.0, help="bucket width, seconds")
    ap.add_argument("--min-train", type=int, default=40, help="buckets before the first origin")
    ap.add_argument("--horizons", type=int, nargs="+", default=[1, 4, 10], help="buckets ahead")
    ap.add_argument("--season", type=float, default=300.0, help="seasonal-naive season, seconds")
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--split", action="store_true", help="also score each half of the origins on its own")
    args = ap.parse_args()
    forecasters = {
        "prophet": prophet,
        "seasonal-naive": lambda h, f: seasonal_naive(h, f, args.season),
        "last-value": last_value,
    }
    wins = []
    print(f"Azure LLM inference trace 2023, {args.bucket:g} s buckets, rolling origin from bucket {args.min_train}")
    for name, files in TRACES.items():
        series = trace_buckets([args.data / f for f in files], args.bucket)
        started = time.perf_counter()

        def progress(done: int, total: int, name: str = name) -> None:
            print(f"\r  {name}: origin {done}/{total}", end="", file=sys.stderr, flush=True)

        scores = rolling_origin(series, forecasters, args.horizons, min_train=args.min_train, progress=progress)
        print(file=sys.stderr)
        took = time.perf_counter() - started
        mean = sum(series.values) / len(series)
        print(f"\n{name}: {len(series)} buckets, mean {mean:.1f} requests/bucket, back-test took {took:.1f} s")
        print(f"  {'forecaster':<15} {'horizon':>8} {'n':>4} {'sMAPE %':>8} {'MAPE %':>8} {'cover80 %':>9}")
        for (fc, h), s in scores.items():
            print(f"  {fc:<15} {h * args.bucket:>7g}s {s.n:>4} {s.smape:>8.1f} {s.mape:>8.1f} {s.coverage:>9.1f}")
        totals = {fc: overall(scores, fc) for fc in forecasters}
        print("  sMAPE over every horizon: " + ", ".join(f"{fc} {v:.1f}" for fc, v in totals.items()))
        won = all(totals["prophet"] < v for fc, v in totals.items() if fc != "prophet")
        wins.append(won)
        print(f"  prophet beats both baselines on sMAPE: {'yes' if won else 'no'}")
        if args.split:
            longest = max(args.horizons)
            cut = args.min_train + (len(series) - args.min_train - longest) // 2
            halves = {
                f"origins {args.min_train}-{cut}": rolling_origin(
                    series.head(cut + longest), forecasters, args.horizons, min_train=args.min_train
                ),
                f"origins {cut + 1}-{len(series) - longest}": rolling_origin(
                    series, forecasters, args.horizons, min_train=cut + 1
                ),
            }
            for label, part in halves.items():
                print(f"  {label}: " + ", ".join(f"{fc} {overall(part, fc):.1f}" for fc in forecasters))
    print(f"\nprophet beats both on sMAPE in {sum(wins)} of {len(wins)} series")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
