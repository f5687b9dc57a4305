"""The warehouse schema, created by the code on every write connection (idempotent DDL)."""

from __future__ import annotations

import duckdb

DDL = [
    "CREATE SCHEMA IF NOT EXISTS raw",
    """
    CREATE TABLE IF NOT EXISTS raw.prices_hourly (
        date DATE NOT NULL,
        hour INTEGER NOT NULL CHECK (hour BETWEEN 0 AND 23),
        ts TIMESTAMP NOT NULL,
        price DOUBLE,
        source VARCHAR NOT NULL,
        ingested_at TIMESTAMP NOT NULL,
        PRIMARY KEY (date, hour)
    )
    """,
    "COMMENT ON TABLE raw.prices_hourly IS "
    "'Hourly national bolsa price (COP/kWh) as delivered by the source; null = missing hour, never filled'",
]


def ensure_schema(conn: duckdb.DuckDBPyConnection) -> None:
    for statement in DDL:
        conn.execute(statement)
