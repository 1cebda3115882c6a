"""Back-test of the peak forecasters on days-long real demand series (NAB): does the default that readiness
sizes on beat the baselines, and is its P95 calibrated?

    .venv/bin/python bench/forecast_peaks.py [--lead 1d] [--lead 7d] [--forecasters ...]

Series (../shared/data/nab-2015/): nyc_taxi.csv in 30-minute buckets and the five Twitter_volume_*.csv in
15-minute buckets, 28 test days each; the ELB request count in 15-minute buckets, 5 test days (it holds 14).
Each test day's peak is forecast from only the buckets that ended `lead` before the day's end, as a P95.
Prints, per lead, the table of pinball95 (scaled by the mean daily peak), coverage, median over-provision,
days under, MASE, the seconds each series took, and whether the default beats naive1d, naive7d and max7 on
pinball95 (taxi, and at least 4 of the 5 Twitter series) with coverage in [88 %, 99 %] on each 28-day series.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from console.readiness.forecast import resample
from console.readiness.peak_backtest import BacktestError, backtest
from console.readiness.peaks import DEFAULT
from console.readiness.series_file import read_points
from console.timefmt import parse_duration

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "nab-2015"
TWITTER = [f"Twitter_volume_{s}.csv" for s in ("AAPL", "AMZN", "FB", "GOOG", "IBM")]
SERIES = (
    [("nyc_taxi.csv", "30m", 28)] + [(f, "15m", 28) for f in TWITTER] + [("elb_request_count_8c0756.csv", "15m", 5)]
)
BASELINES = ("naive1d", "naive7d", "max7")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lead", action="append", help="lead(s), e.g. 1d 7d (default: both)")
    ap.add_argument("--forecasters", default=f"{DEFAULT},{','.join(BASELINES)}")
    ap.add_argument("--data", type=Path, default=DATA)
    args = ap.parse_args()
    names = args.forecasters.split(",")
    for lead in args.lead or ["1d", "7d"]:
        print(f"\n== lead {lead}: forecast made {lead} before each test day's end; * the default")
        print(f"{'series':<30} {'bucket':>6} {'forecaster':<15} {'pinball95':>9} {'coverage':>8} "
              f"{'over_med':>8} {'under':>6} {'MASE':>6} {'fallbk':>6} {'took s':>6}")  # fmt: skip
        wins: dict[str, bool] = {}
        calibrated: dict[str, bool] = {}
        for file, bucket, days in SERIES:
            points = read_points(args.data / file)
            series = resample([(p.t, p.value) for p in points], parse_duration(bucket))
            started = time.perf_counter()
            try:
                scores = backtest(series, names, days, parse_duration(lead))
            except BacktestError as e:
                print(f"{file:<30} {bucket:>6} not back-tested: {e}")
                continue
            took = time.perf_counter() - started
            for n, s in scores.items():
                mase = "-" if s.mase is None else f"{s.mase:.3f}"
                print(f"{file:<30} {bucket:>6} {n + (' *' if n == DEFAULT else ''):<15} {s.pinball95:>9.4f} "
                      f"{100 * s.coverage:>7.1f}% {s.over_median:>8.2f} {s.under_days:>3}/{s.test_days:<2} "
                      f"{mase:>6} {s.fallback_days:>6} {took:>6.1f}")  # fmt: skip
            if DEFAULT in scores and all(b in scores for b in BASELINES):
                wins[file] = all(scores[DEFAULT].pinball95 < scores[b].pinball95 for b in BASELINES)
                if days == 28:
                    calibrated[file] = 0.88 <= scores[DEFAULT].coverage <= 0.99
        if wins:
            twitter = sum(wins.get(f, False) for f in TWITTER)
            print(f"default beats {', '.join(BASELINES)} on pinball95: taxi {'yes' if wins['nyc_taxi.csv'] else 'no'}"
                  f", Twitter {twitter}/5; ELB {'yes' if wins.get(SERIES[-1][0]) else 'no'}")  # fmt: skip
            bad = [f for f, ok in calibrated.items() if not ok]
            print(f"default coverage in [88 %, 99 %] on the 28-day series: {len(calibrated) - len(bad)}/"
                  f"{len(calibrated)}" + (f" (not: {', '.join(bad)})" if bad else ""))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
