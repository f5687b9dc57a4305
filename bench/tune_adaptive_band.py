"""Offline tuning of the adaptive band (issue 12, session 6) on saved validation forecasts.

The adaptive band is a post-process of the issued forecasts, so one walk-forward run per
validation year (bench/validate_forecaster.py --forecasts-out) serves every setting: each is
replayed here exactly as the backtest applies it (`adaptive_band.adjust_days`, misses known at
each cutoff only, the same plausibility bounds), and scored with the platform's one scoring.

    .venv/bin/python bench/tune_adaptive_band.py --forecasts co_val18=/tmp/aci/val18.parquet \
        --forecasts co_val22=/tmp/aci/val22.parquet [--append]

Validation years only (2018, 2022): never point it at a test period's forecasts.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl

from energy_platform.forecasting import metrics
from energy_platform.forecasting.adaptive_band import AdaptiveBand, adjust_days
from energy_platform.forecasting.features import daily_panel
from energy_platform.forecasting.plausibility import lowest_before_each
from energy_platform.scoring import score
from energy_platform.sources import SampleSource

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "results" / "validation.jsonl"
HORIZON = 2
FLOOR = 0.0
TEST_PERIODS = [(date(2019, 1, 1), date(2020, 12, 31)), (date(2023, 1, 1), date(2024, 12, 31))]
GRID = [AdaptiveBand()] + [AdaptiveBand(step=s, mode=m, sides=sides) for sides in (False, True)
                           for m in ("scaled", "relative") for s in (0.02, 0.05, 0.1, 0.2, 0.3, 0.5)]


def evaluate(fc: pl.DataFrame, panel, settings: AdaptiveBand) -> dict:
    f = fc.filter(pl.col("model") == "forecaster").sort("target_date", "hour")
    days = f["target_date"].unique(maintain_order=True).to_list()
    for lo, hi in TEST_PERIODS:
        assert days[-1] < lo or days[0] > hi, f"{days[0]}..{days[-1]} overlaps the test period {lo}..{hi}"
    n = len(days)
    q = f.select("p10", "p50", "p90").to_numpy().reshape(n, 24, 3)
    actual = f["actual"].to_numpy().reshape(n, 24)
    lowest = lowest_before_each(panel.start, panel.prices, days, HORIZON)
    res = adjust_days(days, q, actual, HORIZON, settings, lowest=lowest, floor=FLOOR)
    idx = panel.index_of(days)
    naive_w = panel.rows(panel.prices, idx - 7).ravel()
    out = f.with_columns(pl.Series("p10", res.q[..., 0].ravel()), pl.Series("p90", res.q[..., 2].ravel()),
                         pl.Series("naive_w", naive_w))
    s = score(out, by=["model"]).row(0, named=True)
    by_q = metrics.coverage_by_quarter(days, actual, res.q[..., 0], res.q[..., 2])
    inside = (actual >= res.q[..., 0]) & (actual <= res.q[..., 2])
    months = np.array([d.month for d in days])
    by_month = [float(inside[months == m].mean()) for m in np.unique(months)]
    daily = inside.mean(axis=1)
    rolling = np.convolve(daily, np.ones(28) / 28, mode="valid")  # every 28-day stretch
    return {
        "mae": s["mae"], "coverage_month_min": min(by_month), "coverage_month_max": max(by_month),
        "coverage_28d_min": float(rolling.min()), "coverage_28d_max": float(rolling.max()), "rmae": s["rmae"], "pinball": s["pinball"], "coverage_80": s["coverage_80"],
        "coverage_80_by_quarter": by_q,
        "band_width": float(np.mean(res.q[..., 2] - res.q[..., 0])),
        "below_floor_share": metrics.below_floor_share(res.q[..., 0], res.q[..., 1], np.repeat(lowest, 24), FLOOR),
        "jaggedness_ratio": metrics.jaggedness_ratio(actual, res.q[..., 1]),
        "theta_low_mean": float(res.theta[:, 0].mean()), "theta_high_mean": float(res.theta[:, 1].mean()),
        "theta_min": float(res.theta.min()), "theta_max": float(res.theta.max()),
    }


def ok(r: dict) -> bool:
    return abs(r["coverage_80"] - 0.8) <= 0.03 and all(abs(v - 0.8) <= 0.08 for v in r["coverage_80_by_quarter"].values())


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--forecasts", action="append", required=True, help="PERIOD=PATH of validate_forecaster.py --forecasts-out")
    ap.add_argument("--append", action="store_true", help="append one row per setting and period to validation.jsonl")
    args = ap.parse_args()
    panel = daily_panel(SampleSource().frame)
    runs = {k: pl.read_parquet(v) for k, v in (a.split("=", 1) for a in args.forecasts)}
    rows = []
    for st in GRID:
        label = "base" if not st.enabled else f"{st.mode}{' per side' if st.sides else ''} step {st.step}"
        line = [label]
        for period, fc in runs.items():
            r = evaluate(fc, panel, st)
            qs = list(r["coverage_80_by_quarter"].values())
            line += [f"{r['coverage_80']:.3f}", f"{min(qs):.3f}-{max(qs):.3f}",
                     f"{r['coverage_month_min']:.3f}-{r['coverage_month_max']:.3f}",
                     f"{r['coverage_28d_min']:.3f}-{r['coverage_28d_max']:.3f}", f"{r['band_width']:.1f}",
                     f"{r['pinball']:.3f}", f"{r['mae']:.2f}", "yes" if ok(r) else "no"]
            if args.append:
                row = {"period": period, "label": f"s6:aci {label}", "offline": True, "model": "forecaster",
                       "adaptive_band": {"step": st.step, "mode": st.mode, "sides": st.sides, "min_days": st.min_days},
                       "recalibrate_every": 7, "window_days": 1092,
                       **{k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()}}
                row["coverage_80_by_quarter"] = {k: round(v, 3) for k, v in r["coverage_80_by_quarter"].items()}
                with OUT.open("a") as fh:
                    fh.write(json.dumps(row) + "\n")
        rows.append(line)
    head = ["setting"]
    for period in runs:
        head += [f"{period} cov", "quarters", "months", "any 28 days", "width", "pinball", "MAE", "targets"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for line in rows:
        print("| " + " | ".join(line) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
