"""`backtest(..., workers=N)`: the test days walked as N segments in N processes. Each segment is a
backtest started on its first day (fresh models, a cold first fit), to the last digit."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest

from energy_platform.forecasting import ForecastInputError, MLPForecaster, backtest, naive_d
from energy_platform.forecasting.walk_segments import segment_bounds

from .conftest import TINY


@pytest.mark.parametrize(
    ("n_days", "every", "workers", "bounds"),
    [
        (10, 1, 2, [(0, 5), (5, 10)]),
        (11, 1, 2, [(0, 6), (6, 11)]),
        (10, 7, 2, [(0, 7), (7, 10)]),  # segments start on refit days: a 7-day cadence cannot split 10 days evenly
        (3, 7, 2, [(0, 3)]),  # one refit: one segment
        (9, 2, 3, [(0, 4), (4, 8), (8, 9)]),
    ],
)
def test_segments_start_on_refit_days_with_equal_numbers_of_refits(n_days, every, workers, bounds):
    assert segment_bounds(n_days, every, workers) == bounds


def test_two_workers_give_each_segment_the_forecasts_of_a_backtest_started_on_its_first_day(prices):
    start, end, mid = date(2022, 7, 20), date(2022, 7, 25), date(2022, 7, 23)

    def models():
        return [MLPForecaster(horizon_days=1, **TINY), naive_d(horizon_days=1)]

    parallel = backtest(prices, models(), start, end, recalibrate_every=1, window_days=150, workers=2)
    first = backtest(prices, models(), start, mid - timedelta(days=1), recalibrate_every=1, window_days=150)
    second = backtest(prices, models(), mid, end, recalibrate_every=1, window_days=150)
    key = ["model", "target_date", "hour"]
    expected = pl.concat([first.forecasts, second.forecasts]).sort(key)
    assert parallel.forecasts.sort(key).equals(expected)
    one_chain = backtest(prices, models(), start, end, recalibrate_every=1, window_days=150).forecasts.sort(key)
    mlp = pl.col("model") == "forecaster"
    # the first segment is the one-process walk itself; the second differs (a cold fit instead of warm refits)
    assert parallel.forecasts.sort(key).filter(mlp & (pl.col("target_date") < mid)).equals(one_chain.filter(mlp & (pl.col("target_date") < mid)))
    assert not np.allclose(parallel.forecasts.sort(key).filter(mlp)["p50"], one_chain.filter(mlp)["p50"])
    by = {m["model"]: m for m in parallel.metrics}
    assert by["forecaster"]["fits"] == 6 and by["forecaster"]["test_days"] == 6


def test_workers_below_one_are_refused(prices):
    with pytest.raises(ForecastInputError, match="workers must be at least 1"):
        backtest(prices, [naive_d(horizon_days=1)], date(2022, 7, 20), date(2022, 7, 25), window_days=30, workers=0)
