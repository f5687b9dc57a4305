"""Bring a date range of prices from a source into the warehouse, fetching only what is missing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import polars as pl

from energy_platform.sources.base import PriceSource
from energy_platform.warehouse.prices import incomplete_days, replace_prices


@dataclass(frozen=True)
class IngestReport:
    requested: tuple[date, date] | None  # the window, clipped to what the source can have
    fetched: tuple[date, date] | None  # what was actually asked of the source
    rows_written: int
    frame: pl.DataFrame  # the rows written


def ingest_range(
    warehouse: str | Path, source: PriceSource, start: date, end: date, *, full_refresh: bool = False
) -> IngestReport:
    """Store [start, end] ∩ what the source has; without `full_refresh`, fetch only incomplete days.

    The daily run therefore downloads yesterday (and any day still missing hours) and nothing
    else, however coarse the partition it runs in.
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
            return IngestReport((start, end), None, 0, empty)
        fetch_from, fetch_to = (missing[0], missing[-1]) if missing else ahead
    if ahead is not None:
        fetch_from, fetch_to = min(fetch_from, ahead[0]), ahead[1]
    frame = source.hourly_prices(fetch_from, fetch_to)
    if frame.is_empty():
        return IngestReport((start, end), (fetch_from, fetch_to), 0, frame)
    written = replace_prices(warehouse, frame, fetch_from, fetch_to, source.name)
    return IngestReport((start, end), (fetch_from, fetch_to), written, frame)
