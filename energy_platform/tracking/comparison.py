"""Champion against challenger on the same days, none of which either model was trained on.

The challenger's scores come from its walk-forward backtest (each day forecast by a refit that
ended before it). The champion is the frozen registered model, scored only on the backtest days
whose data cutoff falls after its training data ended: exactly the question a promotion asks,
"would the new model have served these days better than the one serving".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import polars as pl

from energy_platform.forecasting.metrics import mae
from energy_platform.serving import forecast_day


@dataclass(frozen=True)
class Comparison:
    days: int
    first_day: date | None
    challenger_rmae: float | None
    champion_rmae: float | None


def fresh_days(data_end: date, champion_data_end: date, horizon_days: int) -> int:
    """How many target days, up to `data_end`, the gate can compare a new challenger on: those
    whose cutoff (target - H) is after the champion's training data, as `compare_on_fresh_days`
    selects them (a backtest shorter than that finds fewer)."""
    return max((data_end - champion_data_end).days - horizon_days, 0)


def compare_on_fresh_days(
    prices: pl.DataFrame,
    champion_model,
    champion_data_end: date,
    horizon_days: int,
    history_days: int,
    challenger_backtest: pl.DataFrame,
) -> Comparison:
    """`challenger_backtest`: its backtest forecasts (rows of models `forecaster` and `naive_w`)."""
    fresh = challenger_backtest.filter(
        pl.col("target_date") - pl.duration(days=horizon_days) > pl.lit(champion_data_end)
    )
    days = sorted(fresh["target_date"].unique().to_list())
    if not days:
        return Comparison(0, None, None, None)
    champion = pl.concat([forecast_day(champion_model, prices, d, horizon_days, history_days) for d in days])
    wide = (
        fresh.filter(pl.col("model") == "forecaster").select("target_date", "hour", "actual", pl.col("forecast").alias("challenger"))
        .join(fresh.filter(pl.col("model") == "naive_w").select("target_date", "hour", pl.col("forecast").alias("naive")), on=["target_date", "hour"])
        .join(champion.select("target_date", "hour", pl.col("forecast").alias("champion")), on=["target_date", "hour"])
    )
    naive = mae(wide["actual"], wide["naive"])
    return Comparison(
        days=len(days),
        first_day=days[0],
        challenger_rmae=mae(wide["actual"], wide["challenger"]) / naive,
        champion_rmae=mae(wide["actual"], wide["champion"]) / naive,
    )


