"""Bring a date range of prices from a source into the warehouse, fetching only what is missing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import polars as pl

from energy_platform.sources.base import PriceSource
from energy_platform.warehouse.prices import incomplete_days, read_prices, replace_prices


@dataclass(frozen=True)
class IngestReport:
    requested: tuple[date, date] | None  # the window, clipped to what the source can have
    fetched: tuple[date, date] | None  # what was actually asked of the source
    rows_written: int
    frame: pl.DataFrame  # the rows written
    # stored hours of the window the (local) source now prices otherwise: `date, hour, stored,
    # source`; kept as stored until a full_refresh (an incremental run fetches only missing days)
    revised: pl.DataFrame | None = None


def ingest_range(
    warehouse: str | Path, source: PriceSource, start: date, end: date, *, full_refresh: bool = False
) -> IngestReport:
    """Store [start, end] ∩ what the source has; without `full_refresh`, fetch only incomplete days.

    The daily run therefore downloads yesterday (and any day still missing hours) and nothing
    else, however coarse the partition it runs in. A local source's other days are compared with
    what is stored (`revised`): a revised file is named, not taken silently or ignored silently.
    """
    start = max(start, source.first_date())
    last = source.last_date()
    # days ahead of the prices (a file's exogenous forecasts of tomorrow): asked on every run,
    # since they change until their prices arrive
    ahead_from, ahead_to = max(start, last + timedelta(days=1)), min(end, source.data_end())
    ahead = (ahead_from, ahead_to) if ahead_from <= ahead_to else None
    end = min(end, last)
    empty = pl.DataFrame()
    if end < start and ahead is None:
        return IngestReport(None, None, 0, empty)
    if full_refresh:
        fetch_from, fetch_to = start, end
    else:
        missing = incomplete_days(warehouse, start, end)
        if not missing and ahead is None:
            return IngestReport((start, end), None, 0, empty, revised_hours(warehouse, source, start, end))
        fetch_from, fetch_to = (missing[0], missing[-1]) if missing else ahead
    if ahead is not None:
        fetch_from, fetch_to = min(fetch_from, ahead[0]), ahead[1]
    frame = source.hourly_prices(fetch_from, fetch_to)
    written = replace_prices(warehouse, frame, fetch_from, fetch_to, source.name) if frame.height else 0
    return IngestReport((start, end), (fetch_from, fetch_to), written, frame, revised_hours(warehouse, source, start, end))


def revised_hours(warehouse: str | Path, source: PriceSource, start: date, end: date) -> pl.DataFrame | None:
    """Hours of [start, end] stored with another price than a local source now has (a file
    re-exported with revised values); None for a live source, not asked again."""
    if not getattr(source, "local", False) or end < start:
        return None
    stored = read_prices(warehouse, start, end).select("date", "hour", pl.col("price").alias("stored"))
    now = source.hourly_prices(start, end).select("date", "hour", pl.col("price").alias("source"))
    return (
        stored.join(now, on=["date", "hour"], how="inner")
        .filter(pl.col("stored").ne_missing(pl.col("source")))
        .sort("date", "hour")
    )
