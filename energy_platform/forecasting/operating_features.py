"""Operating features as they were known at a cutoff: no value before its publication.

`cutoff` is the feature store's `cutoff_date`, the last day of data a forecast uses (target - H);
the forecast is made on the morning of `cutoff + 1`. A value is usable when its `known_on` (see
`sources/publication.py`) is on or before that morning: daily data of days <= cutoff, hydrology
of months ended by the cutoff, ONI of centre months m with the 15th of m+2 <= cutoff + 1.

How missing data is treated (never filled with a guess):
- `demand_gwh_last` / `generation_gwh_last` are the cutoff day's values, null when that day is
  missing; `*_mean7` average the days of [cutoff-6, cutoff] that exist, and `operating_days_7`
  says how many did (null mean when none);
- hydrology and ONI are the newest month known at the cutoff, with the month itself as a column
  (`hydrology_month`, `oni_month`), while it is current: once the next two months' values are
  overdue (`publication.STALE_AFTER_MONTHS`) the value and its month are null, so a source that
  stopped publishing reads as missing, not as a frozen reservoir level or ONI.

As model inputs (`OPERATING_GROUPS`, switched on per group in `FeatureSpec.operating_groups`),
an unknown value stays null in `features.daily` and NaN in the feature matrix. The forecaster
(`model.MLPForecaster._scale_x`) replaces it by the training window's median of that column
(0 after its median/MAD scaling) and sets the group's missing flag, an input the net learnt
from the window's own gaps; it never refuses a forecast because an operating value is late, and
refuses to train a group that has no value at all in the window. Why not refuse: a trader's
forecast must not fail because XM publishes one demand day late; why not forward-fill: the
stale value would be passed off as known, and the flag lets the net discount it instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import polars as pl

from energy_platform.sources.publication import (
    daily_known_on,
    hydrology_known_on,
    hydrology_stale_on,
    oni_known_on,
    oni_stale_on,
)

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


def _latest(frame: pl.DataFrame, rules, values: Sequence[str], decisions: pl.DataFrame, month_name: str) -> pl.DataFrame:
    """The newest value known at each decision, null once it is stale; `rules` = (known_on, stale_on)."""
    known_on, stale_on = rules
    known = (
        frame.select("month", *values)
        .with_columns(known_on("month").alias("known_on"), stale_on("month").alias("stale_on"))
        .sort("known_on")
        .rename({"month": month_name})
    )
    latest = decisions.join_asof(known, left_on="decision_day", right_on="known_on", strategy="backward")
    current = pl.col("decision_day") < pl.col("stale_on")
    return latest.with_columns(pl.when(current).then(pl.col(c)).alias(c) for c in (*values, month_name)).drop(
        "known_on", "stale_on"
    )


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
        _latest(hydrology, (hydrology_known_on, hydrology_stale_on), HYDROLOGY_VALUES, decisions, "hydrology_month").drop("decision_day"),
        on="cutoff_date",
        how="left",
    )
    out = out.join(
        _latest(oni, (oni_known_on, oni_stale_on), ("oni",), decisions, "oni_month").drop("decision_day"),
        on="cutoff_date",
        how="left",
    )
    return out.with_columns(pl.col("operating_days_7").fill_null(0)).select(list(FEATURE_SCHEMA)).cast(FEATURE_SCHEMA)


def operating_features_asof(
    daily: pl.DataFrame, hydrology: pl.DataFrame, oni: pl.DataFrame, cutoff: date
) -> dict:
    """The operating features known at one cutoff, as a dict of FEATURE_SCHEMA columns."""
    return operating_features(daily, hydrology, oni, [cutoff]).row(0, named=True)


# -- operating data as model inputs ------------------------------------------------------------
# Each group can be switched on or off in the forecaster (`FeatureSpec.operating_groups`). A
# feature is read at the target's cutoff (target - H); `*_chg` is the change against the value
# known a month (hydrology) or a quarter (ONI) of cutoffs earlier, both point-in-time, so the
# net sees the trend of a slow series, not only its level. It is how far the known value moved
# over those mornings, not the source's month-over-month change: 0 when no month was published
# in them, two months' change when two were (~2.5 % of cutoffs, around month ends). The
# month-over-month change lost on both validation years (session 21, `ablation.md`).
OPERATING_GROUPS: dict[str, tuple[str, ...]] = {
    "demand": ("demand_gwh_last", "generation_gwh_last", "demand_gwh_mean7", "generation_gwh_mean7"),
    "hydrology": (
        "reservoir_useful_volume_pct", "inflows_pct_of_historical_mean",
        "reservoir_useful_volume_pct_chg", "inflows_pct_of_historical_mean_chg",
    ),
    "enso": ("oni", "oni_chg"),
}
CHANGE_LAG_DAYS = {"reservoir_useful_volume_pct": 30, "inflows_pct_of_historical_mean": 30, "oni": 91}
OPERATING_COLUMNS: tuple[str, ...] = tuple(c for cols in OPERATING_GROUPS.values() for c in cols)


def parse_groups(text: str | Sequence[str] | None) -> tuple[str, ...]:
    """`"demand,enso"`, `"all"`, `"none"` or a sequence -> the groups in canonical order."""
    from energy_platform.forecasting.errors import ForecastInputError

    if text is None:
        return ()
    names = [n.strip() for n in (text.split(",") if isinstance(text, str) else text) if n.strip()]
    if names in (["none"], []):
        return ()
    if names == ["all"]:
        return tuple(OPERATING_GROUPS)
    unknown = [n for n in names if n not in OPERATING_GROUPS]
    if unknown:
        raise ForecastInputError(
            f"unknown operating group(s) {unknown}: choose from {', '.join(OPERATING_GROUPS)}, 'all' or 'none'"
        )
    return tuple(g for g in OPERATING_GROUPS if g in names)


def format_groups(groups: Sequence[str]) -> str:
    """The inverse of `parse_groups`: `"hydrology,enso"`, or `"none"` for prices alone."""
    return ",".join(groups) or "none"


@dataclass(frozen=True)
class OperatingData:
    """The three raw operating series as stored (`raw.operating_daily`, ...); any may be empty."""

    daily: pl.DataFrame
    hydrology: pl.DataFrame
    oni: pl.DataFrame

    @classmethod
    def empty(cls) -> OperatingData:
        from energy_platform.sources.operating_files import DAILY_SCHEMA, HYDROLOGY_SCHEMA, ONI_SCHEMA

        return cls(pl.DataFrame(schema=DAILY_SCHEMA), pl.DataFrame(schema=HYDROLOGY_SCHEMA), pl.DataFrame(schema=ONI_SCHEMA))

    @classmethod
    def from_source(cls, source) -> OperatingData:
        """Everything an `OperatingSource` (sample or CSV folder) holds."""
        end = source.last_date()
        return cls(
            source.operating_daily(date(1900, 1, 1), end),
            source.hydrology_monthly(date(1900, 1, 1), date(9999, 12, 1)),
            source.oni_monthly(),
        )

    def available_groups(self) -> tuple[str, ...]:
        have = {"demand": self.daily.height > 0, "hydrology": self.hydrology.height > 0, "enso": self.oni.height > 0}
        return tuple(g for g in OPERATING_GROUPS if have[g])


def operating_by_cutoff(data: OperatingData, first_cutoff: date, n_days: int) -> dict[str, np.ndarray]:
    """Every OPERATING_COLUMNS feature for the cutoffs first_cutoff + i, i < n_days (NaN = unknown)."""
    back = max(CHANGE_LAG_DAYS.values())
    start = first_cutoff - timedelta(days=back)
    cutoffs = [start + timedelta(days=i) for i in range(n_days + back)]
    frame = operating_features(data.daily, data.hydrology, data.oni, cutoffs).sort("cutoff_date")
    out: dict[str, np.ndarray] = {}
    for col in OPERATING_COLUMNS:
        if col.endswith("_chg"):
            base = col[: -len("_chg")]
            series = frame[base].cast(pl.Float64).fill_null(np.nan).to_numpy()
            lag = CHANGE_LAG_DAYS[base]
            chg = np.full(series.shape, np.nan)
            chg[lag:] = series[lag:] - series[:-lag]
            out[col] = chg[back:]
        else:
            out[col] = frame[col].cast(pl.Float64).fill_null(np.nan).to_numpy()[back:]
    return out


# -- operating data in a served request ---------------------------------------------------------
# A REST caller sends hourly rows; each operating column carries, on every row, the value of the
# day (demand, generation) or the month (hydrology, ONI's centre month) the row belongs to; null
# where unknown. The rows are turned back into the raw series, and the features computed from
# them with the same point-in-time function as the feature store.
OPERATING_INPUTS: dict[str, tuple[str, ...]] = {
    "demand": ("demand_gwh", "generation_gwh"),
    "hydrology": ("reservoir_useful_volume_pct", "inflows_pct_of_historical_mean"),
    "enso": ("oni",),
}
ALL_OPERATING_INPUTS: tuple[str, ...] = tuple(c for cols in OPERATING_INPUTS.values() for c in cols)
# Days of hourly rows before the cutoff a request needs so that every operating value a group
# reads (incl. its `_chg` a month / a quarter back) lies in the request: demand's 7-day mean;
# hydrology: the newest complete month and the one a month earlier (<= 92 days back); ONI: the
# newest usable centre month (<= 105 days back) and the one 91 days earlier.
OPERATING_LOOKBACK_DAYS = {"demand": 7, "hydrology": 93, "enso": 198}


def operating_inputs(groups: Sequence[str]) -> list[str]:
    return [c for g in groups for c in OPERATING_INPUTS[g]]


def split_operating_inputs(history: pl.DataFrame, groups: Sequence[str]) -> tuple[pl.DataFrame, OperatingData | None]:
    """(hourly prices without the operating columns, the raw series they carry) for `groups`."""
    from energy_platform.forecasting.errors import ForecastInputError

    present = [c for c in ALL_OPERATING_INPUTS if c in history.columns]
    prices = history.drop(present)
    if not groups:
        return prices, None
    needed = operating_inputs(groups)
    absent = [c for c in needed if c not in history.columns]
    if absent:
        raise ForecastInputError(
            f"this model reads operating groups {list(groups)}: missing column(s) {absent} "
            "(send them on every hourly row, null where unknown)"
        )
    frame = history.select(pl.col("ts").dt.date().alias("date"), *[pl.col(c).cast(pl.Float64) for c in needed])
    empty = OperatingData.empty()

    def per(key: pl.Expr, cols: Sequence[str], what: str) -> pl.DataFrame:
        grouped = frame.with_columns(key.alias("key")).group_by("key").agg(
            *[pl.col(c).drop_nulls().n_unique().alias(f"{c}__n") for c in cols],
            *[pl.col(c).drop_nulls().first().alias(c) for c in cols],
        )
        for c in cols:
            clash = grouped.filter(pl.col(f"{c}__n") > 1)
            if clash.height:
                raise ForecastInputError(
                    f"column {c} has {clash[f'{c}__n'][0]} different values within {what} {clash['key'][0]}: "
                    f"send one value per {what}"
                )
        return grouped.select("key", *cols).sort("key")

    daily, hydrology, oni = empty.daily, empty.hydrology, empty.oni
    if "demand" in groups:
        got = per(pl.col("date"), OPERATING_INPUTS["demand"], "day").rename({"key": "date"})
        daily = pl.concat([daily, got], how="diagonal_relaxed").select(list(empty.daily.columns)).cast(empty.daily.schema)
    month = pl.col("date").dt.truncate("1mo")
    if "hydrology" in groups:
        got = per(month, OPERATING_INPUTS["hydrology"], "month").rename({"key": "month"})
        hydrology = pl.concat([hydrology, got], how="diagonal_relaxed").select(list(empty.hydrology.columns)).cast(empty.hydrology.schema)
    if "enso" in groups:
        got = per(month, OPERATING_INPUTS["enso"], "month").rename({"key": "month"})
        oni = pl.concat([oni, got], how="diagonal_relaxed").select(list(empty.oni.columns)).cast(empty.oni.schema)
    # A day or month with no value is left out, as in the raw tables (a missing day stays missing).
    daily = daily.filter(pl.any_horizontal([pl.col(c).is_not_null() for c in OPERATING_INPUTS["demand"]]))
    hydrology = hydrology.filter(pl.any_horizontal([pl.col(c).is_not_null() for c in OPERATING_INPUTS["hydrology"]]))
    oni = oni.filter(pl.col("oni").is_not_null())
    return prices, OperatingData(daily, hydrology, oni)


def hourly_operating_columns(hourly: pl.DataFrame, data: OperatingData, groups: Sequence[str]) -> pl.DataFrame:
    """`hourly` (with `ts`) plus the operating columns of `groups`, each row carrying its day's /
    month's value: the request shape `split_operating_inputs` reads back."""
    out = hourly.with_columns(pl.col("ts").dt.date().alias("__date"), pl.col("ts").dt.date().dt.truncate("1mo").alias("__month"))
    if "demand" in groups:
        out = out.join(data.daily.select(pl.col("date").alias("__date"), *OPERATING_INPUTS["demand"]), on="__date", how="left")
    if "hydrology" in groups:
        out = out.join(data.hydrology.select(pl.col("month").alias("__month"), *OPERATING_INPUTS["hydrology"]), on="__month", how="left")
    if "enso" in groups:
        out = out.join(data.oni.select(pl.col("month").alias("__month"), "oni"), on="__month", how="left")
    return out.drop("__date", "__month")
