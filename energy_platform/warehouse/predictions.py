"""`ml.predictions`: 24 rows per target day and model version; re-runs replace, versions accumulate."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import polars as pl

from energy_platform.warehouse.db import connect, write

COLUMNS = [
    "target_date", "hour", "ts", "forecast", "p10", "p50", "p90",
    "model_version", "mlflow_run_id", "feature_cutoff", "created_at", "dagster_run_id",
]


def write_predictions(path: str | Path, frame: pl.DataFrame) -> int:
    """Replace the rows of each (target_date, model_version) in `frame`, in one transaction."""
    if frame.is_empty():
        return 0
    counts = frame.group_by("target_date", "model_version").len()
    bad = counts.filter(pl.col("len") != 24)
    if bad.height:
        raise ValueError(f"a forecast day must have 24 hours; got {bad.to_dicts()}")
    rows = frame.with_columns(pl.lit(datetime.now().replace(microsecond=0)).alias("created_at")).select(COLUMNS)

    def replace(conn) -> None:
        conn.execute(
            "DELETE FROM ml.predictions p USING (SELECT DISTINCT target_date, model_version FROM incoming) i "
            "WHERE p.target_date = i.target_date AND p.model_version = i.model_version"
        )
        conn.execute(f"INSERT INTO ml.predictions ({', '.join(COLUMNS)}) SELECT * FROM incoming")

    write(path, replace, {"incoming": rows})
    return rows.height


def read_predictions(path: str | Path, target_date: date | None = None) -> pl.DataFrame:
    with connect(path, read_only=True) as conn:
        return conn.sql(
            "SELECT * FROM ml.predictions WHERE ?::DATE IS NULL OR target_date = ?::DATE "
            "ORDER BY target_date, model_version, hour",
            params=[target_date, target_date],
        ).pl()
