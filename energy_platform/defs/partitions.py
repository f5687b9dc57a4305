"""Partitions, chosen by unit of work and by what a Dagster partition costs here (see README).

Raw prices are monthly: a ten-year backfill is 120 partitions instead of 3,653, which keeps
Dagster's per-partition bookkeeping from dominating; the daily run still only fetches yesterday.

A file source's month partitions run from its first month to its last day, read when the
definitions load (another market's CSV often starts before 2015: NP's and PJM's in 2013). A file
that cannot be read must not stop the code location from loading (the UI would show only a load
error): its partitions then run from 2015-01 to today, like the live source's, and the asset that
reads the file fails with the file, line and problem.

Days and months are the market's (`ENERGY_PLATFORM_TIMEZONE`, XM's America/Bogota by default):
the hourly timestamps are in its local time, so its day is the partitions' day.
"""

from __future__ import annotations

import logging
import math
from datetime import date, timedelta
from typing import NamedTuple

import dagster as dg

from energy_platform.forecasting.features import FeatureSpec
from energy_platform.settings import DEFAULT_TIMEZONE
from energy_platform.sources import SourceError, get_source

log = logging.getLogger(__name__)

HISTORY_START = "2015-01-01"


def _first_of_next_month(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


class FileDates(NamedTuple):
    """A file source's first and last day of prices, and its last day of any row (days ahead of
    the prices carry exogenous forecasts: their month needs a partition to be stored)."""

    first: date
    last: date
    data_end: date


SourceDates = FileDates | None  # None: the live source, or a file that cannot be read


def source_dates(source_spec: str) -> SourceDates:
    """The source's first and last day, or None when the source is live or its file cannot be read.
    Read once per definitions load: every partitions definition below takes its answer.

    No price bounds here: the partitions need the dates only, values are the asset's business.
    """
    if source_spec == "xm":
        return None
    try:
        source = get_source(source_spec, price_floor=None, price_ceiling=math.inf)
        return FileDates(source.first_date(), source.last_date(), source.data_end())
    except SourceError as exc:
        log.warning("%s cannot be read (%s): partitions run to today; the ingestion asset will fail", source_spec, exc)
        return None


def raw_price_partitions(dates: SourceDates, timezone: str = DEFAULT_TIMEZONE) -> dg.MonthlyPartitionsDefinition:
    """Month partitions from the source's first month (2015-01 for the live source) up to the
    last month it can have: the running month included (its days to yesterday are there), as of
    now for the live source and, for a file, up to its last day's month (a file kept current by
    a daily export gets the running month too: without the offset Dagster only lists months that
    have ended, and the morning schedule's run for this month's partition was refused)."""
    if dates is None:
        # The live source has data to yesterday: include the running month.
        return dg.MonthlyPartitionsDefinition(start_date=HISTORY_START, timezone=timezone, end_offset=1)
    first, last = dates.first.replace(day=1), dates.data_end
    end = max(_first_of_next_month(last), _first_of_next_month(first))  # a file of less than a day: one month
    return dg.MonthlyPartitionsDefinition(start_date=first.isoformat(), end_date=end.isoformat(), timezone=timezone, end_offset=1)


def _target_days(dates: SourceDates, days_after_last: int, timezone: str, horizon_days: int) -> dg.DailyPartitionsDefinition:
    """Daily partitions from a month after the history's first day (2015-02-01 for the live
    source; a file's first month + 1, and not before its first feature row: a file starting on
    the 28th had days that could never be forecast) to the source's last
    day + `days_after_last` (the live source: yesterday + that many days; a file's end is also
    capped by today's, as the live source's, for a file kept current)."""
    first = date.fromisoformat(HISTORY_START) if dates is None else dates.first
    start = max(_first_of_next_month(first), FeatureSpec(horizon_days=horizon_days).first_target(first))
    if dates is None:
        return dg.DailyPartitionsDefinition(start_date=start.isoformat(), timezone=timezone, end_offset=days_after_last)
    end = max(dates.last + timedelta(days=days_after_last + 1), start + timedelta(days=1))  # a file shorter than a month: one day
    return dg.DailyPartitionsDefinition(start_date=start.isoformat(), end_date=end.isoformat(), timezone=timezone,
                                        end_offset=days_after_last)


def prediction_partitions(dates: SourceDates, horizon_days: int, timezone: str = DEFAULT_TIMEZONE) -> dg.DailyPartitionsDefinition:
    """One partition per target day, up to the day the latest data can forecast (last day + H;
    live: data to yesterday forecasts yesterday + H, with H=2 tomorrow)."""
    return _target_days(dates, horizon_days, timezone, horizon_days)


def realised_partitions(dates: SourceDates, horizon_days: int, timezone: str = DEFAULT_TIMEZONE) -> dg.DailyPartitionsDefinition:
    """One partition per day whose prices can have arrived (up to the source's last day) and
    can have a forecast to score (the same first day as the predictions)."""
    return _target_days(dates, 0, timezone, horizon_days)
