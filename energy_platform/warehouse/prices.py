"""Raw hourly prices and a file's exogenous columns: replace a date range atomically, read it
back, find what is missing.

Prices live in `raw.prices_hourly`, exogenous columns (a CSV's load and wind forecasts) long in
`raw.exogenous_hourly`, written in the same transaction. A day ahead of the prices (a row with
no price and an exogenous forecast: tomorrow's, known today) goes to the exogenous table only,
so the price checks and "the latest stored day" still mean prices.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import polars as pl

from energy_platform.sources.base import exogenous_columns
from energy_platform.warehouse.db import connect, exists, write

PRICE_COLUMNS = ["date", "hour", "ts", "price", "source", "ingested_at"]
EXOGENOUS_COLUMNS = ["date", "hour", "ts", "name", "value", "source", "ingested_at"]


def days_ahead(frame: pl.DataFrame) -> pl.Expr:
    """Rows of a day ahead of the prices: no price, and an exogenous value (none without exogenous columns)."""
    exog = exogenous_columns(frame)
    if not exog:
        return pl.lit(False)
    return pl.col("price").is_null() & pl.any_horizontal([pl.col(c).is_not_null() for c in exog])


def prices_only(frame: pl.DataFrame) -> pl.DataFrame:
    """`read_prices(..., exogenous=True)` as `read_prices` gives it: the priced rows, no exogenous columns."""
    return frame.filter(~days_ahead(frame)).select("ts", "date", "hour", "price")


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
    stamp = [pl.lit(source).alias("source"), pl.lit(datetime.now()).alias("ingested_at")]
    rows = frame.filter(~days_ahead(frame)).select("date", "hour", "ts", "price").with_columns(stamp)
    exog = exogenous_columns(frame)
    long = (
        frame.unpivot(exog, index=["date", "hour", "ts"], variable_name="name", value_name="value")
        .filter(pl.col("value").is_not_null()).with_columns(stamp)
        if exog else pl.DataFrame(schema={c: pl.Utf8 for c in EXOGENOUS_COLUMNS})
    )
    days = frame.select(pl.col("date").unique())

    def replace(conn) -> None:
        conn.execute("DELETE FROM raw.prices_hourly WHERE date IN (SELECT DISTINCT date FROM incoming)")
        conn.execute(f"INSERT INTO raw.prices_hourly ({', '.join(PRICE_COLUMNS)}) SELECT * FROM incoming")
        conn.execute("DELETE FROM raw.exogenous_hourly WHERE date IN (SELECT date FROM incoming_days)")
        if exog:
            conn.execute(f"INSERT INTO raw.exogenous_hourly ({', '.join(EXOGENOUS_COLUMNS)}) SELECT * FROM incoming_exog")

    write(path, replace, {"incoming": rows, "incoming_exog": long, "incoming_days": days})
    return rows.height


def read_prices(path: str | Path, start: date | None = None, end: date | None = None, *,
                exogenous: bool = False) -> pl.DataFrame:
    """Stored rows (ts, date, hour, price) in time order, optionally limited to [start, end].

    With `exogenous`, the stored exogenous series follow as one column each (null where unknown),
    and the days ahead of the prices that carry them are rows with a null price."""
    empty = pl.DataFrame(schema={"ts": pl.Datetime("us"), "date": pl.Date, "hour": pl.Int32, "price": pl.Float64})
    if not exists(path):  # a file not made yet; a DuckLake always answers (its tables made on attach)
        return empty
    bounds = "date BETWEEN coalesce(?::DATE, DATE '0001-01-01') AND coalesce(?::DATE, DATE '9999-12-31')"
    with connect(path, read_only=True) as conn:
        prices = conn.sql(f"SELECT ts, date, hour, price FROM raw.prices_hourly WHERE {bounds} ORDER BY ts",
                          params=[start, end]).pl()
        if not exogenous:
            return prices
        names = [r[0] for r in conn.execute("SELECT DISTINCT name FROM raw.exogenous_hourly ORDER BY name").fetchall()]
        long = conn.sql(f"SELECT ts, date, hour, name, value FROM raw.exogenous_hourly WHERE {bounds}",
                        params=[start, end]).pl()
    if not names:
        return prices
    wide = long.pivot("name", index=["ts", "date", "hour"], values="value") if long.height else long.select("ts", "date", "hour")
    wide = wide.with_columns(pl.lit(None, pl.Float64).alias(n) for n in names if n not in wide.columns)
    return (prices.join(wide, on=["ts", "date", "hour"], how="full", coalesce=True)
            .select("ts", "date", "hour", "price", *names).sort("ts"))


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
