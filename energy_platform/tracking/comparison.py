"""Challenger, persistence and champion scored on the same days, none of which either model saw.

The challenger's scores come from its walk-forward backtest (each day forecast by a refit that
ended before it). Persistence (naive_d, the latest known day) is computed from the prices. The
champion is the frozen registered artifact, run only on the backtest days whose data cutoff
falls after its training data ended (a baseline was never trained: every day counts): exactly
the question a promotion asks, "would the new model have served these days better than the
one serving, and better than doing nothing clever at all".
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date

import polars as pl

from energy_platform.scoring import score


@dataclass(frozen=True)
class Comparison:
    """rMAEs (against the weekly naive) over `days` target days; None where not scored."""

    days: int
    first_day: date | None
    challenger_rmae: float | None
    persistence_rmae: float | None = None
    champion_rmae: float | None = None
    champion_problem: str | None = None  # why the champion could not be scored on these days


def fresh_days(data_end: date, champion_data_end: date, horizon_days: int) -> int:
    """How many target days, up to `data_end`, the gate can compare a new challenger on: those
    whose cutoff (target - H) is after the champion's training data, as `fresh_target_days`
    selects them (a backtest shorter than that finds fewer)."""
    return max((data_end - champion_data_end).days - horizon_days, 0)


def fresh_target_days(days: list[date], champion_data_end: date | None, horizon_days: int) -> list[date]:
    if champion_data_end is None:  # a baseline: nothing was trained, every day is out of sample
        return list(days)
    return [d for d in days if (d - champion_data_end).days > horizon_days]


def persistence_forecasts(prices: pl.DataFrame, horizon_days: int) -> pl.DataFrame:
    """naive_d for every day the prices allow: `target_date`, `hour`, `forecast`."""
    return prices.select(
        (pl.col("date") + pl.duration(days=horizon_days)).alias("target_date"), "hour", pl.col("price").alias("forecast")
    )


def compare(backtest: pl.DataFrame, prices: pl.DataFrame, days: list[date], horizon_days: int,
            champion: pl.DataFrame | None = None, champion_problem: str | None = None) -> Comparison:
    """Score the challenger's backtest rows (`forecaster`), persistence and, if given, the
    champion's forecasts on `days`, each relative to the weekly naive rows of that backtest."""
    if not days:
        return Comparison(0, None, None, champion_problem=champion_problem)
    rows = backtest.filter(pl.col("target_date").is_in(days))
    wide = (
        rows.filter(pl.col("model") == "forecaster").select("target_date", "hour", "actual", pl.col("forecast").alias("challenger"))
        .join(rows.filter(pl.col("model") == "naive_w").select("target_date", "hour", pl.col("forecast").alias("naive")),
              on=["target_date", "hour"])
        .join(persistence_forecasts(prices, horizon_days).rename({"forecast": "persistence"}), on=["target_date", "hour"], how="left")
    )
    if champion is not None:
        wide = wide.join(champion.select("target_date", "hour", pl.col("forecast").alias("champion")), on=["target_date", "hour"])
    wide = wide.filter(pl.col("actual").is_not_null())
    if wide.is_empty():
        return Comparison(0, None, None, champion_problem=champion_problem)
    scored = [c for c in ("challenger", "persistence", "champion") if c in wide.columns]
    long = pl.concat([
        wide.select("target_date", "hour", "actual", pl.col("naive").alias("naive_w"), pl.col(c).alias("forecast"),
                    pl.lit(c).alias("model"))
        for c in scored
    ])
    rmaes = dict(score(long, by=["model"]).select("model", "rmae").iter_rows())

    def rmae(col: str) -> float | None:
        if col not in scored or wide[col].null_count():
            return None  # a model missing an hour is not comparable on these days
        value = rmaes[col]
        return value if value is not None and math.isfinite(value) else None

    return Comparison(
        days=wide["target_date"].n_unique(),
        first_day=min(days),
        challenger_rmae=rmae("challenger"),
        persistence_rmae=rmae("persistence"),
        champion_rmae=rmae("champion"),
        champion_problem=champion_problem,
    )
