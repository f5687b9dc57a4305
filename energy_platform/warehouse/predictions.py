"""`ml.predictions`: 24 rows per target day and model version; re-runs replace, versions accumulate."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import polars as pl

from energy_platform.warehouse.db import connect, exists, write

COLUMNS = [
    "target_date", "hour", "ts", "forecast", "p10", "p50", "p90",
    "model_version", "mlflow_run_id", "feature_cutoff", "created_at", "dagster_run_id", "operating_unknown",
]


def write_predictions(path: str | Path, frame: pl.DataFrame) -> tuple[int, list[date]]:
    """Replace the rows of each (target_date, model_version) in `frame`, in one transaction, unless
    the stored rows of that day and version came from another MLflow run: a registry recreated (the
    registered model deleted, `mlflow.db` replaced) numbers its versions from 1 again, and its new
    v1 overwrote the issued forecasts of the old v1 (helper O, session 20). Those days keep their
    stored rows. Returns (rows written, the days kept)."""
    if frame.is_empty():
        return 0, []
    counts = frame.group_by("target_date", "model_version").len()
    bad = counts.filter(pl.col("len") != 24)
    if bad.height:
        raise ValueError(f"a forecast day must have 24 hours; got {bad.to_dicts()}")
    if "operating_unknown" not in frame.columns:  # a baseline, or a model reading no operating data
        frame = frame.with_columns(pl.lit(None, dtype=pl.Utf8).alias("operating_unknown"))
    rows = frame.with_columns(pl.lit(datetime.now().replace(microsecond=0)).alias("created_at")).select(COLUMNS)
    stored = pl.DataFrame(schema={"target_date": pl.Date, "model_version": pl.Utf8, "mlflow_run_id": pl.Utf8})
    if exists(path):  # a first write creates the warehouse
        with connect(path, read_only=True) as conn:
            stored = conn.sql("SELECT DISTINCT target_date, model_version, mlflow_run_id FROM ml.predictions "
                              "WHERE target_date BETWEEN ? AND ?", params=[rows["target_date"].min(), rows["target_date"].max()]).pl()
    other = (rows.select("target_date", "model_version", pl.col("mlflow_run_id").alias("run")).unique()
             .join(stored, on=["target_date", "model_version"]).filter(pl.col("run") != pl.col("mlflow_run_id")))
    kept = sorted(set(other["target_date"].to_list()))
    rows = rows.filter(~pl.col("target_date").is_in(kept))
    if rows.is_empty():
        return 0, kept

    def replace(conn) -> None:
        conn.execute(
            "DELETE FROM ml.predictions p USING (SELECT DISTINCT target_date, model_version FROM incoming) i "
            "WHERE p.target_date = i.target_date AND p.model_version = i.model_version"
        )
        conn.execute(f"INSERT INTO ml.predictions ({', '.join(COLUMNS)}) SELECT * FROM incoming")

    write(path, replace, {"incoming": rows})
    return rows.height, kept


def read_predictions(path: str | Path, target_date: date | None = None) -> pl.DataFrame:
    with connect(path, read_only=True) as conn:
        return conn.sql(
            "SELECT * FROM ml.predictions WHERE ?::DATE IS NULL OR target_date = ?::DATE "
            "ORDER BY target_date, model_version, hour",
            params=[target_date, target_date],
        ).pl()


def read_issued_bands(path: str | Path, last: date) -> pl.DataFrame:
    """The band issued by a model for each target day up to `last` (the latest stored forecast of
    the day, newest `created_at` then model version, by a version that is not the persistence
    baseline: its empirical band never moves with the adaptive band, so its misses would push
    theta without feedback) with the day's realised prices (`actual`, null until they arrive):
    target_date, hour, p10, p90, actual. The adaptive band's history; a day only the baseline
    forecast is a gap in it."""
    with connect(path, read_only=True) as conn:
        return conn.sql(
            """
            WITH issued AS (
                SELECT p.target_date, p.hour, p.p10, p.p90,
                       dense_rank() OVER (PARTITION BY p.target_date ORDER BY p.created_at DESC, p.model_version DESC) AS r
                FROM ml.predictions p LEFT JOIN ml.model_versions v ON v.version = p.model_version
                WHERE p.target_date <= ?::DATE AND coalesce(v.kind, 'model') <> 'baseline'
            )
            SELECT i.target_date, i.hour, i.p10, i.p90, p.price AS actual
            FROM issued i LEFT JOIN raw.prices_hourly p ON p.date = i.target_date AND p.hour = i.hour
            WHERE i.r = 1
            ORDER BY i.target_date, i.hour
            """,
            params=[last],
        ).pl()
