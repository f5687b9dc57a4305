"""`energy-platform backtest`: walk-forward evaluation of the forecaster and baselines.

The flags live in `energy_platform.backtest_args` (so `--help` loads no torch); they are a
contract other tools rely on; change them only with the forecaster issue.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from datetime import date, timedelta

import numpy as np
import polars as pl

from energy_platform.backtest_args import DEFAULT_TEST_DAYS, add_backtest_parser
from energy_platform.forecasting.backtest import backtest
from energy_platform.forecasting.errors import ForecastInputError
from energy_platform.forecasting.features import daily_panel
from energy_platform.forecasting.models import MODELS, make_model


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """The flags (declared in `energy_platform.backtest_args`), run here."""
    p = add_backtest_parser(subparsers)
    p.set_defaults(func=run)
    return p


def _operating(args: argparse.Namespace):
    """The operating data the run reads: --operating-data, else the embedded sample's with the
    embedded prices, else none (a CSV market without operating data: NP, PJM)."""
    from energy_platform.forecasting.operating_features import OperatingData
    from energy_platform.sources import SourceError
    from energy_platform.sources.operating import FileOperatingSource, folder_paths, get_operating_source

    try:
        if args.operating_data:
            paths = folder_paths(args.operating_data, "--operating-data")
            return OperatingData.from_source(FileOperatingSource(paths, name=f"csv:{args.operating_data}"))
        if not args.csv:
            return OperatingData.from_source(get_operating_source("sample"))
    except SourceError as exc:
        raise ForecastInputError(str(exc)) from exc
    return None


def _groups(args: argparse.Namespace, operating) -> tuple[str, ...]:
    from energy_platform.forecasting.models import default_operating_groups
    from energy_platform.forecasting.operating_features import parse_groups

    if args.operating_groups == "default":
        return default_operating_groups(operating)
    groups = parse_groups(args.operating_groups)
    available = operating.available_groups() if operating is not None else ()
    lacking = [g for g in groups if g not in available]
    if lacking:
        raise ForecastInputError(
            f"--operating-groups {','.join(lacking)}: no such operating data "
            "(give --operating-data DIR, or --source sample)"
        )
    return groups


def _floor(args: argparse.Namespace, prices: pl.DataFrame) -> float | None:
    """The market floor of the run: --price-floor, else ENERGY_PLATFORM_PRICE_FLOOR, else 0 (the
    bolsa) unless the data has a negative price. A floor that the data goes below is refused: it
    would clamp every forecast of those hours (a 0 floor on a market with negative prices)."""
    from energy_platform.settings import _price_floor

    text = args.price_floor if args.price_floor is not None else (os.environ.get("ENERGY_PLATFORM_PRICE_FLOOR") or "").strip() or None
    lowest = prices["price"].min()
    if text is None:  # unset or empty: the data's (helper U, session 21: empty had become 0)
        return 0.0 if lowest is None or lowest >= 0 else None
    try:
        floor = _price_floor(text)
    except ValueError as exc:  # the message names the variable; the flag, when the flag gave it
        named = "--price-floor" if args.price_floor is not None else "ENERGY_PLATFORM_PRICE_FLOOR"
        raise ForecastInputError(str(exc).replace("ENERGY_PLATFORM_PRICE_FLOOR", named)) from None
    if floor is not None and lowest is not None and lowest < floor:
        first = prices.filter(pl.col("price") < floor).row(0, named=True)
        raise ForecastInputError(
            f"the data has prices below the price floor {floor:g} (first {first['ts']}: {first['price']:g}): "
            "give --price-floor none (or the market's real floor)"
        )
    return floor


def _country(args: argparse.Namespace) -> str:
    """The holiday calendar: --country, else the platform's (`ENERGY_PLATFORM_COUNTRY`), else
    Colombia's, which every recorded result used (NP and PJM included: on their 2016-H1 validation,
    seed 0, rMAE NP 0.4039 with CO, 0.4108 with NO, 0.4173 with none; PJM 0.5419 with CO, 0.5299
    with US, 0.5330 with none)."""
    from energy_platform.forecasting.features import check_calendar
    from energy_platform.settings import parse_country

    country = parse_country(args.country or os.environ.get("ENERGY_PLATFORM_COUNTRY") or "CO")
    try:
        check_calendar(country)  # an unknown code fails here, before any fit
    except ForecastInputError as exc:
        raise ForecastInputError(f"--country: {exc} (a country code of the `holidays` package, or none)") from None
    return country


def _threads(args: argparse.Namespace) -> int:
    """Torch threads per fit, default 1. The matrix products split across 2 cores without changing
    a digit (NP, 2016-12-27 + 6 warm refits: 1.78 -> 1.47 s per refit), but two such runs side by
    side on 2 cores spin in each other's way: Colombia's two test periods with 2 threads each had
    not finished after 1270 CPU-s each, against ~8 min wall with one thread each (session 12)."""
    threads = args.threads if getattr(args, "threads", None) is not None else 1
    if threads < 1:
        raise ForecastInputError(f"--threads must be at least 1, got {threads}")
    return threads


def _load(args: argparse.Namespace):
    from energy_platform.sources import SampleSource, SourceError, read_hourly_csv

    try:
        # Any market's file: no price floor (PJM has negative hours); NaN, inf, empty and
        # absurd prices are still refused with file, line and problem.
        return read_hourly_csv(args.csv, floor=None) if args.csv else SampleSource().frame
    except SourceError as exc:
        raise ForecastInputError(str(exc)) from exc


def run(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except ForecastInputError as exc:
        print(f"energy-platform backtest: error: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    unknown = [n for n in names if n not in MODELS]
    if not names or unknown:
        raise ForecastInputError(f"unknown model(s) {unknown or names}: choose from {', '.join(MODELS)}")
    names = list(dict.fromkeys(names))  # a model named twice is run once
    if not 0 <= args.seed < 2**32:
        raise ForecastInputError(f"--seed must be a whole number from 0 to {2**32 - 1}, got {args.seed}")
    if args.horizon_days < 1:
        raise ForecastInputError(f"--horizon-days must be at least 1, got {args.horizon_days}")
    if args.forecasts_out and args.forecasts_out.suffix not in (".csv", ".parquet"):
        raise ForecastInputError(f"--forecasts-out must end in .csv or .parquet: {args.forecasts_out}")
    operating = _operating(args)
    groups = _groups(args, operating)
    prices = _load(args)
    floor = _floor(args, prices)
    panel = daily_panel(prices, operating if groups else None)
    complete = np.flatnonzero(~np.isnan(panel.prices).any(axis=1))
    if complete.size == 0:
        raise ForecastInputError("the data has no complete day of 24 prices")
    end = args.test_end or panel.day(int(complete[-1]))
    start = args.test_start or end - timedelta(days=DEFAULT_TEST_DAYS - 1)
    overrides: dict[str, object] = {"operating_groups": groups, "price_floor": floor}
    if getattr(args, "adaptive_band", None) is not None:
        if not 0 <= args.adaptive_band < math.inf:  # nan too
            raise ForecastInputError(f"--adaptive-band must be a number >= 0, got {args.adaptive_band}")
        overrides["adaptive_band_step"] = args.adaptive_band
    overrides["threads"] = _threads(args)
    country = _country(args)
    models = [make_model(n, horizon_days=args.horizon_days, seed=args.seed, country=country,
                         **(overrides if n == "forecaster" else {})) for n in names]
    t0 = time.perf_counter()

    def progress(done: int, total: int, day: date) -> None:
        if done == total or done % 7 == 0:
            el = time.perf_counter() - t0
            eta = el / done * (total - done)
            print(f"\r  {day}  {done}/{total} days  {el:6.0f}s elapsed  ~{eta:5.0f}s left", end="", file=sys.stderr, flush=True)
            if done == total:
                print(file=sys.stderr)

    result = backtest(
        panel,
        models,
        start,
        end,
        recalibrate_every=args.recalibrate_every,
        window_days=args.window_days,
        progress=None if args.json else progress,
        workers=args.workers,  # backtest refuses fewer than 1 (exit 2, as every ForecastInputError)
    )
    if args.forecasts_out:
        args.forecasts_out.parent.mkdir(parents=True, exist_ok=True)
        if args.forecasts_out.suffix == ".parquet":
            result.forecasts.write_parquet(args.forecasts_out)
        else:
            result.forecasts.write_csv(args.forecasts_out)
    if args.json:
        print(json.dumps(result.metrics))
    else:
        print(f"backtest {start}..{end}, H={args.horizon_days}, refit every {args.recalibrate_every} d, window {args.window_days} d, "
              f"operating groups: {','.join(groups) or 'none'}, price floor: {'none' if floor is None else f'{floor:g}'}, holidays: {country}")
        print(result.table())
    return 0


def main(argv: list[str] | None = None) -> int:
    """Standalone entry (`python -m energy_platform.forecasting.backtest_cli ...`), same flags."""
    parser = argparse.ArgumentParser(prog="energy-platform")
    register(parser.add_subparsers(dest="command", required=True))
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] != "backtest":
        argv = ["backtest", *argv]
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
