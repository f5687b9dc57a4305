"""Operating data from XM's API, in the shape of the operating CSV files.

Daily demand and generation are XM's hourly `DemaReal` and `Gene` for `Sistema` (kWh) summed to
GWh per day; a day with fewer than 24 reported hours gets no total (a partial sum would be a
silent under-count), and a day with neither total is left out: missing stays missing. Monthly
hydrology is the mean of XM's daily `PorcVoluUtilDiar` and `PorcApor` (`Sistema`), which XM sends
as fractions (0.65 = 65 %), with the number of days behind it; the strict bounds of the CSV
format apply, so a unit surprise (percent sent as percent) is refused, not stored.
Reuses `XmClient` unchanged: these metrics go through its generic hourly and daily reads.
"""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl

from energy_platform.sources.base import SourceError
from energy_platform.sources.operating_files import (
    DAILY_BOUNDS,
    DAILY_SCHEMA,
    HYDROLOGY_BOUNDS,
    HYDROLOGY_SCHEMA,
    check_value,
)
from energy_platform.sources.xm import XmClient

DEMAND_METRIC = "DemaReal"  # hourly, kWh
GENERATION_METRIC = "Gene"  # hourly, kWh
RESERVOIR_METRIC = "PorcVoluUtilDiar"  # daily, fraction of useful capacity
INFLOWS_METRIC = "PorcApor"  # daily, fraction of the historical mean
KWH_PER_GWH = 1_000_000.0
HOURS = 24


def _daily_total_gwh(client: XmClient, metric: str, start: date, end: date) -> pl.DataFrame:
    hourly = client.fetch_hourly(metric, start, end)
    return hourly.group_by("date").agg(
        pl.when(pl.col("value").count() == HOURS).then(pl.col("value").sum() / KWH_PER_GWH).alias(metric)
    )


def _refuse_bad(frame: pl.DataFrame, bounds: dict, key: str, what: str) -> None:
    for column, limits in bounds.items():
        if column not in frame.columns:
            continue
        for row_key, value in frame.select(key, column).iter_rows():
            if value is None:
                continue  # a missing total is allowed (never filled)
            problem = check_value(value, column, limits)
            if problem:
                raise SourceError(f"XM {what} {row_key}: {column}: {problem}")


def fetch_operating_daily(client: XmClient, start: date, end: date) -> pl.DataFrame:
    """Daily SIN demand and generation (GWh) for [start, end], in DAILY_SCHEMA."""
    demand = _daily_total_gwh(client, DEMAND_METRIC, start, end)
    generation = _daily_total_gwh(client, GENERATION_METRIC, start, end)
    frame = (
        demand.join(generation, on="date", how="full", coalesce=True)
        .rename({DEMAND_METRIC: "demand_gwh", GENERATION_METRIC: "generation_gwh"})
        # a day totalled 0 is a day not published yet (24 zero hours): missing, fetched again the next morning
        .with_columns(pl.col(c).replace(0.0, None) for c in ("demand_gwh", "generation_gwh"))
        .filter(pl.col("demand_gwh").is_not_null() | pl.col("generation_gwh").is_not_null())
        .with_columns(
            pl.lit(None, pl.Float64).alias(c) for c in ("unserved_demand_mwh", "exports_gwh", "imports_gwh")
        )
        .select(list(DAILY_SCHEMA))
        .cast(DAILY_SCHEMA)
        .sort("date")
    )
    _refuse_bad(frame, DAILY_BOUNDS, "date", "operating day")
    return frame


def _month_end(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1) - timedelta(days=1)


def fetch_hydrology_monthly(client: XmClient, first_month: date, last_month: date) -> pl.DataFrame:
    """Monthly means (in %) of XM's daily reservoir level and inflows, months [first, last]."""
    start, end = first_month.replace(day=1), _month_end(last_month)
    level = client.fetch_daily(RESERVOIR_METRIC, start, end).rename({"value": "level"})
    inflows = client.fetch_daily(INFLOWS_METRIC, start, end).rename({"value": "inflows"})
    daily = level.join(inflows, on="date", how="full", coalesce=True)
    frame = (
        daily.group_by(pl.col("date").dt.truncate("1mo").alias("month"))
        .agg(
            (pl.col("inflows").mean() * 100).alias("inflows_pct_of_historical_mean"),
            (pl.col("level").mean() * 100).alias("reservoir_useful_volume_pct"),
            pl.min_horizontal(pl.col("level").count(), pl.col("inflows").count()).cast(pl.Int32).alias("days_observed"),
        )
        .filter(pl.col("days_observed") > 0)
        .select(list(HYDROLOGY_SCHEMA))
        .cast(HYDROLOGY_SCHEMA)
        .sort("month")
    )
    _refuse_bad(frame, HYDROLOGY_BOUNDS, "month", "hydrology month")
    return frame
