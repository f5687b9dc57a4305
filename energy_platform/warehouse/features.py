"""The feature store table `features.daily`: one row per target day, replaced idempotently.

It is the one source of the forecaster's inputs: `forecaster_model` fits from its rows and
`predictions` forecasts from the target day's row. Each row holds the price lags, calendar and
every operating group's features (demand, hydrology, ENSO), each as known at the row's
`cutoff_date` (publication lags of sources/publication.py), a file's exogenous series
(`raw.exogenous_hourly`: day-ahead forecasts, lags from H - 1) when it has them, and the realised
prices `target_h00..23`; an unknown value is null, never a guess. The rows come from
`build_feature_frame`, the same function the served model runs on a request's raw history.

Its columns follow the forecaster's feature spec, so the table is created from the frame. A
stored table with other columns (written by an earlier spec: an upgrade added or renamed a
feature) is recomputed whole by the next refresh, in one transaction; a write of only some days
in another shape is refused, since it would replace the table's history with those days. So is a
table of another holiday calendar (`ENERGY_PLATFORM_COUNTRY` changed), which the table's comment
names: its holiday columns would disagree with the models' own calendar.

A refresh recomputes new target days and the newest `refresh_days`, and also every target day from
the oldest raw row written since the last refresh (`features.refresh_state` keeps the newest
`ingested_at` the last refresh read): history prepended to a file, a month backfilled out of order
or a day re-read with `full_refresh` reach the rows that read them (helper K, session 20: a
warehouse grown back by a year trained on its last year only).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import polars as pl

from energy_platform.forecasting.features import FeatureSpec, build_feature_frame
from energy_platform.forecasting.operating_features import OperatingData
from energy_platform.warehouse.db import connect, table_names, write_transaction
from energy_platform.warehouse.operating import read_operating
from energy_platform.warehouse.prices import read_prices

TABLE = "features.daily"
STATE = "features.refresh_state"  # one row: the newest raw ingested_at the last refresh had read
RAW_TABLES = {"raw.prices_hourly": "date", "raw.exogenous_hourly": "date", "raw.operating_daily": "date",
              "raw.hydrology_monthly": "month", "raw.enso_oni": "month"}
DESCRIPTION = "Point-in-time features per target day (raw, unscaled); cutoff_date = last day of data used"
CALENDAR_NOTE = "; holidays: "  # then the calendar's code: written in the table's comment
EARLIER_CALENDAR = "CO"  # the calendar of tables written before the comment named one


class FeatureStoreError(ValueError):
    """The stored rows cannot be refreshed as asked (no prices yet, another calendar or shape
    stored): the message names what to run. Other errors are bugs and keep their traceback."""


def _columns(conn) -> list[str]:
    rows = conn.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = 'features' AND table_name = 'daily' "
        "ORDER BY ordinal_position"
    ).fetchall()
    return [r[0] for r in rows]


def _calendar(conn) -> str | None:
    row = conn.execute(
        "SELECT comment FROM duckdb_tables() WHERE database_name = current_database() AND schema_name = 'features' "
        "AND table_name = 'daily'"
    ).fetchone()
    if row is None:
        return None
    comment = row[0] or ""
    return comment.split(CALENDAR_NOTE, 1)[1] if CALENDAR_NOTE in comment else EARLIER_CALENDAR


def raw_changes(path: str | Path, since: datetime | None) -> tuple[date | None, datetime | None]:
    """The oldest day (or month) of a raw row written after `since` (every row when None), and the
    newest `ingested_at` of all: what the next refresh must recompute from, and its mark. Writes
    stamp `ingested_at` to the microsecond, so a write just after a refresh is never in its mark's
    instant. A store refreshed before the mark was kept is recomputed whole, once."""
    with connect(path, read_only=True) as conn:
        present = [t for t in RAW_TABLES if t in table_names(conn)]
        if not present:
            return None, None
        rows = conn.execute(" UNION ALL ".join(
            f"SELECT min({RAW_TABLES[t]}) FILTER (WHERE ingested_at > coalesce(?::TIMESTAMP, TIMESTAMP '0001-01-01')), "
            f"max(ingested_at) FROM {t}" for t in present), [since] * len(present)).fetchall()
    firsts, marks = [r[0] for r in rows if r[0] is not None], [r[1] for r in rows if r[1] is not None]
    return (min(firsts) if firsts else None), (max(marks) if marks else None)


def _refresh_mark(conn) -> datetime | None:
    if STATE not in table_names(conn):
        return None
    row = conn.execute(f"SELECT max(raw_ingested_until) FROM {STATE}").fetchone()
    return row[0] if row else None


def write_features(path: str | Path, frame: pl.DataFrame, *, replace_all: bool = False, country: str = "CO",
                   raw_mark: datetime | None = None) -> int:
    """Replace the rows of the target days in `frame` (or the whole table) in one transaction;
    `country` is the holiday calendar the rows were computed with; `raw_mark` the newest raw
    `ingested_at` they read (kept for the next refresh, in the same transaction)."""
    with write_transaction(path, {"incoming": frame}) as conn:
        calendar = _calendar(conn)
        if calendar is not None and calendar != country and not replace_all:
            raise FeatureStoreError(f"{TABLE} was computed with the holiday calendar {calendar}, these rows with {country}: "
                             "only a full recompute replaces it")
        existing = _columns(conn)
        if existing and existing != frame.columns and not replace_all:
            raise FeatureStoreError(f"{TABLE} holds other columns than these rows ({_column_change(existing, frame.columns)}): "
                             "only a full recompute replaces it, or its other target days would be lost")
        if replace_all:
            conn.execute(f"DROP TABLE IF EXISTS {TABLE}")
            existing = []
        if not existing:
            conn.execute(f"CREATE TABLE {TABLE} AS SELECT * FROM incoming WITH NO DATA")
            conn.execute(f"COMMENT ON TABLE {TABLE} IS '{DESCRIPTION}{CALENDAR_NOTE}{country}'")
        conn.execute(f"DELETE FROM {TABLE} WHERE target_date IN (SELECT target_date FROM incoming)")
        conn.execute(f"INSERT INTO {TABLE} SELECT * FROM incoming")
        if raw_mark is not None:
            conn.execute(f"CREATE TABLE IF NOT EXISTS {STATE} (raw_ingested_until TIMESTAMP NOT NULL)")
            conn.execute(f"DELETE FROM {STATE}")
            conn.execute(f"INSERT INTO {STATE} VALUES (?)", [raw_mark])
    return frame.height


def _column_change(stored: list[str], new: list[str]) -> str:
    added, dropped = [c for c in new if c not in stored], [c for c in stored if c not in new]
    return f"added {added[:5]}, dropped {dropped[:5]}" if added or dropped else "the same columns in another order"


@dataclass(frozen=True)
class StoredFeatures:
    """What `features.daily` holds: its columns ([]: no table yet), holiday calendar, newest target
    day, and the newest raw `ingested_at` its last refresh read (None: before the mark was kept)."""

    columns: list[str]
    calendar: str | None
    latest: date | None
    raw_mark: datetime | None = None


def stored_features(path: str | Path) -> StoredFeatures:
    with connect(path, read_only=True) as conn:
        columns = _columns(conn)
        if not columns:
            return StoredFeatures([], None, None)
        return StoredFeatures(columns, _calendar(conn), conn.execute(f"SELECT max(target_date) FROM {TABLE}").fetchone()[0],
                              _refresh_mark(conn))


def read_features(path: str | Path, start: date | None = None, end: date | None = None) -> pl.DataFrame:
    return read_features_and_calendar(path, start, end)[0]


def read_features_and_calendar(path: str | Path, start: date | None = None, end: date | None = None
                               ) -> tuple[pl.DataFrame, str | None]:
    """The rows of [start, end] and the holiday calendar they were computed with, on one connection."""
    with connect(path, read_only=True) as conn:
        rows = conn.sql(
            f"SELECT * FROM {TABLE} WHERE target_date BETWEEN coalesce(?::DATE, DATE '0001-01-01') "
            "AND coalesce(?::DATE, DATE '9999-12-31') ORDER BY target_date",
            params=[start, end],
        ).pl()
        return rows, _calendar(conn)


def read_operating_data(path: str | Path) -> OperatingData:
    """The three raw operating tables as stored (empty frames where a series has no rows)."""
    return OperatingData(
        read_operating(path, "operating_daily"), read_operating(path, "hydrology_monthly"), read_operating(path, "enso_oni")
    )


def refresh_features(path: str | Path, horizon_days: int, *, full_recompute: bool = False, refresh_days: int = 14,
                     country: str = "CO") -> pl.DataFrame:
    """Compute and store the feature rows a run owes: new target days plus the last `refresh_days`
    (their realised prices arrive late), or every day with `full_recompute` or when the stored
    table has another shape or calendar. `country`: the holiday calendar. Returns the rows written."""
    prices = read_prices(path, exogenous=True)  # with a file's exogenous columns and its days ahead
    priced = prices.filter(pl.col("price").is_not_null())["date"]
    if priced.is_empty():
        raise FeatureStoreError("raw.prices_hourly is empty: materialize raw_prices first")
    # the first day whose lags all lie in the data: where a training window on all of it starts
    first_target = FeatureSpec(horizon_days=horizon_days).first_target(priced.min())
    last_target = priced.max() + timedelta(days=horizon_days)
    stored = StoredFeatures([], None, None) if full_recompute else stored_features(path)
    changed_from, raw_mark = raw_changes(path, stored.raw_mark)
    start = first_target if stored.latest is None else max(first_target, stored.latest - timedelta(days=refresh_days))
    if changed_from is not None:  # a raw row written since the last refresh: every target day that may read it
        start = max(first_target, min(start, changed_from))
    operating = read_operating_data(path)
    frame = build_feature_frame(prices, pl.date_range(start, last_target, "1d", eager=True).to_list(), horizon_days,
                                country=country, operating=operating)
    if (stored.columns and stored.columns != frame.columns) or (stored.calendar is not None and stored.calendar != country):
        # written by an earlier feature spec or calendar: every target day in today's shape, or
        # training and the drift check would read only the few days refreshed here
        full_recompute = True
        frame = build_feature_frame(prices, pl.date_range(first_target, last_target, "1d", eager=True).to_list(), horizon_days,
                                    country=country, operating=operating)
    write_features(path, frame, replace_all=full_recompute, country=country, raw_mark=raw_mark)
    return frame
