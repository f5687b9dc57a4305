"""Validation runs: how the forecaster's settings were chosen, on periods before every test start.

Each run is a walk-forward backtest of the forecaster with a variant of its settings on a
validation period that ends before the benchmark's test period starts (NP/PJM test from
2016-12-27, Colombia from 2023-01-01). One JSON line per run is appended to
bench/results/validation.jsonl, so the table in forecaster.md can be rebuilt and re-checked.

    .venv/bin/python bench/validate_forecaster.py --period np_val --variant '{"batch_size": 64}'
    .venv/bin/python bench/validate_forecaster.py --period co_val --variant '{}' --baselines

Never point this at a test period: that is what bench_forecaster.py is for, run once.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import date
from pathlib import Path

from energy_platform.forecasting.backtest import backtest
from energy_platform.forecasting.features import daily_panel
from energy_platform.forecasting.models import make_model
from energy_platform.forecasting.operating_features import OperatingData, parse_groups
from energy_platform.sources import SampleSource, read_hourly_csv
from energy_platform.sources.operating import get_operating_source

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "results" / "validation.jsonl"
EPF = ROOT.parent / "shared" / "data" / "epftoolbox"  # the shared data beside the checkout

PERIODS: dict[str, dict] = {
    # NP and PJM: all the history before 2016 trains the first day (1092-day window).
    # No market floor on the epftoolbox files (PJM has negative hours): ENERGY_PLATFORM_PRICE_FLOOR=none.
    "np_val": dict(csv=EPF / "NP.csv", start="2016-01-04", end="2016-06-30", horizon=1, window=1092, floor=None),
    "pjm_val": dict(csv=EPF / "PJM.csv", start="2016-01-04", end="2016-06-30", horizon=1, window=1092, floor=None),
    # Colombia: 2022 (session 1's validation year).
    "co_val": dict(csv=None, start="2022-01-01", end="2022-12-31", horizon=2, window=1456),
    # Regime changes: the dry 2019-20 (prices doubled in early 2020) and El Nino 2015-16 (the
    # data starts 2015-01-01, so only a 270-day window fits before it).
    "co_2020": dict(csv=None, start="2019-07-01", end="2020-06-30", horizon=2, window=1456),
    "co_nino": dict(csv=None, start="2015-10-01", end="2016-09-30", horizon=2, window=270),
    # Issue 12 (trust): the year before each Colombia test period (2019-20 and 2023-24), with the
    # benchmark's protocol there: H=2, weekly recalibration, 1092-day window, floor 0.
    "co_2018": dict(csv=None, start="2018-01-01", end="2018-12-31", horizon=2, window=1092, every=7, test_start="2019-01-01"),
    "co_2022": dict(csv=None, start="2022-01-01", end="2022-12-31", horizon=2, window=1092, every=7),
    # Issue 12's operating-data ablation: the validation year before each Colombian test period
    # (2019-20 and 2023-24), H=2, weekly recalibration, 1092-day window.
    "co_val18": dict(csv=None, start="2018-01-01", end="2018-12-31", horizon=2, window=1092, recalibrate=7),
    "co_val22": dict(csv=None, start="2022-01-01", end="2022-12-31", horizon=2, window=1092, recalibrate=7),
    # Session 7: El Nino 2015-16 with the benchmark's weekly recalibration, a third validation
    # year for choices made on 2018 and 2022 (only a 270-day window fits after the data's start).
    "co_nino7": dict(csv=None, start="2015-10-01", end="2016-09-30", horizon=2, window=270, recalibrate=7),
}
# Test periods: never evaluated here (the lead runs them once, bench_forecaster.py).
TEST_PERIODS = {"co": [(date(2019, 1, 1), date(2020, 12, 31)), (date(2023, 1, 1), date(2024, 12, 31))]}
TEST_STARTS = {"np": date(2016, 12, 27), "pjm": date(2016, 12, 27), "co": date(2023, 1, 1)}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--period", choices=PERIODS, required=True)
    ap.add_argument("--variant", default="{}", help="JSON overrides of MLPConfig")
    ap.add_argument("--window-days", type=int, help="override the period's training window")
    ap.add_argument("--baselines", action="store_true", help="also run naive_d and lear")
    ap.add_argument("--label", default="")
    ap.add_argument("--workers", type=int, default=1, help="walk the period as N segments in N processes (backtest --workers)")
    ap.add_argument("--forecasts-out", type=Path, help="also write the hourly forecasts (parquet), for analysis")
    ap.add_argument("--groups", default="none", help="operating groups of the forecaster: none, all or demand,hydrology,enso")
    ap.add_argument("--naive", action="store_true", help="also run naive_d (for MAE / naive_d MAE)")
    args = ap.parse_args()
    p = PERIODS[args.period]
    end = date.fromisoformat(p["end"])
    start = date.fromisoformat(p["start"])
    if "recalibrate" in p or "every" in p:  # issue 12's periods lie outside every test period
        for lo, hi in TEST_PERIODS.get(args.period.split("_")[0], []):
            assert end < lo or start > hi, f"{args.period} overlaps the test period {lo}..{hi}"
    else:
        assert end < TEST_STARTS[args.period.split("_")[0]], "validation must end before the test period"
    frame = read_hourly_csv(p["csv"], floor=None) if p["csv"] else SampleSource().frame
    groups = parse_groups(args.groups)
    operating = OperatingData.from_source(get_operating_source("sample")) if groups else None
    panel = daily_panel(frame, operating)
    variant = json.loads(args.variant)
    floor = {"price_floor": p["floor"]} if "floor" in p and "price_floor" not in variant else {}
    models = [make_model("forecaster", horizon_days=p["horizon"], operating_groups=groups, **floor, **{"seed": 0, **variant})]  # a variant may set the seed
    if args.baselines:
        models += [make_model(n, horizon_days=p["horizon"]) for n in ("naive_d", "lear")]
    elif args.naive:
        models += [make_model("naive_d", horizon_days=p["horizon"])]
    window = args.window_days or p["window"]
    t0 = time.perf_counter()
    every = p.get("recalibrate", p.get("every", 1))
    result = backtest(panel, models, start, end, recalibrate_every=every, window_days=window, workers=args.workers)
    wall = time.perf_counter() - t0
    if args.forecasts_out:
        result.forecasts.write_parquet(args.forecasts_out)
    for m in result.metrics:
        is_fc = m["model"] == "forecaster"
        row = {"period": args.period, "label": args.label, "variant": variant if is_fc else {},
               "operating_groups": list(groups) if is_fc else [],
               "config": models[0].config.to_dict() if is_fc else None,
               "window_days": window, "model": m["model"], "rmae": round(m["rmae"], 4), "mae": round(m["mae"], 3),
               "coverage_80": round(m["coverage_80"], 3) if "coverage_80" in m else None,
               "fit_s_per_fit": m["fit_seconds_per_fit"], "wall_s": round(wall, 1), "recalibrate_every": every,
               **({"workers": args.workers} if args.workers > 1 else {})}
        for k in ("jaggedness_ratio", "below_floor_share", "seed_spread"):
            if k in m:
                row[k] = round(m[k], 4)
        if "coverage_80_by_quarter" in m:
            row["coverage_80_by_quarter"] = {q: round(v, 3) for q, v in m["coverage_80_by_quarter"].items()}
        print(json.dumps(row))
        with OUT.open("a") as f:
            f.write(json.dumps(row) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
