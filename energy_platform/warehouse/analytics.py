"""The analysts' snapshot: `analytics.duckdb`, rebuilt from the warehouse and swapped in atomically.

Analysts, notebooks and the dashboard open `analytics.duckdb` read-only; the pipeline never
opens it for writing. A publish builds a complete new file next to it under a temporary name
(the warehouse ATTACHed read-only, `CREATE TABLE ... AS SELECT` for data, views for derived
joins, `COMMENT ON` for every table and every column), closes it, and `os.replace`s it onto
`analytics.duckdb`. On POSIX the rename is atomic: a reader that opened the old file keeps
reading the old snapshot (its inode stays alive until it closes), the next open sees the new
one, and nobody ever sees a half-written file. A publish that fails or is killed leaves the
previous file untouched; its temporary file is removed (on failure at once, after a kill by the
next publish). Publishes into one folder take turns on an exclusive `flock` of that folder,
which the kernel drops when its holder dies: a temp file found while holding it is a dead
publisher's, whatever pid its name carries (after a restart a pid is often someone else's).

On a DuckLake warehouse the same build reads FROM the lake: the publisher loads the DuckLake
extensions into the temporary file's connection and ATTACHes the catalog read-only (one consistent
snapshot for the whole copy; lake writers never wait for it), and the analysts' file stays a local
DuckDB file swapped in as above, openable by any DuckDB client without the extension.

The table and view names below, and their documented columns, are a public API
(README, "For analysts"). A fresh warehouse (no file, or tables not written yet) publishes the same
tables, empty.
"""

from __future__ import annotations

import fcntl
import os
import re
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb

from energy_platform.settings import DEFAULT_PRICE_UNIT
from energy_platform.warehouse.db import (
    WarehouseLockedError,
    _is_lock_error,
    attach_lake,
    check_warehouse,
    describe,
    is_lake,
    table_names,
)
from energy_platform.warehouse.schema import DDL as WAREHOUSE_DDL

TMP_PREFIX = ".publishing-"  # temp files: .publishing-<pid>-<hex>-<target name>
# Written in the oldest 1.x storage format, whatever duckdb wrote it: every 1.x client, and the
# DuckDB CLI from PyPI, can open it (README, "Which DuckDB"). A newer duckdb would otherwise write
# a format older clients refuse.
STORAGE_VERSION = "v1.0.0"


@dataclass(frozen=True)
class Published:
    """One table or view of the analyst API."""

    name: str
    kind: str  # "table" or "view"
    source: str | None  # the warehouse table it comes from (row count kept in `metadata`)
    sql: str  # SELECT over `src_*` (tables, see _source_aliases) or over published tables (views)
    comment: str
    columns: dict[str, str]  # column -> COMMENT
    order_by: str | None = None


# The columns of `forecasts`; `forecast_vs_actual` repeats most of them.
FORECAST_COLUMNS: dict[str, str] = {
    "target_date": "Delivery day forecast.",
    "hour": "Hour of day 0-23 (local).",
    "ts": "Start of the forecast hour, naive local timestamp.",
    "forecast": "Point forecast, COP/kWh.",
    "p10": "10th percentile, COP/kWh (lower edge of the 80% band).",
    "p50": "Median forecast, COP/kWh.",
    "p90": "90th percentile, COP/kWh (upper edge of the 80% band).",
    "model_version": "Registered version of day_ahead_price_forecaster that produced the row.",
    "mlflow_run_id": "MLflow run of the training that produced that version.",
    "feature_cutoff": "Last day of data the forecast could see (normally target_date - 2).",
    "created_at": "When the forecast was written, by the platform host's clock (its own time zone, not necessarily the market's: ts is market time).",
    "is_champion_forecast": "True if model_version was the champion at created_at.",
    "operating_unknown": "Operating groups the model reads that were unknown at feature_cutoff (a late or stopped "
                         "source, e.g. 'hydrology'): the forecast read them as missing. NULL when all were known.",
}

# Inside the build, `src.<schema>.<table>` names the warehouse (or an empty stand-in, see
# _attach_sources); the analytics file itself is the default catalog.
TABLES: list[Published] = [
    Published(
        "prices_hourly",
        "table",
        "raw.prices_hourly",
        """
        SELECT date::DATE AS date, hour::INTEGER AS hour, ts::TIMESTAMP AS ts, price::DOUBLE AS price
        FROM {raw.prices_hourly}
        """,
        "Hourly market price, COP/kWh (XM: the national bolsa price, precio de bolsa nacional), in the "
        "market's local time (XM: America/Bogota, no DST). One row per delivered hour; price NULL = hour "
        "missing at the source, never filled.",
        {
            "date": "Delivery day (local).",
            "hour": "Hour of day 0-23; hour 0 is 00:00-01:00 local (XM: Hour01).",
            "ts": "Start of the hour, naive local timestamp (XM: America/Bogota).",
            "price": "Market price in COP/kWh; NULL if the source had no value.",
        },
        order_by="ts",
    ),
    Published(
        "exogenous_hourly",
        "table",
        "raw.exogenous_hourly",
        """
        SELECT date::DATE AS date, hour::INTEGER AS hour, ts::TIMESTAMP AS ts, name::VARCHAR AS name,
               value::DOUBLE AS value
        FROM {raw.exogenous_hourly}
        """,
        "A price file's exogenous series (e.g. load and wind forecasts; none for XM), one row per hour and "
        "series, as delivered. The value of day d is a forecast known on d-1, so the days after the last "
        "price (the day ahead) are here too; a model reads a series only when every hour is known.",
        {
            "date": "Day the value is for (local).",
            "hour": "Hour of day 0-23 (local).",
            "ts": "Start of the hour, naive local timestamp.",
            "name": "Series, as the file's column header (e.g. 'load', 'wind').",
            "value": "The series' value for that hour, in the file's unit.",
        },
        order_by="name, ts",
    ),
    Published(
        "forecasts",
        "table",
        "ml.predictions",
        """
        SELECT p.target_date::DATE AS target_date, p.hour::INTEGER AS hour, p.ts::TIMESTAMP AS ts,
               p.forecast::DOUBLE AS forecast, p.p10::DOUBLE AS p10, p.p50::DOUBLE AS p50,
               p.p90::DOUBLE AS p90, p.model_version::VARCHAR AS model_version,
               p.mlflow_run_id::VARCHAR AS mlflow_run_id, p.feature_cutoff::DATE AS feature_cutoff,
               p.created_at::TIMESTAMP AS created_at,
               coalesce(c.version = p.model_version, false) AS is_champion_forecast,
               p.operating_unknown::VARCHAR AS operating_unknown
        FROM {ml.predictions} p
        ASOF LEFT JOIN (SELECT changed_at, version FROM {ml.champion_history}) c
            ON p.created_at >= c.changed_at
        """,
        "Day-ahead forecasts: 24 rows per target day and model version; every version's forecast "
        "is kept. is_champion_forecast says whether that version held the champion alias when "
        "the row was created (per champion_periods).",
        FORECAST_COLUMNS,
        order_by="target_date, model_version, hour",
    ),
    Published(
        "forecast_accuracy_daily",
        "table",
        "monitoring.forecast_accuracy",
        """
        SELECT target_date::DATE AS target_date, model_version::VARCHAR AS model_version,
               hours::INTEGER AS hours, mae::DOUBLE AS mae, rmse::DOUBLE AS rmse,
               smape::DOUBLE AS smape, naive_w_mae::DOUBLE AS naive_w_mae, rmae::DOUBLE AS rmae,
               pinball::DOUBLE AS pinball, coverage_80::DOUBLE AS coverage_80,
               computed_at::TIMESTAMP AS computed_at
        FROM {monitoring.forecast_accuracy}
        """,
        "Realised accuracy of each forecast day, per model version, once the actual prices arrived.",
        {
            "target_date": "Delivery day evaluated.",
            "model_version": "Version whose forecast is evaluated.",
            "hours": "Hours with both forecast and actual price.",
            "mae": "Mean absolute error, COP/kWh.",
            "rmse": "Root mean squared error, COP/kWh.",
            "smape": "Symmetric MAPE, mean(2|p-f|/(|p|+|f|)), 0-2.",
            "naive_w_mae": "MAE of the weekly naive forecast (price of d-7, same hour).",
            "rmae": "mae / naive_w_mae: below 1 beats the weekly naive.",
            "pinball": "Mean pinball loss over the p10/p50/p90 quantiles.",
            "coverage_80": "Share of hours whose actual price fell inside [p10, p90].",
            "computed_at": "When this day's accuracy was computed, by the platform host's clock (not necessarily market time).",
        },
        order_by="target_date, model_version",
    ),
    Published(
        "champion_periods",
        "table",
        "ml.champion_history",
        """
        SELECT version::VARCHAR AS version, changed_at::TIMESTAMP AS champion_from,
               lead(changed_at) OVER (ORDER BY changed_at)::TIMESTAMP AS champion_until,
               previous_version::VARCHAR AS previous_version, reason::VARCHAR AS reason
        FROM {ml.champion_history}
        """,
        "Who was champion when: one row per move of the champion alias (promotion or rollback).",
        {
            "version": "Version that became champion.",
            "champion_from": "When it became champion.",
            "champion_until": "When the alias moved on; NULL = still champion.",
            "previous_version": "Champion before it (NULL for the first).",
            "reason": "Why the alias moved (promotion, rollback, ...).",
        },
        order_by="champion_from",
    ),
    Published(
        "model_versions",
        "table",
        "ml.model_versions",
        """
        WITH h AS (
            SELECT version, changed_at, lead(changed_at) OVER (ORDER BY changed_at) AS until
            FROM {ml.champion_history}
        ), per_version AS (
            SELECT version, min(changed_at) AS first_champion_at,
                   count(*)::INTEGER AS times_champion,
                   bool_or(until IS NULL) AS is_current
            FROM h GROUP BY version
        )
        SELECT m.version::VARCHAR AS version, m.mlflow_run_id::VARCHAR AS mlflow_run_id,
               m.registered_at::TIMESTAMP AS registered_at, m.train_start::DATE AS train_start,
               m.train_end::DATE AS train_end, m.data_fingerprint::VARCHAR AS data_fingerprint,
               m.backtest_start::DATE AS backtest_start, m.backtest_end::DATE AS backtest_end,
               m.backtest_mae::DOUBLE AS backtest_mae, m.backtest_rmae::DOUBLE AS backtest_rmae,
               m.backtest_pinball::DOUBLE AS backtest_pinball,
               m.backtest_coverage_80::DOUBLE AS backtest_coverage_80,
               m.gate_decision::VARCHAR AS gate_decision, m.aliases::VARCHAR AS aliases,
               coalesce(m.kind, 'model')::VARCHAR AS kind, m.gate_reason::VARCHAR AS gate_reason,
               m.dagster_run_id::VARCHAR AS dagster_run_id, m.git_commit::VARCHAR AS git_commit,
               m.operating_groups::VARCHAR AS operating_groups,
               CASE WHEN (SELECT count(*) FROM h) > 0 THEN coalesce(v.is_current, false)
                    ELSE coalesce(m.aliases ILIKE '%champion%', false) END AS is_champion,
               v.first_champion_at::TIMESTAMP AS first_champion_at,
               coalesce(v.times_champion, 0)::INTEGER AS times_champion
        FROM {ml.model_versions} m
        LEFT JOIN per_version v ON v.version = m.version
        """,
        "Every registered version of day_ahead_price_forecaster: training window, backtest, gate "
        "decision, MLflow aliases, and its champion history.",
        {
            "version": "Registered model version (MLflow).",
            "mlflow_run_id": "MLflow run of the training.",
            "registered_at": "When the version was registered.",
            "train_start": "First day of the training data.",
            "train_end": "Last day of the training data.",
            "data_fingerprint": "Hash of the training data (same hash = same data).",
            "backtest_start": "First target day of the backtest.",
            "backtest_end": "Last target day of the backtest.",
            "backtest_mae": "Backtest mean absolute error, COP/kWh.",
            "backtest_rmae": "Backtest MAE relative to the weekly naive (below 1 beats it).",
            "backtest_pinball": "Backtest mean pinball loss over p10/p50/p90, COP/kWh.",
            "backtest_coverage_80": "Backtest share of hours inside [p10, p90] (nominal 0.8).",
            "gate_decision": "Outcome of the promotion gate (promoted / refused).",
            "kind": "model (a trained forecaster) or baseline (persistence: tomorrow repeats the latest known day).",
            "gate_reason": "Why the gate promoted or refused it (or why the baseline was promoted).",
            "dagster_run_id": "Dagster run that trained it (lineage).",
            "git_commit": "Code commit it was trained with (lineage).",
            "operating_groups": "Operating data the version reads (hydrology, enso, demand; 'none' = prices alone: a group "
                                "known on under a year of its training window is left out); NULL = not recorded "
                                "(the persistence baseline, versions trained before it was).",
            "aliases": "MLflow aliases at publish time (champion, challenger).",
            "is_champion": "True if this version holds the champion alias now.",
            "first_champion_at": "First time it became champion; NULL = never.",
            "times_champion": "How many times the champion alias moved to it.",
        },
        order_by="registered_at",
    ),
    Published(
        "drift_checks",
        "table",
        "monitoring.drift_checks",
        """
        SELECT checked_at::TIMESTAMP AS checked_at, check_name::VARCHAR AS check_name,
               asset::VARCHAR AS asset, reference_start::DATE AS reference_start,
               reference_end::DATE AS reference_end, current_start::DATE AS current_start,
               current_end::DATE AS current_end, n_columns::INTEGER AS n_columns,
               drift_share::DOUBLE AS drift_share, drifted_columns::VARCHAR AS drifted_columns,
               severity::VARCHAR AS severity, report_path::VARCHAR AS report_path,
               report_url::VARCHAR AS report_url
        FROM {monitoring.drift_checks}
        """,
        "One row per drift evaluation (Evidently) of an asset's data, reference window vs current.",
        {
            "checked_at": "When the check ran.",
            "check_name": "Which drift check (one per monitored property).",
            "asset": "Dagster asset whose data was checked.",
            "reference_start": "First day of the reference window.",
            "reference_end": "Last day of the reference window.",
            "current_start": "First day of the window compared with the reference.",
            "current_end": "Last day of the window compared with the reference.",
            "n_columns": "Columns compared.",
            "drift_share": "Share of columns found drifted, 0-1.",
            "drifted_columns": "JSON object: each drifted column -> its drift score (Wasserstein distance in reference "
                               "standard deviations for numbers); {} when none drifted.",
            "severity": "pass, warn, error or not_enough_data.",
            "report_path": "Path of the Evidently HTML report under ENERGY_PLATFORM_HOME/reports/ (on the machine that ran the check).",
            "report_url": "The same report in the MLflow UI (an artifact of a monitoring run), openable from any browser; "
                          "NULL if it could not be logged.",
        },
        order_by="checked_at",
    ),
    Published(
        "alerts",
        "table",
        "monitoring.alerts",
        """
        SELECT raised_at::TIMESTAMP AS raised_at, kind::VARCHAR AS kind,
               job_name::VARCHAR AS job_name, message::VARCHAR AS message,
               dagster_run_id::VARCHAR AS dagster_run_id
        FROM {monitoring.alerts}
        """,
        "Failures and requests the team must see (run failures, retraining requests).",
        {
            "raised_at": "When the alert was raised.",
            "kind": "Alert kind (run_failure, retrain_requested, ...).",
            "job_name": "Dagster job concerned.",
            "message": "Human-readable message.",
            "dagster_run_id": "Dagster run that raised it (open it in the Dagster UI).",
        },
        order_by="raised_at",
    ),
    Published(
        "forecast_vs_actual",
        "view",
        None,
        """
        SELECT f.target_date, f.hour, f.ts, f.model_version, f.is_champion_forecast,
               f.forecast, f.p10, f.p50, f.p90, a.price AS actual,
               f.forecast - a.price AS error,
               abs(f.forecast - a.price) AS abs_error,
               CASE WHEN a.price <> 0 THEN abs(f.forecast - a.price) / abs(a.price) END AS ape,
               a.price BETWEEN f.p10 AND f.p90 AS in_band_80,
               f.created_at, f.feature_cutoff
        FROM forecasts f
        LEFT JOIN prices_hourly a ON a.date = f.target_date AND a.hour = f.hour
        """,
        "Every forecast row next to the realised price: actual and error columns are NULL until "
        "the day's prices arrive.",
        {
            **{c: FORECAST_COLUMNS[c] for c in (
                "target_date", "hour", "ts", "model_version", "is_champion_forecast", "forecast",
                "p10", "p50", "p90")},
            "actual": "Realised market price, COP/kWh (NULL until known).",
            "error": "forecast - actual, COP/kWh (positive = over-forecast).",
            "abs_error": "|forecast - actual|, COP/kWh.",
            "ape": "|forecast - actual| / |actual| (NULL if actual is 0 or unknown).",
            "in_band_80": "actual within [p10, p90].",
            "created_at": FORECAST_COLUMNS["created_at"],
            "feature_cutoff": FORECAST_COLUMNS["feature_cutoff"],
        },
    ),
]

METADATA_COMMENT = (
    "Freshness of this snapshot: one row per published table or view, with its row count here "
    "and the row count of its warehouse source at publish time."
)

# The examples of the README's "For analysts" section; the tests and the benchmark run exactly these.
EXAMPLE_QUERIES: list[tuple[str, str]] = [
    (
        "Tomorrow's forecast with its 80% band (latest day forecast by the champion)",
        """
SELECT target_date, hour, round(p10, 1) AS p10, round(p50, 1) AS p50, round(p90, 1) AS p90,
       round(forecast, 1) AS forecast, model_version
FROM forecasts
WHERE is_champion_forecast
  AND target_date = (SELECT max(target_date) FROM forecasts WHERE is_champion_forecast)
QUALIFY row_number() OVER (PARTITION BY hour ORDER BY created_at DESC) = 1
ORDER BY hour
""".strip(),
    ),
    (
        "Last month's error by hour of day (the newest champion forecast of each hour, last 30 realised days)",
        """
SELECT hour, count(*) AS days, round(avg(abs_error), 1) AS mae, round(avg(error), 1) AS bias,
       round(avg(in_band_80::INTEGER), 2) AS coverage_80
FROM (SELECT * FROM forecast_vs_actual
      WHERE is_champion_forecast AND actual IS NOT NULL
      QUALIFY row_number() OVER (PARTITION BY target_date, hour ORDER BY created_at DESC) = 1)
WHERE target_date > (SELECT max(target_date) FROM forecast_vs_actual
                     WHERE actual IS NOT NULL) - INTERVAL 30 DAY
GROUP BY hour
ORDER BY hour
""".strip(),
    ),
    (
        "Which model version was champion when",
        """
SELECT c.version, c.champion_from, c.champion_until, c.reason, c.previous_version,
       m.backtest_rmae, m.gate_decision
FROM champion_periods c
LEFT JOIN model_versions m USING (version)
ORDER BY c.champion_from
""".strip(),
    ),
    (
        "Days when drift was flagged",
        """
SELECT checked_at::DATE AS day, check_name, asset, severity, round(drift_share, 2) AS drift_share,
       drifted_columns, report_url
FROM drift_checks
WHERE severity IN ('warn', 'error')
ORDER BY checked_at DESC
""".strip(),
    ),
    (
        "Peak-hour price trend: monthly mean of hours 18-21 against the whole day",
        """
SELECT date_trunc('month', date)::DATE AS month,
       round(avg(price) FILTER (WHERE hour BETWEEN 18 AND 21), 1) AS peak_18_21,
       round(avg(price), 1) AS all_hours,
       round(avg(price) FILTER (WHERE hour BETWEEN 18 AND 21) / avg(price), 2) AS peak_ratio
FROM prices_hourly
GROUP BY ALL
ORDER BY month
""".strip(),
    ),
]


# What the README gives analysts to read the comments (DESCRIBE does not show them).
COLUMN_DOCS_QUERY = """
SELECT table_name, column_name, data_type, comment
FROM duckdb_columns()
WHERE schema_name = 'main' AND NOT internal
ORDER BY table_name, column_index
""".strip()

TABLE_DOCS_QUERY = """
SELECT table_name AS name, 'table' AS kind, comment FROM duckdb_tables()
UNION ALL
SELECT view_name, 'view', comment FROM duckdb_views() WHERE NOT internal
ORDER BY name
""".strip()


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _source_tables() -> list[str]:
    return sorted({t.source for t in TABLES if t.source} | {"ml.champion_history"})


class PublishBusyError(RuntimeError):
    """Another publish into the same folder held it for longer than we were willing to wait."""


@contextmanager
def _publishing(directory: Path, wait_seconds: float) -> Iterator[None]:
    """Hold the folder's publish lock (an exclusive `flock`) for the whole publish.

    Liveness by lock, not by pid: the kernel releases a killed holder's lock, while a pid in a
    temp file's name may, after a restart or in another PID namespace, belong to a live process
    (even a thread of this one), which kept dead publishers' files for ever.
    """
    fd = os.open(directory, os.O_RDONLY)
    try:
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise PublishBusyError(
                        f"another publish into {directory} has held it for more than {wait_seconds:.0f} s"
                    ) from None
                time.sleep(0.1)
        yield
    finally:
        os.close(fd)  # releases the lock


def _cleanup_stale(directory: Path, target_name: str) -> None:
    """Remove temp files of killed publishes; called holding the folder's lock, so all are dead."""
    pattern = re.compile(rf"^{re.escape(TMP_PREFIX)}(\d+)-[0-9a-f]+-{re.escape(target_name)}(\.wal)?$")
    for entry in directory.iterdir():
        if pattern.match(entry.name):
            entry.unlink(missing_ok=True)


EMPTY_PREFIX = "empty_src."  # a source table the warehouse does not have yet: an empty stand-in


def _attach_sources(
    conn: duckdb.DuckDBPyConnection, warehouse_path: Path | str, wait_seconds: float
) -> dict[str, str]:
    """ATTACH the warehouse read-only (waiting for a writer's lock) and map each source table to
    its qualified name; tables the warehouse does not have yet map to an empty stand-in with the
    contract's columns (schema.py), so a fresh warehouse publishes empty tables, and a table that
    lacks columns the contract added since (a warehouse no write has migrated yet: the schema is
    brought up to date by write connections only) to the table with those columns NULL. A
    DuckLake is attached read-only through its extensions (no lock to wait for)."""
    present: set[str] = set()
    lake = is_lake(warehouse_path)
    if lake:
        check_warehouse(warehouse_path)  # a new lake: created with its (empty) tables by the process's attach
        attach_lake(conn, warehouse_path, alias="wh", read_only=True)
    elif warehouse_path.exists():
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                conn.execute(f"ATTACH {_quote(str(warehouse_path))} AS wh (READ_ONLY)")
                break
            except duckdb.IOException as exc:
                if not _is_lock_error(exc) or time.monotonic() >= deadline:
                    if _is_lock_error(exc):
                        raise WarehouseLockedError(
                            f"{warehouse_path} is locked by another process for more than "
                            f"{wait_seconds:.0f} s ({exc})"
                        ) from exc
                    raise
                time.sleep(0.2)
    if lake or warehouse_path.exists():
        present = table_names(conn, "wh")
    # The contract's empty tables, in memory; only used for what the warehouse lacks.
    own = conn.execute("SELECT current_database()").fetchall()[0][0]
    conn.execute("ATTACH ':memory:' AS empty_src")
    conn.execute("USE empty_src")
    for statement in WAREHOUSE_DDL:
        conn.execute(statement)
    conn.execute(f"USE {duckdb_ident(own)}")
    columns: dict[tuple[str, str], dict[str, str]] = {}
    for database, table, column, dtype in conn.execute(
        "SELECT database_name, schema_name || '.' || table_name, column_name, data_type FROM duckdb_columns() "
        "WHERE database_name IN ('wh', 'empty_src') ORDER BY column_index"
    ).fetchall():
        columns.setdefault((database, table), {})[column] = dtype

    def source(table: str) -> str:
        if table not in present:
            return f"{EMPTY_PREFIX}{table}"
        have = columns.get(("wh", table), {})
        lacking = [f"NULL::{dtype} AS {duckdb_ident(c)}" for c, dtype in columns[("empty_src", table)].items() if c not in have]
        return f"(SELECT *, {', '.join(lacking)} FROM wh.{table})" if lacking else f"wh.{table}"

    return {t: source(t) for t in _source_tables()}


def duckdb_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _in_unit(comment: str, price_unit: str) -> str:
    """The documentation names XM's specifics as XM's; another market's file names its own unit."""
    return comment.replace(DEFAULT_PRICE_UNIT, price_unit)


def _build(conn: duckdb.DuckDBPyConnection, warehouse_path: Path, wait_seconds: float, price_unit: str) -> list[dict]:
    sources = _attach_sources(conn, warehouse_path, wait_seconds)
    published_at = datetime.now().replace(microsecond=0)
    rows: list[dict] = []
    conn.execute("BEGIN TRANSACTION")
    for t in TABLES:
        if t.kind != "table":
            continue
        sql = t.sql
        for name, qualified in sources.items():
            sql = sql.replace("{" + name + "}", qualified)
        order = f" ORDER BY {t.order_by}" if t.order_by else ""
        conn.execute(f"CREATE TABLE {t.name} AS SELECT * FROM ({sql}) _{order}")
        warehouse_rows = None
        if t.source and not sources[t.source].startswith(EMPTY_PREFIX):
            warehouse_rows = conn.execute(f"SELECT count(*) FROM {sources[t.source]}").fetchall()[0][0]
        rows.append({"table_name": t.name, "kind": t.kind, "source_table": t.source,
                     "warehouse_rows": warehouse_rows if warehouse_rows is not None else 0})
    conn.execute("COMMIT")
    # Everything copied: let go of the warehouse before the (local) rest of the build.
    if any(not q.startswith(EMPTY_PREFIX) for q in sources.values()):
        conn.execute("DETACH wh")
    conn.execute("DETACH empty_src")
    conn.execute("BEGIN TRANSACTION")
    for t in TABLES:
        if t.kind == "view":
            conn.execute(f"CREATE VIEW {t.name} AS {t.sql}")
            rows.append({"table_name": t.name, "kind": t.kind, "source_table": None, "warehouse_rows": None})
        kind = "VIEW" if t.kind == "view" else "TABLE"
        conn.execute(f"COMMENT ON {kind} {t.name} IS {_quote(_in_unit(t.comment, price_unit))}")
        for column, comment in t.columns.items():
            conn.execute(f"COMMENT ON COLUMN {t.name}.{column} IS {_quote(_in_unit(comment, price_unit))}")
    for row in rows:
        row["row_count"] = conn.execute(f"SELECT count(*) FROM {row['table_name']}").fetchall()[0][0]
    conn.execute(
        """
        CREATE TABLE metadata (
            table_name VARCHAR PRIMARY KEY, kind VARCHAR NOT NULL, row_count BIGINT NOT NULL,
            source_table VARCHAR, warehouse_rows BIGINT, published_at TIMESTAMP NOT NULL,
            warehouse_path VARCHAR NOT NULL, price_unit VARCHAR NOT NULL
        )
        """
    )
    conn.executemany(
        "INSERT INTO metadata VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            [r["table_name"], r["kind"], r["row_count"], r["source_table"], r["warehouse_rows"],
             published_at, describe(warehouse_path), price_unit]
            for r in rows
        ],
    )
    conn.execute(f"COMMENT ON TABLE metadata IS {_quote(METADATA_COMMENT)}")
    metadata_columns = {
        "table_name": "Published table or view.",
        "kind": "table or view.",
        "row_count": "Rows in this snapshot.",
        "source_table": "Warehouse table it was copied from (NULL for views).",
        "warehouse_rows": "Rows of the warehouse source when published (0 if it did not exist yet).",
        "published_at": "When this snapshot was built, by the platform host's clock (not necessarily market time).",
        "warehouse_path": "Warehouse the snapshot was built from: a DuckDB file, or a DuckLake catalog (ducklake:…, password hidden).",
        "price_unit": "Unit of every price, forecast and price error in this snapshot (ENERGY_PLATFORM_PRICE_UNIT; XM's bolsa: COP/kWh).",
    }
    for column, comment in metadata_columns.items():
        conn.execute(f"COMMENT ON COLUMN metadata.{column} IS {_quote(comment)}")
    _require_comments(conn, {**{t.name: t.columns for t in TABLES}, "metadata": metadata_columns})
    conn.execute("COMMIT")
    for r in rows:
        r["published_at"] = published_at
    return rows


def _require_comments(conn: duckdb.DuckDBPyConnection, documented: dict[str, dict[str, str]]) -> None:
    """Every published column is documented: a new column without a comment fails the publish
    (and the tests) instead of reaching analysts undocumented. (Checked from each relation's
    columns: a duckdb_columns() scan costs 50 ms on duckdb 1.5.)"""
    missing = []
    for name, columns in documented.items():
        actual = [d[0] for d in conn.execute(f"SELECT * FROM {name} LIMIT 0").description]
        missing += [f"{name}.{c}" for c in actual if not columns.get(c)]
    if missing:
        raise RuntimeError(f"analytics columns without a COMMENT: {', '.join(missing)}; "
                           f"add them to TABLES in {__name__}")


def publish_analytics(
    warehouse_path: str | Path,
    analytics_path: str | Path,
    *,
    wait_seconds: float = 30.0,
    price_unit: str = DEFAULT_PRICE_UNIT,
    _fail_after_build: bool = False,
) -> dict:
    """Rebuild `analytics_path` from the warehouse and swap it in atomically.

    Returns summary metadata: `tables` ({name: row count}), `warehouse_rows` ({name: rows of
    the warehouse source}), `published_at`, `seconds`, `path`, `bytes`. Raises
    `WarehouseLockedError` if a writer holds the warehouse longer than `wait_seconds`
    (`PublishBusyError` if another publish into the folder does); on any
    failure the previous analytics file is left as it was and the temp file is removed.
    `price_unit` is written into `metadata` and the documentation of the price columns.
    `_fail_after_build` is a test hook: raise just before the swap.
    """
    started = time.perf_counter()
    warehouse_path = warehouse_path if is_lake(warehouse_path) else Path(warehouse_path).resolve()
    target = Path(analytics_path).resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    with _publishing(target.parent, wait_seconds):
        _cleanup_stale(target.parent, target.name)
        tmp = target.parent / f"{TMP_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:12]}-{target.name}"
        tmp_wal = tmp.with_name(tmp.name + ".wal")
        try:
            conn = duckdb.connect(str(tmp), config={"storage_compatibility_version": STORAGE_VERSION})
            try:
                rows = _build(conn, warehouse_path, wait_seconds, price_unit)
                conn.execute("CHECKPOINT")
            finally:
                conn.close()
            if tmp_wal.exists():  # a clean close checkpoints; a leftover WAL means it did not
                raise RuntimeError(f"DuckDB left {tmp_wal} behind; refusing to publish a partial file")
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
            if _fail_after_build:
                raise RuntimeError("publish interrupted before the swap (test hook)")
            os.replace(tmp, target)
            dir_fd = os.open(target.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except BaseException:
            tmp.unlink(missing_ok=True)
            tmp_wal.unlink(missing_ok=True)
            raise
    return {
        "path": str(target),
        "tables": {r["table_name"]: r["row_count"] for r in rows},
        "warehouse_rows": {r["source_table"]: r["warehouse_rows"] for r in rows if r["source_table"]},
        "published_at": rows[0]["published_at"].isoformat(sep=" ") if rows else None,
        "seconds": round(time.perf_counter() - started, 3),
        "bytes": target.stat().st_size,
    }
