"""When each operating value becomes known: the point-in-time rules of the operating data.

A value's `known_on` is the first morning a forecast may use it. The forecast made on morning
`cutoff + 1` uses data through `cutoff` (the feature store's `cutoff_date`), so a value is known
at a cutoff exactly when `known_on <= cutoff + 1 day`. The same rule caps the embedded sample at
a replay's `as_of` (the last day of data), so a replay never sees what was not yet published.
"""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl

PUBLICATION_LAGS: dict[str, str] = {
    "operating_daily": "day d (demand, generation) is published by XM on d+1",
    "hydrology_monthly": "a monthly mean is complete after the month's last day: usable from the 1st of m+1",
    "enso_oni": "ONI for centre month m needs m+1's sea temperatures, published around the 10th of m+2: "
    "usable from the 15th of m+2",
}
"""The documented lag of each operating series (see the shared data README)."""

DAILY_LAG_DAYS = 1
HYDROLOGY_LAG_MONTHS = 1  # from the first day of month m to the first day of m+1
ONI_LAG_MONTHS = 2
ONI_USABLE_DAY = 15


def daily_known_on(day: pl.Expr | str = "date") -> pl.Expr:
    """Day d's operating values are known on d+1."""
    day = pl.col(day) if isinstance(day, str) else day
    return day + pl.duration(days=DAILY_LAG_DAYS)


def hydrology_known_on(month: pl.Expr | str = "month") -> pl.Expr:
    """Month m (stored as its first day) is known on the first day of m+1."""
    month = pl.col(month) if isinstance(month, str) else month
    return month.dt.offset_by(f"{HYDROLOGY_LAG_MONTHS}mo")


def oni_known_on(month: pl.Expr | str = "month") -> pl.Expr:
    """ONI of centre month m (stored as its first day) is usable from the 15th of m+2."""
    month = pl.col(month) if isinstance(month, str) else month
    return month.dt.offset_by(f"{ONI_LAG_MONTHS}mo") + pl.duration(days=ONI_USABLE_DAY - 1)


# A monthly value stands for the current state until the value of the month two after it was due:
# one late or missing publication is tolerated, two are not. After that the value is unknown (the
# forecaster's missing flag), not carried on for months as if it were news.
STALE_AFTER_MONTHS = 2


def hydrology_stale_on(month: pl.Expr | str = "month") -> pl.Expr:
    """Month m's hydrology is no longer used from the 1st of m+3 (m+1 and m+2 both unpublished)."""
    month = pl.col(month) if isinstance(month, str) else month
    return hydrology_known_on(month.dt.offset_by(f"{STALE_AFTER_MONTHS}mo"))


def oni_stale_on(month: pl.Expr | str = "month") -> pl.Expr:
    """Centre month m's ONI is no longer used from the 15th of m+4."""
    month = pl.col(month) if isinstance(month, str) else month
    return oni_known_on(month.dt.offset_by(f"{STALE_AFTER_MONTHS}mo"))


def decision_day(cutoff: date) -> date:
    """The morning whose forecast uses data through `cutoff`."""
    return cutoff + timedelta(days=1)
