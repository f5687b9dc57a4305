"""The dashboard's queries: read-only, short-lived connections to `analytics.duckdb`, cached.

Every cached function takes the snapshot token (inode, mtime, size of the file): a new publish
changes it, so the next rerun reads the new snapshot at once; the ttl bounds memory otherwise.
The dashboard never opens the warehouse.
"""

from __future__ import annotations

import os
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import polars as pl
import streamlit as st

from energy_platform.scoring import pool, pool_trailing
from energy_platform.settings import DEFAULT_PRICE_UNIT, DEFAULT_TIMEZONE, from_env, parse_timezone

TTL_SECONDS = 300
CHAMPION = "__champion__"  # forecast_vs_actual: "whichever version was champion that day"


def market_today() -> date:
    """Today in the market's time zone (ENERGY_PLATFORM_TIMEZONE, as the platform's runs)."""
    try:
        zone = parse_timezone(os.environ.get("ENERGY_PLATFORM_TIMEZONE", DEFAULT_TIMEZONE))
    except ValueError:
        zone = DEFAULT_TIMEZONE
    return datetime.now(ZoneInfo(zone)).date()


def analytics_path() -> Path:
    """`ENERGY_PLATFORM_HOME/analytics.duckdb`; `from_env()` creates no folder."""
    return from_env().analytics_path


def home() -> Path:
    return from_env().home


def snapshot_token(path: str | Path) -> tuple[int, int, int] | None:
    """Identity of the published file now; None when nothing is published yet."""
    try:
        st_ = os.stat(path)
    except FileNotFoundError:
        return None
    return (st_.st_ino, st_.st_mtime_ns, st_.st_size)


def price_unit(metadata: pl.DataFrame) -> str:
    """The snapshot's price unit; older snapshots, all from XM's bolsa, did not record it."""
    if "price_unit" in metadata.columns and metadata.height:
        return metadata["price_unit"][0]
    return DEFAULT_PRICE_UNIT


def open_snapshot(path: str) -> duckdb.DuckDBPyConnection:
    """The published file, read-only, as it is now. Attached to a connection of its own: a
    `duckdb.connect(path)` made while another viewer's connection to the same path is open reuses
    that database, the snapshot before the last republish (the file is swapped, not written)."""
    conn = duckdb.connect(":memory:")
    try:
        quoted = str(path).replace("'", "''")  # ATTACH takes no parameter
        conn.execute(f"ATTACH '{quoted}' AS snapshot (READ_ONLY)")
        conn.execute("USE snapshot")
    except Exception:
        conn.close()
        raise
    return conn


def _frames(path: str, queries: dict[str, tuple[str, list]]) -> dict[str, pl.DataFrame]:
    conn = open_snapshot(path)
    try:
        return {name: conn.sql(sql, params=params or None).pl() for name, (sql, params) in queries.items()}
    finally:
        conn.close()


OVERVIEW = {
    # every column: a snapshot published before `price_unit` existed still opens (price_unit() below)
    "metadata": ("SELECT * FROM metadata ORDER BY table_name", []),
    "freshness": (
        """
        SELECT (SELECT max(date) FROM prices_hourly WHERE price IS NOT NULL) AS last_price_date,
               (SELECT min(date) FROM prices_hourly) AS first_price_date,
               (SELECT min(target_date) FROM forecasts) AS first_forecast_date,
               (SELECT max(target_date) FROM forecasts) AS last_forecast_date,
               (SELECT max(published_at) FROM metadata) AS published_at
        """,
        [],
    ),
    # The champion's latest forecast day; if no row is flagged (no champion history), the
    # current champion's latest day; else the newest forecast of any version.
    "tomorrow": (
        """
        WITH pick AS (
            SELECT * EXCLUDE (ts, mlflow_run_id, feature_cutoff, is_champion_forecast),  -- with operating_unknown when published
                   CASE WHEN is_champion_forecast THEN 0
                        WHEN model_version IN (SELECT version FROM model_versions WHERE is_champion) THEN 1
                        ELSE 2 END AS rank_
            FROM forecasts
        ), best AS (
            SELECT rank_, target_date FROM pick ORDER BY rank_, target_date DESC LIMIT 1
        )
        SELECT * EXCLUDE (rank_, created_at), rank_ > 0 AS fallback
        FROM pick JOIN best USING (rank_, target_date)
        QUALIFY row_number() OVER (PARTITION BY hour ORDER BY created_at DESC) = 1
        ORDER BY hour
        """,
        [],
    ),
    "last_actual": (
        """
        SELECT date, hour, price FROM prices_hourly
        WHERE date = (SELECT max(date) FROM prices_hourly WHERE price IS NOT NULL)
        ORDER BY hour
        """,
        [],
    ),
    # Stored daily scores; every rMAE on the page is pooled from them by `energy_platform.scoring`
    # (sum of the model's absolute errors / sum of the weekly naive's over the stated window, the
    # Dagster check's definition), never a mean of daily ratios.
    "accuracy": (
        """
        SELECT target_date, model_version, hours, mae, naive_w_mae, rmae, coverage_80
        FROM forecast_accuracy_daily ORDER BY model_version, target_date
        """,
        [],
    ),
    "drift_latest": (
        """
        SELECT *  -- every column there is: a snapshot published before report_url existed has none
        FROM drift_checks
        QUALIFY row_number() OVER (PARTITION BY check_name, asset ORDER BY checked_at DESC) = 1
        ORDER BY check_name
        """,
        [],
    ),
    "drift_flagged": (
        """
        SELECT checked_at::DATE AS dia, check_name, asset, severity, drift_share, drifted_columns
        FROM drift_checks WHERE severity IN ('warn', 'error') ORDER BY checked_at DESC LIMIT 50
        """,
        [],
    ),
    "model_versions": (
        """
        SELECT version, kind, is_champion, aliases, gate_decision, gate_reason, registered_at, train_start, train_end,
               backtest_start, backtest_end, backtest_mae, backtest_rmae, backtest_coverage_80,
               first_champion_at, times_champion, mlflow_run_id,
               (SELECT count(DISTINCT target_date) FROM forecasts f WHERE f.model_version = m.version) AS forecast_days
        FROM model_versions m ORDER BY registered_at DESC
        """,
        [],
    ),
    "champion_periods": (
        ("SELECT version, champion_from, champion_until, previous_version, reason FROM champion_periods "
         "ORDER BY champion_from DESC"),
        [],
    ),
    "forecast_versions": (
        "SELECT model_version, count(DISTINCT target_date) AS days FROM forecasts GROUP BY ALL ORDER BY ALL",
        [],
    ),
    "alerts": ("SELECT raised_at, kind, job_name, message FROM alerts ORDER BY raised_at DESC LIMIT 10", []),
}


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def load_overview(path: str, token: tuple) -> dict[str, pl.DataFrame]:
    """Everything the page shows except the chosen date range, in one read-only connection."""
    frames = _frames(path, OVERVIEW)
    acc = frames["accuracy"]
    frames["accuracy"] = acc.with_columns(pool_trailing(acc, 7, by=["model_version"]))
    frames["accuracy_summary"] = accuracy_summary(acc)
    return frames


def accuracy_summary(daily: pl.DataFrame, recent_days: int = 28) -> pl.DataFrame:
    """Per version: days, last day, MAE, rMAE and coverage over all its days, and the rMAE of its
    last `recent_days` days (the header's figure, the window of the Dagster check)."""
    if daily.is_empty():
        return pl.DataFrame(schema={"version": pl.String, "days": pl.Int32, "desde": pl.Date, "hasta": pl.Date,
                                    "mae": pl.Float64, "rmae": pl.Float64, "coverage_80": pl.Float64, "rmae_28d": pl.Float64})
    recent = daily.filter(pl.col("target_date") > pl.col("target_date").max().over("model_version") - timedelta(days=recent_days))
    return (
        pool(daily, by=["model_version"])
        .join(pool(recent, by=["model_version"]).select("model_version", pl.col("rmae").alias("rmae_28d")), on="model_version")
        .select(pl.col("model_version").alias("version"), "days", pl.col("first_day").alias("desde"),
                pl.col("last_day").alias("hasta"), "mae", "rmae", "coverage_80", "rmae_28d")
        .sort("version")
    )


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def load_forecast_vs_actual(path: str, token: tuple, start: date, end: date, version: str) -> pl.DataFrame:
    """Hourly forecast, band and actual in [start, end] for one version, or for whichever
    version was champion when each day was forecast (`CHAMPION`)."""
    if version == CHAMPION:
        sql = """
            SELECT ts, target_date, hour, model_version, forecast, p10, p50, p90, actual, error, in_band_80
            FROM forecast_vs_actual
            WHERE is_champion_forecast AND target_date BETWEEN ? AND ?
            QUALIFY row_number() OVER (PARTITION BY target_date, hour ORDER BY created_at DESC) = 1
            ORDER BY ts
        """
        params = [start, end]
    else:
        sql = """
            SELECT ts, target_date, hour, model_version, forecast, p10, p50, p90, actual, error, in_band_80
            FROM forecast_vs_actual WHERE model_version = ? AND target_date BETWEEN ? AND ? ORDER BY ts
        """
        params = [version, start, end]
    return _frames(path, {"rows": (sql, params)})["rows"]


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def load_actual(path: str, token: tuple, start: date, end: date) -> pl.DataFrame:
    """Realised prices in [start, end] (shown even where no forecast exists)."""
    return _frames(path, {"rows": (
        "SELECT ts, date, hour, price AS actual FROM prices_hourly WHERE date BETWEEN ? AND ? ORDER BY ts",
        [start, end])})["rows"]


def read_report(path: str) -> bytes | None:
    """The HTML report's bytes, or None if it is not there (reports are kept under the home)."""
    p = Path(path)
    if not p.is_absolute():
        p = home() / p
    try:
        return p.read_bytes()
    except OSError:
        return None


def resolve_report(path: str) -> Path:
    p = Path(path)
    return p if p.is_absolute() else home() / p
