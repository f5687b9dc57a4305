"""The one definition of accuracy: pooled over hours, equal whether scored from hours or from
stored daily scores, and the same numbers the array metrics give."""

from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest

from energy_platform.forecasting import metrics
from energy_platform.scoring import pool, pool_trailing, score


def _frame(days: int = 10, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    n = days * 24
    actual = 200 + 50 * rng.standard_normal(n)
    # day 0 is calm for the naive: a mean of daily ratios would be dominated by it
    naive = actual + np.where(np.arange(n) < 24, 0.5, 40) * rng.standard_normal(n)
    forecast = actual + 20 * rng.standard_normal(n)
    return pl.DataFrame({
        "model": ["m"] * n,
        "target_date": [date(2024, 1, 1) + timedelta(days=i // 24) for i in range(n)],
        "hour": [i % 24 for i in range(n)],
        "actual": actual, "forecast": forecast, "naive_w": naive,
        "p10": forecast - 25, "p50": forecast, "p90": forecast + 25,
    })


def test_pooled_scores_equal_the_array_metrics_and_not_a_mean_of_daily_ratios():
    f = _frame()
    s = score(f).row(0, named=True)
    a, p, n = f["actual"].to_numpy(), f["forecast"].to_numpy(), f["naive_w"].to_numpy()
    assert s["hours"] == 240 and s["days"] == 10
    assert s["mae"] == pytest.approx(metrics.mae(a, p))
    assert s["rmse"] == pytest.approx(metrics.rmse(a, p))
    assert s["smape"] == pytest.approx(metrics.smape(a, p))
    assert s["rmae"] == pytest.approx(metrics.rmae(a, p, n))
    assert s["pinball"] == pytest.approx(metrics.pinball(a, f["p10"], f["p50"], f["p90"]))
    assert s["coverage_80"] == pytest.approx(metrics.coverage(a, f["p10"], f["p90"]))
    daily = score(f, by=["target_date"])
    assert daily["rmae"].mean() > 1.5 * s["rmae"]  # the calm day's ratio would have inflated it


def test_pooling_stored_daily_scores_gives_the_hourly_number():
    f = _frame(days=28, seed=1)
    daily = score(f, by=["model", "target_date"])
    pooled = pool(daily, by=["model"]).row(0, named=True)
    direct = score(f).row(0, named=True)
    for key in ("mae", "rmae", "naive_w_mae", "coverage_80"):
        assert pooled[key] == pytest.approx(direct[key]), key
    assert pooled["days"] == 28 and pooled["hours"] == 28 * 24


def test_a_missing_naive_hour_makes_rmae_null_not_a_partial_ratio():
    f = _frame(days=2).with_columns(pl.when(pl.col("hour") == 3).then(None).otherwise(pl.col("naive_w")).alias("naive_w"))
    s = score(f, by=["target_date"])
    assert s["rmae"].is_null().all() and s["mae"].is_not_null().all()
    pooled = pool(s).row(0, named=True)
    assert pooled["rmae"] is None and pooled["mae"] == pytest.approx(score(f).row(0, named=True)["mae"])


def test_a_trailing_window_pools_like_pool_on_that_window():
    f = pl.concat([_frame(days=20, seed=2), _frame(days=20, seed=3).with_columns(pl.lit("n").alias("model"))])
    daily = score(f, by=["model", "target_date"]).sample(fraction=1.0, shuffle=True, seed=4)
    trailing = daily.with_columns(pool_trailing(daily, 7, by=["model"]).alias("r7"))
    for row in trailing.sample(8, seed=5).iter_rows(named=True):
        window = daily.filter((pl.col("model") == row["model"]) & pl.col("target_date").is_between(
            row["target_date"] - timedelta(days=6), row["target_date"]))
        assert row["r7"] == pytest.approx(pool(window).row(0, named=True)["rmae"])
