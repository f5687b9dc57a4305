"""The one shape every price source returns, and its validation.

An hourly frame has `ts` (naive local time of the market: XM's America/Bogota, `ENERGY_PLATFORM_TIMEZONE`), `date`, `hour` (0-23), `price`
(Float64, null where the source had no value) and any exogenous Float64 columns known a day
ahead; a file may end with days ahead of its prices (null price, exogenous forecasts), up to
`data_end`. Everything downstream (warehouse, features, backtest) relies on this shape only.
"""

from __future__ import annotations

from datetime import date
from typing import Protocol

import polars as pl

BASE_COLUMNS = ("ts", "date", "hour", "price")


class SourceError(RuntimeError):
    """A source answered with something we refuse to store."""


class PriceSource(Protocol):
    """Hourly prices for a date range; `first_date`/`last_date` bound what it can have."""

    name: str
    notes: list[str]  # what reading left out and a run should report (a file's part-days); empty for most sources
    # the source is read whole and locally (a file): comparing the stored days with it costs nothing,
    # where asking a live API again for them would cost a request per 30 days
    local: bool

    def first_date(self) -> date: ...

    def last_date(self) -> date: ...

    def data_end(self) -> date:
        """The last day with any row: `last_date`, or later for days ahead of the prices."""
        ...

    def hourly_prices(self, start: date, end: date) -> pl.DataFrame:
        """Rows for every hour of [start, end] the source has, in the shape described above."""
        ...


def with_calendar_columns(frame: pl.DataFrame) -> pl.DataFrame:
    """Derive `date` and `hour` from `ts` and put the base columns first."""
    frame = frame.with_columns(
        pl.col("ts").dt.date().alias("date"),
        pl.col("ts").dt.hour().cast(pl.Int32).alias("hour"),
        pl.col("price").cast(pl.Float64),
    )
    extra = [c for c in frame.columns if c not in BASE_COLUMNS]
    return frame.select(*BASE_COLUMNS, *extra).sort("ts")


def exogenous_columns(frame: pl.DataFrame) -> list[str]:
    return [c for c in frame.columns if c not in BASE_COLUMNS]
