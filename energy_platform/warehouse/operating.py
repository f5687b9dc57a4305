"""Operating data in the warehouse: `raw.operating_daily`, `raw.hydrology_monthly`, `raw.enso_oni`.

Writes are idempotent and atomic as for prices: the keys present in the incoming frame are
deleted and re-inserted in one transaction, so a rerun leaves one copy, a crash leaves the old
rows and a short answer never deletes history. Ingestion fetches only what is missing (days or
months without a complete row) unless asked for a full refresh; ONI is re-read whole every time,
because NOAA revises past values and the file is one small request.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import polars as pl

from energy_platform.sources.operating import HISTORY_START, OperatingSource
from energy_platform.sources.operating_files import DAILY_SCHEMA, HYDROLOGY_SCHEMA, ONI_SCHEMA
from energy_platform.warehouse.db import connect, exists, table_names, write


@dataclass(frozen=True)
class Table:
    name: str
    key: str
    schema: dict


TABLES = {
    "operating_daily": Table("raw.operating_daily", "date", DAILY_SCHEMA),
    "hydrology_monthly": Table("raw.hydrology_monthly", "month", HYDROLOGY_SCHEMA),
    "enso_oni": Table("raw.enso_oni", "month", ONI_SCHEMA),
}
OPEN_END = date(9999, 12, 1)


@dataclass(frozen=True)
class OperatingIngest:
    """What one ingestion asked for and wrote; `note` explains an empty series."""

    kind: str
    fetched: tuple[date, date] | None
    rows_written: int  # rows read and stored (a row equal to the stored one stays as it was)
    frame: pl.DataFrame
    note: str | None = None
    rows_changed: int = 0  # of those, rows new or revised (`ingested_at` stamped by this run)


def _ensure_tables(path: str | Path) -> None:
    """Create the warehouse and its tables when a run writes nothing, so checks read an empty table."""
    with connect(path):
        pass


def replace_rows(path: str | Path, kind: str, frame: pl.DataFrame, source: str) -> tuple[int, int]:
    """Replace the rows whose keys are in `frame`, in one transaction; returns (rows read and
    stored, rows of them new or revised).

    A row equal to the stored one is left as stored, its `ingested_at` with it: NOAA's whole ONI
    file, read again every run, re-stamped 900 rows since 1950, and the feature store (which
    recomputes from the oldest row written since its last refresh) rebuilt every day daily (helper P)."""
    table = TABLES[kind]
    rows = frame.select(list(table.schema)).with_columns(
        pl.lit(source).alias("source"),
        pl.lit(datetime.now()).alias("ingested_at"),
    )
    columns = ", ".join(rows.columns)
    same = " AND ".join(f"i.{c} IS NOT DISTINCT FROM t.{c}" for c in rows.columns if c != "ingested_at")

    changed = f"SELECT i.* FROM incoming i WHERE NOT EXISTS (SELECT 1 FROM {table.name} t WHERE {same})"

    def replace(conn) -> int:  # once the changed rows are deleted, the same query selects them to insert
        conn.execute(f"DELETE FROM {table.name} WHERE {table.key} IN (SELECT {table.key} FROM ({changed}))")
        return conn.execute(f"INSERT INTO {table.name} ({columns}) SELECT {columns} FROM ({changed})").fetchone()[0]

    return rows.height, write(path, replace, {"incoming": rows})


def read_operating(path: str | Path, kind: str) -> pl.DataFrame:
    """The stored series `kind` in key order, in the source frame's schema (empty if none yet)."""
    table = TABLES[kind]
    if not exists(path):
        return pl.DataFrame(schema=table.schema)
    with connect(path, read_only=True) as conn:
        if table.name not in table_names(conn):
            return pl.DataFrame(schema=table.schema)
        frame = conn.sql(f"SELECT {', '.join(table.schema)} FROM {table.name} ORDER BY {table.key}").pl()
    return frame.cast(table.schema)


def missing_days(path: str | Path, start: date, end: date) -> list[date]:
    """Days of [start, end] without a stored demand and generation, or with a 0 (impossible: the
    blocking check's ERROR, which held every later forecast back until the day was fetched again,
    helper J in session 19): what a run must fetch."""
    if end < start:
        return []
    with connect(path) as conn:
        rows = conn.execute(
            """
            SELECT d::DATE FROM range(?::TIMESTAMP, ?::TIMESTAMP + INTERVAL 1 DAY, INTERVAL 1 DAY) t(d)
            LEFT JOIN raw.operating_daily o ON o.date = d::DATE
            WHERE o.demand_gwh IS NULL OR o.generation_gwh IS NULL OR o.demand_gwh = 0 OR o.generation_gwh = 0 ORDER BY 1
            """,
            [start, end],
        ).fetchall()
    return [r[0] for r in rows]


SETTLED_MONTHS = 2  # a month this far behind the newest stored one is taken as final


def first_month_to_fetch(path: str | Path) -> date:
    """The oldest recent month (the newest stored one and the `SETTLED_MONTHS` before it) that is
    missing, was averaged over fewer days than it has or does not say over how many (a file's),
    else the month after the newest.

    Past the newest stored month everything is fetched (the source clips to what it has). An older
    month that stayed short or missing is final: asking for it again would re-fetch every month
    from it to today on every run, a little more each day, for a day the source does not have
    (`full_refresh` re-reads everything).
    """
    with connect(path) as conn:
        stored = conn.sql(
            "SELECT month, days_observed FROM raw.hydrology_monthly WHERE month >= ? ORDER BY month",
            params=[HISTORY_START],
        ).pl()
    if stored.is_empty():
        return HISTORY_START
    newest = stored["month"].max()
    recent = max(pl.Series([newest]).dt.offset_by(f"-{SETTLED_MONTHS}mo")[0], HISTORY_START)
    expected = pl.date_range(recent, newest, "1mo", eager=True)
    gaps = expected.filter(~expected.is_in(stored["month"].implode()))
    # a file's row has no days_observed: a month exported mid-month stayed frozen at its month-to-date
    # mean (helper J, session 19), so the recent months of a file are read again (a few rows)
    short = stored.filter((pl.col("month") >= recent) & (pl.col("days_observed").is_null()
                                                         | (pl.col("days_observed") < pl.col("month").dt.month_end().dt.day())))["month"]
    after = pl.Series([newest]).dt.offset_by("1mo")
    return pl.concat([gaps, short, after]).min()


def ingest_operating_daily(
    path: str | Path, source: OperatingSource, start: date, end: date, *, full_refresh: bool = False
) -> OperatingIngest:
    """Store [start, end] ∩ what the source has; without `full_refresh`, fetch only missing days."""
    kind = "operating_daily"
    empty = pl.DataFrame(schema=DAILY_SCHEMA)
    note = source.note(kind)
    end = min(end, source.last_date())
    if note or end < start:
        _ensure_tables(path)
        return OperatingIngest(kind, None, 0, empty, note)
    if full_refresh:
        fetch = (start, end)
    else:
        missing = missing_days(path, start, end)
        if not missing:
            return OperatingIngest(kind, None, 0, empty)
        fetch = (missing[0], missing[-1])
    frame = source.operating_daily(*fetch)
    written, changed = replace_rows(path, kind, frame, source.name) if frame.height else (0, 0)
    return OperatingIngest(kind, fetch, written, frame, rows_changed=changed)


def ingest_hydrology(path: str | Path, source: OperatingSource, *, full_refresh: bool = False) -> OperatingIngest:
    """Store the monthly hydrology from HISTORY_START; without `full_refresh`, from the first gap on."""
    kind = "hydrology_monthly"
    note = source.note(kind)
    if note:
        _ensure_tables(path)
        return OperatingIngest(kind, None, 0, pl.DataFrame(schema=HYDROLOGY_SCHEMA), note)
    first = HISTORY_START if full_refresh else first_month_to_fetch(path)
    frame = source.hydrology_monthly(first, OPEN_END)
    written, changed = replace_rows(path, kind, frame, source.name) if frame.height else (0, 0)
    fetched = (first, frame["month"].max()) if frame.height else None
    return OperatingIngest(kind, fetched, written, frame, rows_changed=changed)


def ingest_oni(path: str | Path, source: OperatingSource) -> OperatingIngest:
    """Store the whole ONI series the source has (revisions included)."""
    kind = "enso_oni"
    note = source.note(kind)
    if note:
        _ensure_tables(path)
        return OperatingIngest(kind, None, 0, pl.DataFrame(schema=ONI_SCHEMA), note)
    frame = source.oni_monthly()
    written, changed = replace_rows(path, kind, frame, source.name) if frame.height else (0, 0)
    if not written:
        _ensure_tables(path)
    fetched = (frame["month"].min(), frame["month"].max()) if frame.height else None
    return OperatingIngest(kind, fetched, written, frame, rows_changed=changed)
