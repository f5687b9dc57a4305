"""Raw hourly prices: replace a date range atomically, read it back, find what is missing."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import polars as pl

from energy_platform.warehouse.db import connect, exists, write

PRICE_COLUMNS = ["date", "hour", "ts", "price", "source", "ingested_at"]


def replace_prices(path: str | Path, frame: pl.DataFrame, start: date, end: date, source: str) -> int:
    """Replace the stored rows of every day present in `frame` (all within [start, end]) at once.

    Running the same range twice leaves exactly one copy; a crash mid-write leaves the previous
    rows, because DuckDB rolls the uncommitted transaction back on the next open (a DuckLake
    never commits it). A write that conflicts with a concurrent one on a DuckLake is re-run (db.write). Days the source
    did not answer for are left as stored: a short answer never deletes history.
    """
    outside = frame.filter(~pl.col("date").is_between(start, end))
    if outside.height:
        raise ValueError(f"{outside.height} rows fall outside the range {start}..{end} being replaced")
    rows = frame.select("date", "hour", "ts", "price").with_columns(
        pl.lit(source).alias("source"),
        pl.lit(datetime.now().replace(microsecond=0)).alias("ingested_at"),
    )

    def replace(conn) -> None:
        conn.execute("DELETE FROM raw.prices_hourly WHERE date IN (SELECT DISTINCT date FROM incoming)")
        conn.execute(f"INSERT INTO raw.prices_hourly ({', '.join(PRICE_COLUMNS)}) SELECT * FROM incoming")

    write(path, replace, {"incoming": rows})
    return rows.height


def read_prices(path: str | Path, start: date | None = None, end: date | None = None) -> pl.DataFrame:
    """Stored rows (ts, date, hour, price) in time order, optionally limited to [start, end]."""
    if not exists(path):  # a file not made yet; a DuckLake always answers (its tables made on attach)
        return pl.DataFrame(schema={"ts": pl.Datetime("us"), "date": pl.Date, "hour": pl.Int32, "price": pl.Float64})
    with connect(path, read_only=True) as conn:
        return conn.sql(
            "SELECT ts, date, hour, price FROM raw.prices_hourly "
            "WHERE date BETWEEN coalesce(?::DATE, DATE '0001-01-01') "
            "AND coalesce(?::DATE, DATE '9999-12-31') ORDER BY ts",
            params=[start, end],
        ).pl()


def latest_day(path: str | Path) -> date | None:
    """The newest stored day of prices (None for an empty or not yet created warehouse)."""
    if not exists(path):
        return None
    with connect(path, read_only=True) as conn:
        return conn.execute("SELECT max(date) FROM raw.prices_hourly").fetchall()[0][0]


def incomplete_days(path: str | Path, start: date, end: date) -> list[date]:
    """Days of [start, end] without 24 stored non-null prices: what an incremental run must fetch."""
    if end < start:
        return []
    with connect(path) as conn:
        rows = conn.execute(
            """
            SELECT d::DATE AS day
            FROM range(?::TIMESTAMP, ?::TIMESTAMP + INTERVAL 1 DAY, INTERVAL 1 DAY) t(d)
            LEFT JOIN (
                SELECT date, count(price) AS n FROM raw.prices_hourly
                WHERE date BETWEEN ? AND ? GROUP BY date
            ) s ON s.date = d::DATE
            WHERE coalesce(s.n, 0) < 24
            ORDER BY day
            """,
            [start, end, start, end],
        ).fetchall()
    return [r[0] for r in rows]
