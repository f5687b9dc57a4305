"""Writes to the `monitoring.*` tables: accuracy (replace per key), drift checks and alerts (append).

Each write is one short transaction on a write connection, so a crash leaves either the old rows
or the new ones, never half of them.
"""

from __future__ import annotations

import json
import math
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from energy_platform.warehouse.db import connect, write

if TYPE_CHECKING:
    from energy_platform.monitoring.drift import DriftResult

ACCURACY_COLUMNS = [
    "target_date",
    "model_version",
    "hours",
    "mae",
    "rmse",
    "smape",
    "naive_w_mae",
    "rmae",
    "pinball",
    "coverage_80",
    "computed_at",
]


def _now() -> datetime:
    return datetime.now().replace(microsecond=0)


def _finite(value: float | None) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def write_accuracy(warehouse_path: str | Path, frame: pl.DataFrame) -> int:
    """Replace the rows of every (target_date, model_version) in `frame`, in one transaction.

    Running it twice leaves one row per key. NaN/inf metrics (e.g. rMAE when the weekly naive
    is missing) are stored as NULL. Returns the number of rows written.
    """
    missing = [c for c in ACCURACY_COLUMNS if c not in frame.columns and c != "computed_at"]
    if missing:
        raise ValueError(f"accuracy frame lacks columns {missing}")
    if frame.height == 0:
        return 0
    if frame.select("target_date", "model_version").is_duplicated().any():
        raise ValueError("accuracy frame has more than one row per (target_date, model_version)")
    if "computed_at" not in frame.columns:
        frame = frame.with_columns(pl.lit(_now()).alias("computed_at"))
    metrics = ["mae", "rmse", "smape", "naive_w_mae", "rmae", "pinball", "coverage_80"]
    rows = frame.select(
        pl.col("target_date").cast(pl.Date),
        pl.col("model_version").cast(pl.String),
        pl.col("hours").cast(pl.Int32),
        *[
            pl.when(pl.col(c).cast(pl.Float64).is_finite()).then(pl.col(c).cast(pl.Float64)).otherwise(None).alias(c)
            for c in metrics
        ],
        pl.col("computed_at").cast(pl.Datetime("us")),
    )

    def replace(conn) -> None:
        conn.execute(
            "DELETE FROM monitoring.forecast_accuracy f USING incoming_accuracy i "
            "WHERE f.target_date = i.target_date AND f.model_version = i.model_version"
        )
        conn.execute(
            f"INSERT INTO monitoring.forecast_accuracy ({', '.join(ACCURACY_COLUMNS)}) "
            f"SELECT {', '.join(ACCURACY_COLUMNS)} FROM incoming_accuracy"
        )

    write(warehouse_path, replace, {"incoming_accuracy": rows})
    return rows.height


def _range(value: tuple[date, date] | None) -> tuple[date | None, date | None]:
    if value is None:
        return None, None
    start, end = value
    return start, end


def record_drift(
    warehouse_path: str | Path,
    check_name: str,
    asset: str,
    result: DriftResult,
    reference_range: tuple[date, date] | None,
    current_range: tuple[date, date] | None,
    dagster_run_id: str | None,
    report_url: str | None = None,
) -> None:
    """Append one row to `monitoring.drift_checks` for one evaluation (never replaces history).

    `drifted_columns` is stored as a JSON object column -> score; `drift_share` is NULL for
    'not_enough_data'. A report that could not be written leaves `report_path` NULL, one not
    logged to MLflow `report_url` (its page in the MLflow UI).
    """
    ref_start, ref_end = _range(reference_range)
    cur_start, cur_end = _range(current_range)
    drifted = json.dumps({k: _finite(v) for k, v in sorted(result.drifted_columns.items())})
    with connect(warehouse_path) as conn:
        conn.execute(
            """
            INSERT INTO monitoring.drift_checks (
                checked_at, check_name, asset, reference_start, reference_end, current_start,
                current_end, n_columns, drift_share, drifted_columns, severity, report_path,
                dagster_run_id, report_url
            ) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """,
            [
                _now(),
                check_name,
                asset,
                ref_start,
                ref_end,
                cur_start,
                cur_end,
                result.n_columns,
                _finite(result.drift_share),
                drifted,
                result.severity,
                result.report_path,
                dagster_run_id,
                report_url,
            ],
        )


def record_alert(
    warehouse_path: str | Path,
    kind: str,
    message: str,
    dagster_run_id: str | None = None,
    job_name: str | None = None,
    once: bool = False,
) -> None:
    """Append one row to `monitoring.alerts` (e.g. kind 'run_failure' or 'retrain_request').

    `once`: skip it if the same kind and message is already there (a retried sensor tick).
    """
    if not kind or not message:
        raise ValueError("an alert needs a kind and a message")
    with connect(warehouse_path) as conn:
        conn.execute(
            "INSERT INTO monitoring.alerts (raised_at, kind, dagster_run_id, job_name, message) "
            "SELECT ?, ?, ?, ?, ? WHERE NOT (? AND EXISTS "
            "(SELECT 1 FROM monitoring.alerts WHERE kind = ? AND message = ?))",
            [_now(), kind, dagster_run_id, job_name, message, once, kind, message],
        )
