"""Partitions, chosen by unit of work and by what a Dagster partition costs here (see README).

Raw prices are monthly: a ten-year backfill is 120 partitions instead of 3,653, which keeps
Dagster's per-partition bookkeeping from dominating; the daily run still only fetches yesterday.
"""

from __future__ import annotations

from datetime import date, timedelta

import dagster as dg

from energy_platform.sources import get_source

TIMEZONE = "America/Bogota"
HISTORY_START = "2015-01-01"


def _first_of_next_month(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def raw_price_partitions(source_spec: str) -> dg.MonthlyPartitionsDefinition:
    """Month partitions from 2015-01 up to the last month the source can have."""
    if source_spec == "xm":
        # The live source has data to yesterday: include the running month.
        return dg.MonthlyPartitionsDefinition(start_date=HISTORY_START, timezone=TIMEZONE, end_offset=1)
    last = get_source(source_spec).last_date()
    return dg.MonthlyPartitionsDefinition(
        start_date=HISTORY_START, end_date=_first_of_next_month(last).isoformat(), timezone=TIMEZONE
    )


PREDICTIONS_START = "2015-02-01"  # a forecast needs some history; earlier days cannot be served


def prediction_partitions(source_spec: str, horizon_days: int) -> dg.DailyPartitionsDefinition:
    """One partition per target day, up to the day the latest data can forecast (last day + H)."""
    if source_spec == "xm":
        # Data to yesterday (D-1) forecasts D-1+H: with H=2, tomorrow.
        return dg.DailyPartitionsDefinition(start_date=PREDICTIONS_START, timezone=TIMEZONE, end_offset=horizon_days)
    last = get_source(source_spec).last_date()
    end = last + timedelta(days=horizon_days + 1)
    return dg.DailyPartitionsDefinition(start_date=PREDICTIONS_START, end_date=end.isoformat(), timezone=TIMEZONE)


def realised_partitions(source_spec: str) -> dg.DailyPartitionsDefinition:
    """One partition per day whose prices can have arrived: up to the source's last day."""
    if source_spec == "xm":
        return dg.DailyPartitionsDefinition(start_date=PREDICTIONS_START, timezone=TIMEZONE)  # to yesterday
    end = get_source(source_spec).last_date() + timedelta(days=1)
    return dg.DailyPartitionsDefinition(start_date=PREDICTIONS_START, end_date=end.isoformat(), timezone=TIMEZONE)
