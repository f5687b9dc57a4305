"""Operating features as they were known at a cutoff: no value before its publication.

`cutoff` is the feature store's `cutoff_date`, the last day of data a forecast uses (target - H);
the forecast is made on the morning of `cutoff + 1`. A value is usable when its `known_on` (see
`sources/publication.py`) is on or before that morning: daily data of days <= cutoff, hydrology
of months ended by the cutoff, ONI of centre months m with the 15th of m+2 <= cutoff + 1.

How missing data is treated (never filled with a guess):
- `demand_gwh_last` / `generation_gwh_last` are the cutoff day's values, null when that day is
  missing; `*_mean7` average the days of [cutoff-6, cutoff] that exist, and `operating_days_7`
  says how many did (null mean when none);
- hydrology and ONI are the newest month known at the cutoff, whatever its age; the month itself
  is a column (`hydrology_month`, `oni_month`) so a stale value is visible, not hidden.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import polars as pl

from energy_platform.sources.publication import daily_known_on, hydrology_known_on, oni_known_on

WINDOW_DAYS = 7
DAILY_VALUES = ("demand_gwh", "generation_gwh")
HYDROLOGY_VALUES = ("reservoir_useful_volume_pct", "inflows_pct_of_historical_mean")
FEATURE_SCHEMA = {
    "cutoff_date": pl.Date,
    "demand_gwh_last": pl.Float64,
    "generation_gwh_last": pl.Float64,
    "demand_gwh_mean7": pl.Float64,
    "generation_gwh_mean7": pl.Float64,
    "operating_days_7": pl.UInt32,
    "reservoir_useful_volume_pct": pl.Float64,
    "inflows_pct_of_historical_mean": pl.Float64,
    "hydrology_month": pl.Date,
    "oni": pl.Float64,
    "oni_month": pl.Date,
}


def _decisions(cutoffs: Sequence[date]) -> pl.DataFrame:
    return (
        pl.DataFrame({"cutoff_date": list(cutoffs)}, schema={"cutoff_date": pl.Date})
        .unique()
        .sort("cutoff_date")
        .with_columns(daily_known_on("cutoff_date").alias("decision_day"))  # the morning after the cutoff
    )


def _daily(daily: pl.DataFrame, decisions: pl.DataFrame) -> pl.DataFrame:
    known = daily.select("date", *DAILY_VALUES).with_columns(daily_known_on("date").alias("known_on"))
    window = decisions.select(
        "cutoff_date", "decision_day", pl.int_ranges(0, WINDOW_DAYS).alias("back")
    ).explode("back").with_columns(
        (pl.col("cutoff_date") - pl.duration(days=pl.col("back"))).alias("date")
    )
    joined = window.join(known, on="date", how="left").filter(
        pl.col("known_on").is_null() | (pl.col("known_on") <= pl.col("decision_day"))
    )
    return joined.group_by("cutoff_date").agg(
        *[pl.col(c).filter(pl.col("back") == 0).first().alias(f"{c}_last") for c in DAILY_VALUES],
        *[pl.col(c).mean().alias(f"{c}_mean7") for c in DAILY_VALUES],
        pl.col("known_on").count().alias("operating_days_7"),
    )


def _latest(frame: pl.DataFrame, known_on: pl.Expr, values: Sequence[str], decisions: pl.DataFrame, month_name: str) -> pl.DataFrame:
    known = (
        frame.select("month", *values)
        .with_columns(known_on.alias("known_on"))
        .sort("known_on")
        .rename({"month": month_name})
    )
    return decisions.join_asof(known, left_on="decision_day", right_on="known_on", strategy="backward").drop("known_on")


def operating_features(
    daily: pl.DataFrame, hydrology: pl.DataFrame, oni: pl.DataFrame, cutoffs: Sequence[date]
) -> pl.DataFrame:
    """One row per cutoff (FEATURE_SCHEMA), from the raw operating frames, using only what was known.

    Frames as stored (`raw.operating_daily`, `raw.hydrology_monthly`, `raw.enso_oni`); any of them
    may be empty, which gives null features.
    """
    decisions = _decisions(cutoffs)
    out = decisions.join(_daily(daily, decisions), on="cutoff_date", how="left")
    out = out.join(
        _latest(hydrology, hydrology_known_on("month"), HYDROLOGY_VALUES, decisions, "hydrology_month").drop("decision_day"),
        on="cutoff_date",
        how="left",
    )
    out = out.join(
        _latest(oni, oni_known_on("month"), ("oni",), decisions, "oni_month").drop("decision_day"),
        on="cutoff_date",
        how="left",
    )
    return out.with_columns(pl.col("operating_days_7").fill_null(0)).select(list(FEATURE_SCHEMA)).cast(FEATURE_SCHEMA)


def operating_features_asof(
    daily: pl.DataFrame, hydrology: pl.DataFrame, oni: pl.DataFrame, cutoff: date
) -> dict:
    """The operating features known at one cutoff, as a dict of FEATURE_SCHEMA columns."""
    return operating_features(daily, hydrology, oni, [cutoff]).row(0, named=True)
