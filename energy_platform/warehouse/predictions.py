"""`ml.predictions`: 24 rows per target day and model version; re-runs replace, versions accumulate."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import polars as pl

from energy_platform.warehouse.db import connect, write

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
    # (day, version) pairs stored from another MLflow run: kept as they are
    other = ("SELECT DISTINCT i.target_date, i.model_version FROM incoming i JOIN ml.predictions p "
             "ON p.target_date = i.target_date AND p.model_version = i.model_version AND p.mlflow_run_id <> i.mlflow_run_id")
    mine = f"SELECT * FROM incoming WHERE (target_date, model_version) NOT IN ({other})"

    def replace(conn) -> tuple[int, list[date]]:
        kept = sorted({r[0] for r in conn.execute(other).fetchall()})
        written = conn.execute(f"SELECT count(*) FROM ({mine})").fetchone()[0]
        conn.execute(
            f"DELETE FROM ml.predictions p USING (SELECT DISTINCT target_date, model_version FROM ({mine})) i "
            "WHERE p.target_date = i.target_date AND p.model_version = i.model_version"
        )
        conn.execute(f"INSERT INTO ml.predictions ({', '.join(COLUMNS)}) SELECT * FROM ({mine})")
        return written, kept

    return write(path, replace, {"incoming": rows})


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
