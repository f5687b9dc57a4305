"""Realised accuracy: how good each forecast was once the day's actual prices arrived.

Metrics as the field reports them (Lago et al., 2021), computed with the forecaster's own
`energy_platform.forecasting.metrics` so backtest and production numbers mean the same thing.
The point forecast is the `forecast` column; the quantiles p10/p50/p90 give pinball and coverage.
The weekly naive is the actual price of the same hour seven days earlier (p[d-7, h]).

Pooling: an rMAE over several days is total model absolute error divided by total naive absolute
error over all their hours (the ratio of pooled MAEs), never the mean of daily rMAEs, which lets
one calm day with a tiny naive error dominate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

import polars as pl

from energy_platform.monitoring.store import write_accuracy
from energy_platform.scoring import pool, score
from energy_platform.warehouse.db import connect

HOURS = 24

__all__ = [
    "AccuracyNotReady",
    "NoPredictionsError",
    "RollingAccuracy",
    "accuracy_for_day",
    "classify_rolling",
    "rolling_rmae",
    "write_accuracy",
]


class AccuracyNotReady(ValueError):
    """The actual prices of the target day are not all in `raw.prices_hourly` yet."""

    def __init__(self, target_date: date, hours_present: int):
        self.target_date = target_date
        self.hours_present = hours_present
        super().__init__(
            f"actual prices of {target_date} are incomplete: {hours_present}/{HOURS} hours present "
            "in raw.prices_hourly; realised accuracy waits until all 24 have arrived"
        )


class NoPredictionsError(ValueError):
    """No model version forecast the target day in `ml.predictions`."""

    def __init__(self, target_date: date):
        self.target_date = target_date
        super().__init__(f"no forecasts for {target_date} in ml.predictions: nothing to evaluate")


DAILY_SCHEMA = {
    "target_date": pl.Date,
    "model_version": pl.String,
    "hours": pl.Int32,
    "mae": pl.Float64,
    "rmse": pl.Float64,
    "smape": pl.Float64,
    "naive_w_mae": pl.Float64,
    "rmae": pl.Float64,
    "pinball": pl.Float64,
    "coverage_80": pl.Float64,
    "computed_at": pl.Datetime("us"),
}


def accuracy_for_day(warehouse_path: str | Path, target_date: date) -> pl.DataFrame:
    """One row per model version that forecast `target_date`: hours, mae, rmse, smape,
    naive_w_mae, rmae, pinball, coverage_80 (plus target_date, model_version, computed_at).

    Raises AccuracyNotReady when fewer than 24 actual prices of the day are stored, and
    NoPredictionsError when nobody forecast it. When a price of day d-7 is missing for an
    evaluated hour, naive_w_mae and rmae are null (the naive is not comparable on other hours).
    """
    with connect(warehouse_path, read_only=True) as conn:
        actual = conn.sql(
            "SELECT hour, price FROM raw.prices_hourly WHERE date = ? AND price IS NOT NULL ORDER BY hour",
            params=[target_date],
        ).pl()
        if actual.height < HOURS:
            raise AccuracyNotReady(target_date, actual.height)
        naive = conn.sql(
            "SELECT hour, price AS naive FROM raw.prices_hourly WHERE date = ? AND price IS NOT NULL",
            params=[target_date - timedelta(days=7)],
        ).pl()
        predictions = conn.sql(
            "SELECT model_version, hour, forecast, p10, p50, p90 FROM ml.predictions "
            "WHERE target_date = ? ORDER BY model_version, hour",
            params=[target_date],
        ).pl()
    if predictions.height == 0:
        raise NoPredictionsError(target_date)

    joined = (
        predictions.join(actual, on="hour", how="inner").join(naive, on="hour", how="left")
        .rename({"price": "actual", "naive": "naive_w"})
        .with_columns(pl.lit(target_date).alias("target_date"))
    )
    scores = score(joined, by=["model_version"])
    return scores.select(
        pl.lit(target_date).alias("target_date"), "model_version", "hours", "mae", "rmse", "smape", "naive_w_mae",
        "rmae", "pinball", "coverage_80", pl.lit(datetime.now().replace(microsecond=0)).alias("computed_at"),
    ).cast(DAILY_SCHEMA)

@dataclass
class RollingAccuracy:
    """Pooled accuracy over [start, end]; `rmae` is None when no day had both errors."""

    start: date
    end: date
    rmae: float | None
    mae: float | None
    naive_w_mae: float | None
    days: int  # days counted (with a model and a naive error)
    hours: int
    window_days: int
    model_version: str | None
    days_by_version: dict[str, str] = field(default_factory=dict)  # target_date -> version used
    per_version: dict[str, dict[str, float | int | None]] = field(default_factory=dict)


def _pool(frame: pl.DataFrame) -> dict[str, float | int | None]:
    if frame.height == 0:
        return {"rmae": None, "mae": None, "naive_w_mae": None, "days": 0, "hours": 0}
    return pool(frame).select("rmae", "mae", "naive_w_mae", "days", "hours").row(0, named=True)


def rolling_rmae(
    warehouse_path: str | Path,
    end: date,
    days: int = 28,
    model_version: str | None = None,
) -> RollingAccuracy:
    """rMAE pooled over the stored daily accuracy of target days [end - days + 1, end].

    Pooled = sum over days of (mae x hours) / sum of (naive_w_mae x hours), i.e. total model
    absolute error over total weekly-naive absolute error on the same hours. Days without a
    naive error are left out. With `model_version`, only that version; without it, the headline
    uses for each day the forecast that was served (the most recently created one in
    ml.predictions, as the prediction drift check does) and `per_version` pools every version
    over its own days.
    """
    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}")
    start = end - timedelta(days=days - 1)
    with connect(warehouse_path, read_only=True) as conn:
        stored = conn.sql(
            """
            SELECT a.target_date, a.model_version, a.hours, a.mae, a.naive_w_mae,
                   s.created_at AS served_at
            FROM monitoring.forecast_accuracy a
            LEFT JOIN (
                SELECT target_date, model_version, max(created_at) AS created_at
                FROM ml.predictions WHERE target_date BETWEEN ? AND ?
                GROUP BY ALL
            ) s USING (target_date, model_version)
            WHERE a.target_date BETWEEN ? AND ?
              AND a.mae IS NOT NULL AND a.naive_w_mae IS NOT NULL AND a.hours > 0
              AND (?::VARCHAR IS NULL OR a.model_version = ?::VARCHAR)
            ORDER BY a.target_date, a.model_version
            """,
            params=[start, end, start, end, model_version, model_version],
        ).pl()
    per_version = {
        version: _pool(part) for (version,), part in stored.group_by("model_version", maintain_order=True)
    }
    headline = (
        stored.sort(["target_date", "served_at", "model_version"], nulls_last=False)
        .group_by("target_date", maintain_order=True)
        .last()
    )
    pooled = _pool(headline)
    return RollingAccuracy(
        start=start,
        end=end,
        rmae=pooled["rmae"],
        mae=pooled["mae"],
        naive_w_mae=pooled["naive_w_mae"],
        days=int(pooled["days"]),
        hours=int(pooled["hours"]),
        window_days=days,
        model_version=model_version,
        days_by_version={d.isoformat(): v for d, v in headline.select("target_date", "model_version").iter_rows()},
        per_version=per_version,
    )


def classify_rolling(rmae: float, warn_above: float = 0.9) -> str:
    """'error' when no better than the weekly naive (rMAE >= 1), 'warn' above `warn_above`."""
    if rmae is None or (isinstance(rmae, float) and math.isnan(rmae)):
        raise ValueError("no rolling rMAE to classify: no day in the window had realised accuracy")
    if not 0 < warn_above <= 1.0:
        raise ValueError(f"warn_above must be in (0, 1], got {warn_above}")
    if rmae >= 1.0:
        return "error"
    if rmae > warn_above:
        return "warn"
    return "pass"


def accuracy_for_days(warehouse_path: str | Path, start: date, end: date) -> pl.DataFrame:
    """`accuracy_for_day` for every day of [start, end] (a single-run backfill's window)."""
    days = pl.date_range(start, end, "1d", eager=True).to_list()
    return pl.concat([accuracy_for_day(warehouse_path, day) for day in days])


def latest_scored_day(warehouse_path: str | Path) -> date | None:
    with connect(warehouse_path, read_only=True) as conn:
        return conn.execute("SELECT max(target_date) FROM monitoring.forecast_accuracy").fetchall()[0][0]
