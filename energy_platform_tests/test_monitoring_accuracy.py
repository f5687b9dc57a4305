"""Realised accuracy on constructed forecasts whose errors are known by hand; real DuckDB files."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from energy_platform.monitoring import (
    AccuracyNotReady,
    NoPredictionsError,
    accuracy_for_day,
    classify_rolling,
    rolling_rmae,
    write_accuracy,
)
from energy_platform.warehouse.db import connect
from energy_platform.warehouse.prices import replace_prices

DAY = date(2024, 3, 15)
HOURS = np.arange(24)
ACTUAL = 100.0 + HOURS  # p[d, h]
NAIVE = ACTUAL + 20.0  # p[d-7, h]: the weekly naive is off by 20 every hour


def _store_prices(path, day: date, values, hours=range(24)) -> None:
    hours = list(hours)
    frame = pl.DataFrame({"date": [day] * len(hours), "hour": hours, "price": [float(values[h]) for h in hours]})
    frame = frame.with_columns(
        pl.col("hour").cast(pl.Int32),
        (pl.col("date").cast(pl.Datetime("us")) + pl.duration(hours=pl.col("hour"))).alias("ts"),
    )
    replace_prices(path, frame, day, day, source="test")


def _store_forecast(path, day, version, forecast, p10, p50, p90, created=datetime(2024, 1, 1)) -> None:
    frame = pl.DataFrame(
        {
            "target_date": [day] * 24,
            "hour": list(range(24)),
            "forecast": np.asarray(forecast, float),
            "p10": np.asarray(p10, float),
            "p50": np.asarray(p50, float),
            "p90": np.asarray(p90, float),
        }
    ).with_columns(
        pl.col("hour").cast(pl.Int32),
        (pl.col("target_date").cast(pl.Datetime("us")) + pl.duration(hours=pl.col("hour"))).alias("ts"),
        pl.lit(version).alias("model_version"),
        pl.lit("mlflow-run").alias("mlflow_run_id"),
        pl.lit(day - timedelta(days=1)).alias("feature_cutoff"),
        pl.lit(created).alias("created_at"),
    )
    with connect(path) as conn:
        conn.register("incoming", frame.to_arrow())
        conn.execute("INSERT INTO ml.predictions BY NAME SELECT * FROM incoming")
        conn.unregister("incoming")


@pytest.fixture
def warehouse(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    _store_prices(path, DAY - timedelta(days=7), NAIVE)
    _store_prices(path, DAY, ACTUAL)
    # version "a": +10 on even hours, -10 on odd hours; band [a-5, a+5], except the last 6 hours
    # where p90 = a-1 (actual above the band); median a+2.
    forecast_a = ACTUAL + np.where(HOURS % 2 == 0, 10.0, -10.0)
    p90 = np.where(HOURS < 18, ACTUAL + 5, ACTUAL - 1)
    _store_forecast(path, DAY, "a", forecast_a, ACTUAL - 5, ACTUAL + 2, p90)
    # version "b" is the weekly naive itself: rMAE exactly 1
    _store_forecast(path, DAY, "b", NAIVE, NAIVE - 30, NAIVE, NAIVE + 30, created=datetime(2024, 2, 1))
    return path


def test_accuracy_matches_hand_computation(warehouse):
    frame = accuracy_for_day(warehouse, DAY)
    assert frame.columns[:2] == ["target_date", "model_version"]
    rows = {r["model_version"]: r for r in frame.iter_rows(named=True)}
    a = rows["a"]
    assert a["target_date"] == DAY and a["hours"] == 24
    assert a["mae"] == pytest.approx(10.0)
    assert a["rmse"] == pytest.approx(10.0)
    forecast_a = ACTUAL + np.where(HOURS % 2 == 0, 10.0, -10.0)
    assert a["smape"] == pytest.approx(np.mean(20.0 / (ACTUAL + forecast_a)))
    assert a["naive_w_mae"] == pytest.approx(20.0)
    assert a["rmae"] == pytest.approx(0.5)
    # pinball by hand: q=0.1 at a-5 -> 0.1*5 = 0.5; q=0.5 at a+2 -> 0.5*2 = 1.0;
    # q=0.9: 18 hours at a+5 -> 0.1*5 = 0.5, 6 hours at a-1 -> 0.9*1 = 0.9 => (18*0.5+6*0.9)/24 = 0.6
    assert a["pinball"] == pytest.approx((0.5 + 1.0 + 0.6) / 3)
    assert a["coverage_80"] == pytest.approx(18 / 24)
    b = rows["b"]
    assert b["mae"] == pytest.approx(20.0) and b["rmae"] == pytest.approx(1.0)
    assert b["coverage_80"] == pytest.approx(1.0)  # band [a-10, a+50] always holds the actual


def test_accuracy_not_ready_when_actuals_incomplete(tmp_path):
    path = tmp_path / "w.duckdb"
    _store_prices(path, DAY, ACTUAL, hours=range(20))
    _store_forecast(path, DAY, "a", ACTUAL, ACTUAL, ACTUAL, ACTUAL)
    with pytest.raises(AccuracyNotReady, match=r"2024-03-15.*20/24") as info:
        accuracy_for_day(path, DAY)
    assert isinstance(info.value, ValueError) and info.value.hours_present == 20
    with pytest.raises(AccuracyNotReady, match="0/24"):
        accuracy_for_day(path, DAY + timedelta(days=1))


def test_no_predictions_names_the_date(tmp_path):
    path = tmp_path / "w.duckdb"
    _store_prices(path, DAY, ACTUAL)
    with pytest.raises(NoPredictionsError, match="2024-03-15"):
        accuracy_for_day(path, DAY)


def test_missing_naive_leaves_rmae_null(tmp_path):
    path = tmp_path / "w.duckdb"
    _store_prices(path, DAY, ACTUAL)
    _store_forecast(path, DAY, "a", ACTUAL + 1, ACTUAL - 1, ACTUAL, ACTUAL + 1)
    row = accuracy_for_day(path, DAY).row(0, named=True)
    assert row["mae"] == pytest.approx(1.0) and row["naive_w_mae"] is None and row["rmae"] is None
    write_accuracy(path, accuracy_for_day(path, DAY))
    assert rolling_rmae(path, DAY, days=7).rmae is None


def test_write_accuracy_is_idempotent(warehouse):
    frame = accuracy_for_day(warehouse, DAY)
    assert write_accuracy(warehouse, frame) == 2
    write_accuracy(warehouse, frame.with_columns(pl.col("mae") + 1))
    with connect(warehouse, read_only=True) as conn:
        stored = conn.sql("SELECT * FROM monitoring.forecast_accuracy ORDER BY model_version").pl()
    assert stored.height == 2
    assert stored.select("target_date", "model_version").rows() == [(DAY, "a"), (DAY, "b")]
    assert stored["mae"].to_list() == pytest.approx([11.0, 21.0])
    with pytest.raises(ValueError, match="more than one row"):
        write_accuracy(warehouse, pl.concat([frame, frame]))


def test_rolling_rmae_is_pooled_not_averaged(tmp_path):
    path = tmp_path / "w.duckdb"
    d1, d2 = DAY, DAY + timedelta(days=1)
    # day 1: model off by 10, naive off by 20 -> daily rMAE 0.5
    # day 2: model off by 10, naive off by 100 -> daily rMAE 0.1
    # mean of daily rMAEs = 0.3; pooled = (240 + 240) / (480 + 2400) = 1/6
    _store_prices(path, d1 - timedelta(days=7), ACTUAL + 20)
    _store_prices(path, d2 - timedelta(days=7), ACTUAL + 100)
    for day in (d1, d2):
        _store_prices(path, day, ACTUAL)
        _store_forecast(path, day, "a", ACTUAL + 10, ACTUAL - 20, ACTUAL, ACTUAL + 20, created=datetime(2024, 3, 1))
        _store_forecast(path, day, "old", ACTUAL + 30, ACTUAL - 20, ACTUAL, ACTUAL + 20, created=datetime(2024, 1, 1))
        write_accuracy(path, accuracy_for_day(path, day))
    daily = accuracy_for_day(path, d1)["rmae"].to_list() + accuracy_for_day(path, d2)["rmae"].to_list()
    assert sorted(daily) == pytest.approx([0.1, 0.3, 0.5, 1.5])

    rolling = rolling_rmae(path, d2, days=28)
    assert rolling.rmae == pytest.approx(480 / 2880)  # served version "a" (latest created)
    assert rolling.rmae != pytest.approx(0.3)
    assert rolling.days == 2 and rolling.hours == 48 and rolling.mae == pytest.approx(10.0)
    assert rolling.start == d2 - timedelta(days=27) and rolling.end == d2
    assert set(rolling.days_by_version.values()) == {"a"}
    assert rolling.per_version["a"]["rmae"] == pytest.approx(480 / 2880)
    assert rolling.per_version["old"]["rmae"] == pytest.approx(1440 / 2880)
    only_old = rolling_rmae(path, d2, days=28, model_version="old")
    assert only_old.rmae == pytest.approx(0.5) and list(only_old.per_version) == ["old"]
    # a window holding only day 2
    assert rolling_rmae(path, d2, days=1).rmae == pytest.approx(0.1)
    assert classify_rolling(rolling.rmae) == "pass"


def test_classify_rolling():
    assert classify_rolling(0.5) == "pass"
    assert classify_rolling(0.9) == "pass"
    assert classify_rolling(0.95) == "warn"
    assert classify_rolling(0.7, warn_above=0.6) == "warn"
    assert classify_rolling(1.0) == "error"
    assert classify_rolling(1.3) == "error"
    with pytest.raises(ValueError):
        classify_rolling(None)
