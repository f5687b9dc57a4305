"""Offline study (issue 12, session 7): does an online correction of the issued median help?

The median's weekly refit lags a market whose level moves within a week (a dry spell, the rains
coming back). Two post-processes that only read what is known at each cutoff (target days
<= t - H, as the adaptive band), replayed on saved validation forecasts
(`bench/validate_forecaster.py --naive --forecasts-out`):

- `combine K`: each day, the weight w (0..1, step 0.1) of w * forecaster + (1 - w) * naive_d
  with the lowest MAE over the last K known days (the weekly refit's blend weight, daily).
- `bias K`: the forecaster's median plus the median of its last K known days' errors per hour.
- `c3 ... K`: `combine K` over three forecasts (+ naive_w, or the mean of the last 7 known days).
- `night combine K`: `combine K` on hours 0-5 only (where the forecaster loses to naive_d).

    .venv/bin/python bench/online_median_offline.py /tmp/seeds/fc/co_val18_none_0.parquet ...

Validation years only (2018, 2022): never point it at a test period's forecasts.
"""

from __future__ import annotations

import sys
from datetime import date, timedelta

import numpy as np
import polars as pl

HORIZON = 2
TEST_PERIODS = [(date(2019, 1, 1), date(2020, 12, 31)), (date(2023, 1, 1), date(2024, 12, 31))]
GRID = np.round(np.arange(0, 1.01, 0.1), 1)


def arrays(fc: pl.DataFrame) -> tuple[list[date], np.ndarray, np.ndarray, np.ndarray]:
    f = fc.filter(pl.col("model") == "forecaster").sort("target_date", "hour")
    n_ = fc.filter(pl.col("model") == "naive_d").sort("target_date", "hour")
    days = f["target_date"].unique(maintain_order=True).to_list()
    for lo, hi in TEST_PERIODS:
        assert days[-1] < lo or days[0] > hi, f"{days[0]}..{days[-1]} overlaps the test period {lo}..{hi}"
    n = len(days)
    return days, f["p50"].to_numpy().reshape(n, 24), n_["forecast"].to_numpy().reshape(n, 24), f["actual"].to_numpy().reshape(n, 24)


def known(days: list[date], i: int, k: int) -> list[int]:
    """Indices of the last k days whose actuals are known at day i's cutoff."""
    cutoff = days[i] - timedelta(days=HORIZON)
    idx = [j for j in range(i) if days[j] <= cutoff]
    return idx[-k:]


def online(days, f, k: int, issue) -> np.ndarray:
    """Replay a post-process day by day: `issue(i, idx)` gives day i's forecast from the last k
    days known at its cutoff (`idx`); the forecaster's own until 7 (or k) days are known."""
    out = f.copy()
    for i in range(len(days)):
        idx = known(days, i, k)
        if len(idx) >= min(k, 7):
            out[i] = issue(i, idx)
    return out


def combine(days, f, nv, a, k: int) -> np.ndarray:
    def issue(i, idx):
        w = GRID[int(np.argmin([np.nanmean(np.abs(w * f[idx] + (1 - w) * nv[idx] - a[idx])) for w in GRID]))]
        return w * f[i] + (1 - w) * nv[i]
    return online(days, f, k, issue)


def combine3(days, f, nv, a, k: int, extra=None) -> np.ndarray:
    """As `combine`, over the simplex of (forecaster, naive_d, extra) weights, step 0.1."""
    grid = [(w1, w2, round(1 - w1 - w2, 1)) for w1 in GRID for w2 in GRID if w1 + w2 <= 1.0001]

    def issue(i, idx):
        errs = [np.nanmean(np.abs(w1 * f[idx] + w2 * nv[idx] + w3 * extra[idx] - a[idx])) for w1, w2, w3 in grid]
        w1, w2, w3 = grid[int(np.argmin(errs))]
        return w1 * f[i] + w2 * nv[i] + w3 * extra[i]
    return online(days, f, k, issue)


def bias(days, f, nv, a, k: int) -> np.ndarray:
    return online(days, f, k, lambda i, idx: f[i] + np.nanmedian(a[idx] - f[idx], axis=0))


def night_only(days, f, nv, a, k: int, hours: int = 6) -> np.ndarray:
    """`combine K` on hours 0..hours-1 only; the other hours are the forecaster's."""
    out = f.copy()
    out[:, :hours] = combine(days, f[:, :hours], nv[:, :hours], a[:, :hours], k)
    return out


def main(paths: list[str]) -> int:
    from energy_platform.forecasting.features import daily_panel
    from energy_platform.sources import SampleSource

    panel = daily_panel(SampleSource().frame)
    print("| file | hours 0-5: forecaster / naive_d MAE | hours 6-23 | " + " | ".join(
        ["base", "combine 7", "combine 14", "combine 28", "bias 14", "bias 28", "c3 naive_w 28", "c3 mean7 28",
         "night combine 28", "night combine 56"]) + " |")
    print("|---|---|---|" + "---|" * 10)
    for path in paths:
        days, f, nv, a = arrays(pl.read_parquet(path))
        idx = panel.index_of(days)
        naive_w = panel.rows(panel.prices, idx - 7)
        mean7 = np.nanmean(np.stack([panel.rows(panel.prices, idx - j) for j in range(HORIZON, HORIZON + 7)]), axis=0)
        runs = [f, combine(days, f, nv, a, 7), combine(days, f, nv, a, 14), combine(days, f, nv, a, 28),
                bias(days, f, nv, a, 14), bias(days, f, nv, a, 28),
                combine3(days, f, nv, a, 28, naive_w), combine3(days, f, nv, a, 28, mean7),
                night_only(days, f, nv, a, 28), night_only(days, f, nv, a, 56)]
        naive_mae = np.nanmean(np.abs(nv - a))
        night = np.nanmean(np.abs(f[:, :6] - a[:, :6])) / np.nanmean(np.abs(nv[:, :6] - a[:, :6]))
        day = np.nanmean(np.abs(f[:, 6:] - a[:, 6:])) / np.nanmean(np.abs(nv[:, 6:] - a[:, 6:]))
        cells = [f"{night:.3f}", f"{day:.3f}"] + [f"{np.nanmean(np.abs(p - a)) / naive_mae:.4f}" for p in runs]
        print(f"| {path.rsplit('/', 1)[-1]} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
