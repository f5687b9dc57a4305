"""The warehouse schema, created by the code on every write connection (idempotent DDL).

These tables are the contract between the pipeline's parts; the analysts' file
(`analytics.duckdb`) is published from them. The feature table is created from the feature
frame itself (its columns follow the forecaster's feature spec), see warehouse/features.py.
"""

from __future__ import annotations

import re
from functools import lru_cache

import duckdb

DDL = [
    "CREATE SCHEMA IF NOT EXISTS raw",
    "CREATE SCHEMA IF NOT EXISTS features",
    "CREATE SCHEMA IF NOT EXISTS ml",
    "CREATE SCHEMA IF NOT EXISTS monitoring",
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
    "'Hourly day-ahead price in the market''s unit (ENERGY_PLATFORM_PRICE_UNIT; XM: national bolsa price, COP/kWh) "
    "as delivered by the source; null = missing hour, never filled'",
    """
    CREATE TABLE IF NOT EXISTS raw.exogenous_hourly (
        date DATE NOT NULL,
        hour INTEGER NOT NULL CHECK (hour BETWEEN 0 AND 23),
        ts TIMESTAMP NOT NULL,
        name VARCHAR NOT NULL,
        value DOUBLE NOT NULL,
        source VARCHAR NOT NULL,
        ingested_at TIMESTAMP NOT NULL,
        PRIMARY KEY (date, hour, name)
    )
    """,
    "COMMENT ON TABLE raw.exogenous_hourly IS "
    "'A price file''s exogenous columns (e.g. load and wind forecasts), one row per hour and name, as delivered; "
    "the value of day d is a forecast known on d-1, so a file may carry the day after its last price'",
    """
    CREATE TABLE IF NOT EXISTS raw.operating_daily (
        date DATE PRIMARY KEY,
        demand_gwh DOUBLE,
        generation_gwh DOUBLE,
        unserved_demand_mwh DOUBLE,
        exports_gwh DOUBLE,
        imports_gwh DOUBLE,
        source VARCHAR NOT NULL,
        ingested_at TIMESTAMP NOT NULL
    )
    """,
    "COMMENT ON TABLE raw.operating_daily IS "
    "'Daily SIN demand and generation (GWh), unserved demand (MWh), exports and imports (GWh); "
    "day d is known on d+1; a missing day has no row, never a filled one'",
    """
    CREATE TABLE IF NOT EXISTS raw.hydrology_monthly (
        month DATE PRIMARY KEY,
        inflows_pct_of_historical_mean DOUBLE,
        reservoir_useful_volume_pct DOUBLE,
        days_observed INTEGER,
        source VARCHAR NOT NULL,
        ingested_at TIMESTAMP NOT NULL
    )
    """,
    "COMMENT ON TABLE raw.hydrology_monthly IS "
    "'Monthly mean SIN inflows (% of historical mean, XM PorcApor) and useful reservoir volume (%, XM PorcVoluUtilDiar); "
    "month = first day; known from the 1st of the next month; days_observed = daily values behind the mean (null if the source gave the mean)'",
    """
    CREATE TABLE IF NOT EXISTS raw.enso_oni (
        month DATE PRIMARY KEY,
        season VARCHAR NOT NULL,
        oni DOUBLE,
        source VARCHAR NOT NULL,
        ingested_at TIMESTAMP NOT NULL
    )
    """,
    "COMMENT ON TABLE raw.enso_oni IS "
    "'NOAA CPC Oceanic Nino Index (degC anomaly) by centre month of its 3-month season; usable from the 15th of month+2'",
    """
    CREATE TABLE IF NOT EXISTS ml.predictions (
        target_date DATE NOT NULL,
        hour INTEGER NOT NULL CHECK (hour BETWEEN 0 AND 23),
        ts TIMESTAMP NOT NULL,
        forecast DOUBLE NOT NULL,
        p10 DOUBLE NOT NULL,
        p50 DOUBLE NOT NULL,
        p90 DOUBLE NOT NULL,
        model_version VARCHAR NOT NULL,
        mlflow_run_id VARCHAR NOT NULL,
        feature_cutoff DATE NOT NULL,
        created_at TIMESTAMP NOT NULL,
        dagster_run_id VARCHAR,
        PRIMARY KEY (target_date, hour, model_version)
    )
    """,
    "COMMENT ON TABLE ml.predictions IS "
    "'Day-ahead forecasts, 24 rows per target day and model version; every version''s forecast is kept'",
    # the operating groups the model reads that its target row did not know (session 10, issue 12)
    "ALTER TABLE ml.predictions ADD COLUMN IF NOT EXISTS operating_unknown VARCHAR",
    """
    CREATE TABLE IF NOT EXISTS ml.model_versions (
        version VARCHAR PRIMARY KEY,
        mlflow_run_id VARCHAR NOT NULL,
        registered_at TIMESTAMP NOT NULL,
        train_start DATE,
        train_end DATE,
        data_fingerprint VARCHAR,
        backtest_start DATE,
        backtest_end DATE,
        backtest_mae DOUBLE,
        backtest_rmae DOUBLE,
        backtest_pinball DOUBLE,
        backtest_coverage_80 DOUBLE,
        dagster_run_id VARCHAR,
        gate_decision VARCHAR,
        aliases VARCHAR
    )
    """,
    # Added with the registry's baseline versions and lineage (existing warehouses gain them here).
    "ALTER TABLE ml.model_versions ADD COLUMN IF NOT EXISTS kind VARCHAR",
    "ALTER TABLE ml.model_versions ADD COLUMN IF NOT EXISTS git_commit VARCHAR",
    "ALTER TABLE ml.model_versions ADD COLUMN IF NOT EXISTS gate_reason VARCHAR",
    "ALTER TABLE ml.model_versions ADD COLUMN IF NOT EXISTS history_days INTEGER",
    "ALTER TABLE ml.model_versions ADD COLUMN IF NOT EXISTS operating_groups VARCHAR",
    "COMMENT ON TABLE ml.model_versions IS "
    "'Every registered version of day_ahead_price_forecaster with its backtest and gate decision'",
    """
    CREATE TABLE IF NOT EXISTS ml.champion_history (
        changed_at TIMESTAMP NOT NULL,
        version VARCHAR NOT NULL,
        previous_version VARCHAR,
        reason VARCHAR NOT NULL
    )
    """,
    "COMMENT ON TABLE ml.champion_history IS 'Each time the champion alias moved (promotion or rollback)'",
    """
    CREATE TABLE IF NOT EXISTS monitoring.forecast_accuracy (
        target_date DATE NOT NULL,
        model_version VARCHAR NOT NULL,
        hours INTEGER NOT NULL,
        mae DOUBLE,
        rmse DOUBLE,
        smape DOUBLE,
        naive_w_mae DOUBLE,
        rmae DOUBLE,
        pinball DOUBLE,
        coverage_80 DOUBLE,
        computed_at TIMESTAMP NOT NULL,
        PRIMARY KEY (target_date, model_version)
    )
    """,
    "COMMENT ON TABLE monitoring.forecast_accuracy IS "
    "'Realised accuracy of each forecast day once its actual prices arrived, per model version'",
    """
    CREATE TABLE IF NOT EXISTS monitoring.drift_checks (
        checked_at TIMESTAMP NOT NULL,
        check_name VARCHAR NOT NULL,
        asset VARCHAR NOT NULL,
        reference_start DATE,
        reference_end DATE,
        current_start DATE,
        current_end DATE,
        n_columns INTEGER,
        drift_share DOUBLE,
        drifted_columns VARCHAR,
        severity VARCHAR NOT NULL,
        report_path VARCHAR,
        dagster_run_id VARCHAR,
        report_url VARCHAR
    )
    """,
    # Added with the reports' MLflow links (existing warehouses gain it here).
    "ALTER TABLE monitoring.drift_checks ADD COLUMN IF NOT EXISTS report_url VARCHAR",
    "COMMENT ON TABLE monitoring.drift_checks IS "
    "'One row per drift evaluation; severity is pass, warn, error or not_enough_data; drifted_columns is JSON'",
    """
    CREATE TABLE IF NOT EXISTS monitoring.alerts (
        raised_at TIMESTAMP NOT NULL,
        kind VARCHAR NOT NULL,
        dagster_run_id VARCHAR,
        job_name VARCHAR,
        message VARCHAR NOT NULL
    )
    """,
    "COMMENT ON TABLE monitoring.alerts IS 'Failures and requests the team must see (run failures, retraining requests)'",
]


def ensure_schema(conn: duckdb.DuckDBPyConnection) -> None:
    for statement in DDL:
        conn.execute(statement)


def lake_ddl() -> list[str]:
    """The same schema for DuckLake, which refuses PRIMARY KEY and CHECK constraints.

    A key column keeps NOT NULL (DuckLake has it); uniqueness is then upheld by the writes
    themselves (every write deletes the keys it replaces, in the same transaction) and checked
    by the asset checks (`no_duplicate_hours`), as the file's constraint did not need to be.
    """
    out = []
    for statement in DDL:
        statement = re.sub(r",\s*PRIMARY KEY \([^)]*\)", "", statement)
        statement = re.sub(r"\s+PRIMARY KEY\b", " NOT NULL", statement)
        statement = re.sub(r"\s+CHECK \([^()]*\)", "", statement)
        out.append(statement)
    return out


_COLUMNS_SQL = (
    "SELECT schema_name, table_name, column_name FROM duckdb_columns() WHERE database_name = ? "
    "AND schema_name IN ('raw', 'ml', 'monitoring')"
)


@lru_cache(maxsize=1)
def _expected_columns() -> frozenset[tuple[str, str, str]]:
    with duckdb.connect(":memory:") as conn:
        conn.execute("ATTACH ':memory:' AS contract")
        conn.execute("USE contract")
        for statement in lake_ddl():
            conn.execute(statement)
        return frozenset(conn.execute(_COLUMNS_SQL, ["contract"]).fetchall())


def ensure_lake_schema(conn: duckdb.DuckDBPyConnection, catalog: str) -> bool:
    """Create or complete the schema in the DuckLake `catalog`, in one transaction (one snapshot).

    Unlike a file, where idempotent DDL costs nothing, every COMMENT or ALTER on a lake is a new
    snapshot: so the DDL runs only when a table or column of the contract is missing. Returns
    whether it ran. Two processes creating it at once conflict; the caller retries.
    """
    present = set(conn.execute(_COLUMNS_SQL, [catalog]).fetchall())
    if _expected_columns() <= present:
        return False
    cursor = conn.cursor()
    try:
        cursor.execute(f"USE {catalog}")
        cursor.execute("BEGIN TRANSACTION")
        try:
            for statement in lake_ddl():
                cursor.execute(statement)
        except BaseException:
            cursor.execute("ROLLBACK")
            raise
        cursor.execute("COMMIT")
    finally:
        cursor.close()
    return True
