"""Drift: real Evidently on constructed frames, real DuckDB warehouses in tmp_path."""

from __future__ import annotations

import json
import os
import warnings
from datetime import date, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from energy_platform.monitoring import (
    date_range,
    evaluate_drift,
    feature_drift_inputs,
    prediction_drift_inputs,
    price_drift_inputs,
    record_alert,
    record_drift,
)
from energy_platform.warehouse.db import connect
from energy_platform.warehouse.prices import replace_prices

SHARES = dict(warn_share=0.05, error_share=0.5)


def _prices(rng: np.random.Generator, n: int, scale: float = 1.0) -> np.ndarray:
    """Spiky, positive, price-like values (log-normal body with occasional spikes)."""
    body = rng.lognormal(mean=5.3, sigma=0.35, size=n)
    spikes = rng.random(n) < 0.02
    return scale * np.where(spikes, body * 4, body)


def _frame(rng, n, columns, shifted=(), factor=1.0):
    return pl.DataFrame({c: _prices(rng, n, factor if c in shifted else 1.0) for c in columns})


def test_same_distribution_passes(tmp_path):
    rng = np.random.default_rng(1)
    cols = ["price", "daily_mean", "daily_max"]
    ref, cur = _frame(rng, 24 * 365, cols), _frame(rng, 24 * 28, cols)
    result = evaluate_drift(ref, cur, cols, report_path=tmp_path / "r.html", **SHARES)
    assert result.severity == "pass", result.column_scores
    assert result.drift_share == 0.0 and result.drifted_columns == {}
    assert result.n_columns == 3 and set(result.column_scores) == set(cols)
    assert (result.reference_rows, result.current_rows) == (24 * 365, 24 * 28)
    assert result.method == "wasserstein"
    # the HTML is written, as a str path, and is a real report
    assert result.report_path == str(tmp_path / "r.html") and result.report_error is None
    assert os.path.getsize(result.report_path) > 50_000
    assert "<html" in (tmp_path / "r.html").read_text()[:2000].lower()


def test_prices_tripled_is_error(tmp_path):
    rng = np.random.default_rng(2)
    cols = ["price", "daily_mean", "daily_max"]
    ref = _frame(rng, 24 * 365, cols)
    cur = _frame(rng, 24 * 28, cols, shifted=cols, factor=3.0)
    result = evaluate_drift(ref, cur, cols, report_path=None, **SHARES)
    assert result.severity == "error"
    assert result.drift_share == 1.0
    assert set(result.drifted_columns) == set(cols)
    assert all(score > 1.0 for score in result.drifted_columns.values())  # in reference std units
    assert result.report_path is None and result.report_error is None


def test_mild_shift_in_few_of_many_columns_warns():
    rng = np.random.default_rng(3)
    cols = [f"f{i:02d}" for i in range(20)]
    ref = pl.DataFrame({c: rng.normal(100, 10, 365) for c in cols})
    cur = pl.DataFrame({c: rng.normal(100 + (8 if i < 3 else 0), 10, 28) for i, c in enumerate(cols)})
    result = evaluate_drift(ref, cur, cols, warn_share=0.1, error_share=0.5, report_path=None)
    assert result.severity == "warn", result.column_scores
    assert {"f00", "f01", "f02"} <= set(result.drifted_columns)
    assert 0.1 < result.drift_share <= 0.5


def test_method_and_threshold_are_parameters():
    rng = np.random.default_rng(4)
    ref, cur = _frame(rng, 2000, ["price"]), _frame(rng, 600, ["price"])
    strict = evaluate_drift(ref, cur, ["price"], report_path=None, threshold=1e-6, **SHARES)
    assert strict.severity == "error" and strict.threshold == 1e-6
    psi = evaluate_drift(ref, cur, ["price"], report_path=None, method="psi", threshold=0.2, **SHARES)
    assert psi.method == "psi" and psi.severity == "pass"


def test_a_column_constant_over_the_window_is_scored_without_numpy_warnings():
    """A band clipped at the floor for four weeks is a flat column: it drifts, and Evidently's
    correlation table (which divides by its spread) must not spray RuntimeWarnings."""
    rng = np.random.default_rng(6)
    ref = _frame(rng, 365, ["a", "p10"])
    cur = _frame(rng, 28, ["a"]).with_columns(pl.lit(0.0).alias("p10"))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        result = evaluate_drift(ref, cur, ["a", "p10"], report_path=None, **SHARES)
    assert "p10" in result.drifted_columns and "a" not in result.drifted_columns


def test_too_few_rows_is_not_enough_data():
    rng = np.random.default_rng(5)
    cols = ["price"]
    result = evaluate_drift(_frame(rng, 365, cols), _frame(rng, 5, cols), cols, report_path=None, min_rows=20, **SHARES)
    assert result.severity == "not_enough_data"
    assert result.drift_share is None and result.n_columns == 0
    assert (result.reference_rows, result.current_rows) == (365, 5)
    # a column that is all null on one side is skipped, the others still evaluated
    cur = _frame(rng, 100, ["a", "b"]).with_columns(pl.lit(None, dtype=pl.Float64).alias("b"))
    partial = evaluate_drift(_frame(rng, 365, ["a", "b"]), cur, ["a", "b"], report_path=None, **SHARES)
    assert partial.severity == "pass" and partial.n_columns == 1 and "b" in partial.skipped_columns


def test_unwritable_report_keeps_result(tmp_path):
    rng = np.random.default_rng(6)
    cols = ["price"]
    ref, cur = _frame(rng, 1000, cols), _frame(rng, 300, cols, shifted=cols, factor=3.0)
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("a file where the report directory should be")
    result = evaluate_drift(ref, cur, cols, report_path=blocker / "sub" / "r.html", **SHARES)
    assert result.severity == "error" and result.drift_share == 1.0 and "price" in result.drifted_columns
    assert result.report_path is None
    assert result.report_error and "not_a_dir" in result.report_error


def test_bad_shares_rejected():
    frame = pl.DataFrame({"a": [1.0] * 30})
    with pytest.raises(ValueError):
        evaluate_drift(frame, frame, ["a"], warn_share=0.6, error_share=0.5, report_path=None)


# ---------------------------------------------------------------- warehouse inputs and store


def _warehouse(tmp_path, days: int = 120, end: date = date(2024, 6, 30)):
    path = tmp_path / "warehouse.duckdb"
    rng = np.random.default_rng(7)
    start = end - timedelta(days=days - 1)
    dates = [start + timedelta(days=i) for i in range(days)]
    prices = pl.DataFrame(
        {
            "date": [d for d in dates for _ in range(24)],
            "hour": [h for _ in dates for h in range(24)],
            "price": _prices(rng, 24 * days),
        }
    ).with_columns(
        pl.col("hour").cast(pl.Int32),
        (pl.col("date").cast(pl.Datetime("us")) + pl.duration(hours=pl.col("hour"))).alias("ts"),
    )
    replace_prices(path, prices, start, end, source="test")
    preds = prices.rename({"date": "target_date"}).select(
        "target_date",
        "hour",
        "ts",
        (pl.col("price") * 1.05).alias("forecast"),
        (pl.col("price") * 0.8).alias("p10"),
        pl.col("price").alias("p50"),
        (pl.col("price") * 1.2).alias("p90"),
    )
    with connect(path) as conn:
        for version, created in (("1", datetime(2024, 1, 1)), ("2", datetime(2024, 2, 1))):
            rows = preds.with_columns(
                pl.lit(version).alias("model_version"),
                pl.lit("run").alias("mlflow_run_id"),
                (pl.col("target_date") - pl.duration(days=1)).alias("feature_cutoff"),
                pl.lit(created).alias("created_at"),
                pl.lit(None, dtype=pl.String).alias("dagster_run_id"),
            )
            if version == "2":
                rows = rows.with_columns(pl.col("forecast") * 10)
            conn.register("incoming", rows.to_arrow())
            conn.execute("INSERT INTO ml.predictions BY NAME SELECT * FROM incoming")
            conn.unregister("incoming")
        features = pl.DataFrame(
            {
                "target_date": dates,
                "cutoff_date": [d - timedelta(days=1) for d in dates],
                "horizon_days": [1] * days,
                **{f"price_lag1_h{h:02d}": rng.normal(200, 30, days) for h in range(4)},
                "is_holiday": rng.integers(0, 2, days).astype(float),
                "target_h00": rng.normal(size=days),
                "target_h01": rng.normal(size=days),
                "note": ["x"] * days,
            }
        )
        conn.register("feat", features.to_arrow())
        conn.execute("CREATE TABLE features.daily AS SELECT * FROM feat")
        conn.unregister("feat")
    return path, start, end


def test_warehouse_inputs_and_record(tmp_path):
    path, start, end = _warehouse(tmp_path)
    ref_range = (start, start + timedelta(days=59))

    ref, cur, cols = price_drift_inputs(path, *ref_range)
    assert cols == ["price", "price_shape", "daily_mean", "daily_max", "daily_spread"]
    assert date_range(cur) == (end - timedelta(days=27), end) and cur.height == 28 * 24
    assert date_range(ref) == ref_range and ref.height == 60 * 24

    fref, fcur, fcols = feature_drift_inputs(path, *ref_range, current_end=end, days=28)
    assert fcols == [f"price_lag1_h{h:02d}" for h in range(4)] + ["is_holiday"]
    assert fcur.height == 28 and fref.height == 60

    _, pcur, pcols = prediction_drift_inputs(path, *ref_range)
    assert {"forecast", "p10", "p90"} <= set(pcols) and "hour" not in pcols
    assert pcur.height == 28 * 24 and set(pcur["model_version"]) == {"2"}  # latest created = served
    _, only_v1, _ = prediction_drift_inputs(path, *ref_range, model_version="1")
    assert set(only_v1["model_version"]) == {"1"}

    with pytest.raises(ValueError, match="overlaps"):
        price_drift_inputs(path, start, end)

    result = evaluate_drift(ref, cur, cols, report_path=tmp_path / "reports" / "prices.html", **SHARES)
    assert result.severity == "pass", result.column_scores
    for _ in range(2):  # appended: one row per evaluation
        record_drift(path, "price_drift", "raw_prices", result, ref_range, date_range(cur), "run-1")
    record_alert(path, "retrain_request", "rMAE 1.02 over 28 days", dagster_run_id="run-1", job_name="monitor")
    record_alert(path, "retrain_request", "rMAE 1.02 over 28 days", once=True)  # already there: not again
    with connect(path, read_only=True) as conn:
        rows = conn.sql("SELECT * FROM monitoring.drift_checks").pl()
        alerts = conn.sql("SELECT * FROM monitoring.alerts").pl()
    assert rows.height == 2
    row = rows.row(0, named=True)
    assert row["severity"] == "pass" and row["n_columns"] == 5 and row["drift_share"] == 0.0
    assert json.loads(row["drifted_columns"]) == {}
    assert row["current_end"] == end and row["reference_start"] == start
    assert row["report_path"].endswith("prices.html") and row["dagster_run_id"] == "run-1"
    assert alerts.height == 1 and alerts["kind"][0] == "retrain_request" and alerts["job_name"][0] == "monitor"
