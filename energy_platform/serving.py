"""Batch serving: the champion's forecast of one target day from the warehouse's history.

The model is the registered pyfunc, so the predictions asset, `mlflow models serve` and a
notebook all run the same preprocessing. Inputs are checked here first so that a day with
missing history fails naming the dates instead of forecasting from a gap.
"""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl

from energy_platform.warehouse.prices import read_prices


class IncompleteInputsError(ValueError):
    """The history a forecast needs is not complete in the warehouse."""


def history_window(prices: pl.DataFrame, target: date, horizon_days: int, history_days: int) -> pl.DataFrame:
    """Hourly history ending at the cutoff (target - H), covering `history_days` days before the target."""
    cutoff = target - timedelta(days=horizon_days)
    first = target - timedelta(days=history_days)
    window = prices.filter(pl.col("date").is_between(first, cutoff))
    complete = set(window.filter(pl.col("price").is_not_null()).group_by("date").len().filter(pl.col("len") == 24)["date"].to_list())
    needed = [first + timedelta(days=i) for i in range((cutoff - first).days + 1)]
    missing = [d for d in needed if d not in complete]
    if missing:
        shown = ", ".join(str(d) for d in missing[:10]) + (" …" if len(missing) > 10 else "")
        raise IncompleteInputsError(
            f"cannot forecast {target}: {len(missing)} day(s) of history without 24 prices: {shown}"
        )
    return window.sort("ts")


def forecast_day(model, prices: pl.DataFrame, target: date, horizon_days: int, history_days: int) -> pl.DataFrame:
    """24 rows `target_date, hour, ts, forecast, p10, p50, p90, feature_cutoff` from a pyfunc model."""
    history = history_window(prices, target, horizon_days, history_days)
    out = pl.from_pandas(model.predict(history.select("ts", "price").to_pandas()))
    out = out.with_columns(pl.col("ts").cast(pl.Datetime("us")))
    days = out["ts"].dt.date().unique().to_list()
    if days != [target] or out.height != 24:
        raise RuntimeError(f"model answered for {days} with {out.height} rows, expected 24 hours of {target}")
    return out.select(
        pl.lit(target).alias("target_date"),
        pl.col("ts").dt.hour().cast(pl.Int32).alias("hour"),
        "ts", "forecast", "p10", "p50", "p90",
        pl.lit(target - timedelta(days=horizon_days)).alias("feature_cutoff"),
    )


def forecast_range(warehouse_path, model, start: date, end: date, horizon_days: int, history_days: int) -> pl.DataFrame:
    """`forecast_day` for every target day of [start, end], reading the history they need once."""
    targets = pl.date_range(start, end, "1d", eager=True).to_list()
    prices = read_prices(warehouse_path, start - timedelta(days=history_days), end)
    return pl.concat([forecast_day(model, prices, d, horizon_days, history_days) for d in targets])
