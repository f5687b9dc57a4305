"""The `energy-platform backtest` flags, declared without importing the forecaster.

Importing anything under `energy_platform.forecasting` runs its package `__init__`, which loads
torch and scikit-learn (14-20 s on 2 cores). The top-level parser only needs the flags, so they
live here; `energy_platform.forecasting.backtest_cli` runs them. The flags are a contract other
tools rely on; change them only with the forecaster issue.
"""

from __future__ import annotations

import argparse
from pathlib import Path

DEFAULT_TEST_DAYS = 364
# The keys of `energy_platform.forecasting.models.MODELS`, spelled out so the help needs no
# import (a test keeps them equal).
MODEL_NAMES = ("forecaster", "lear", "naive_d", "naive_w")


def _date(text: str):
    from datetime import date

    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a date (want YYYY-MM-DD): {text!r}") from exc


def add_backtest_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "backtest",
        help="walk-forward backtest of the forecaster and baselines on an hourly price CSV",
        description=(
            "Walk-forward backtest (Lago et al., 2021): for each test day fit on the window before "
            "it (every K days) and forecast its 24 hours; report MAE, rMAE (vs the weekly naive), "
            "sMAPE, RMSE, and pinball loss / 10-90 coverage for models with intervals."
        ),
    )
    src = p.add_mutually_exclusive_group()
    src.add_argument("--csv", type=Path, metavar="PATH", help="hourly CSV (timestamp, price, exogenous...)")
    src.add_argument("--source", choices=["sample"], help="'sample': the embedded XM data 2015-2024 (default when no --csv)")
    p.add_argument("--operating-data", type=Path, metavar="DIR",
                   help="folder with operating_daily.csv, hydrology_monthly.csv, oni_monthly.csv (Colombia's "
                        "operating data, see the README); with --csv. --source sample includes the embedded ones")
    p.add_argument("--operating-groups", default="default", metavar="G[,G]",
                   help="operating inputs of the forecaster: comma-separated subset of demand,hydrology,enso, "
                        "or 'all' or 'none'; 'default' (the default) = the groups chosen on validation when "
                        "operating data is given, none otherwise")
    p.add_argument("--test-start", type=_date, metavar="YYYY-MM-DD",
                   help=f"first test day (default: the {DEFAULT_TEST_DAYS} days ending at --test-end)")
    p.add_argument("--test-end", type=_date, metavar="YYYY-MM-DD", help="last test day (default: last complete day of the data)")
    p.add_argument("--horizon-days", type=int, default=2, metavar="H",
                   help="forecast day d from prices up to d-H (default 2, the XM case; 1 = epftoolbox protocol)")
    p.add_argument("--recalibrate-every", type=int, default=1, metavar="K", help="refit every K test days (default 1, daily, as the paper)")
    p.add_argument("--window-days", type=int, default=1456, metavar="W", help="days of history per fit, lag days included (default 1456, four years)")
    p.add_argument("--models", default=",".join(MODEL_NAMES), help="comma-separated subset of: " + ",".join(MODEL_NAMES) + " (default all)")
    p.add_argument("--seed", type=int, default=0, metavar="N", help="seed of the forecaster (default 0)")
    p.add_argument("--adaptive-band", type=float, metavar="STEP",
                   help="the forecaster's online adaptive 10-90 band: step of the update from the misses known at each "
                        "cutoff (0 = off; default: the horizon's preset)")
    p.add_argument("--country", metavar="CODE",
                   help="the market's holiday calendar, an input of the forecaster and LEAR: a country code of the "
                        "`holidays` package (CO, NO, US, DE...) or 'none' (default: ENERGY_PLATFORM_COUNTRY when set, else CO, the "
                        "calendar every recorded result used; on validation PJM did better with US, NP worse with NO: see the README)")
    p.add_argument("--price-floor", metavar="FLOOR",
                   help="the market's lowest possible price, which no forecast quantile goes below: a number or 'none' "
                        "(default: ENERGY_PLATFORM_PRICE_FLOOR when set, else 0 for data without a negative price, "
                        "none for data with one, e.g. PJM)")
    p.add_argument("--threads", type=int, metavar="N",
                   help="torch threads of the forecaster's fits (default 1; the same forecasts with any number, "
                        "measured identical on NP; 2 is ~1.2x faster alone on 2 idle cores, and ~3x slower when two "
                        "such runs share the 2 cores)")
    p.add_argument("--workers", type=int, default=1, metavar="N",
                   help="walk the test days as N contiguous segments in N processes (default 1): a daily-recalibration "
                        "run is a chain of warm refits, one core's work; each segment starts with a cold fit, as the "
                        "first test day does, so its forecasts are those of a backtest started on its first day")
    p.add_argument("--json", action="store_true", help="print the per-model metrics as a JSON list on stdout")
    p.add_argument("--forecasts-out", type=Path, metavar="PATH", help="write one row per test hour and model (.csv or .parquet)")
    p.set_defaults(func=_run_backtest)
    return p


def _run_backtest(args: argparse.Namespace) -> int:
    from energy_platform.forecasting.backtest_cli import run

    return run(args)
