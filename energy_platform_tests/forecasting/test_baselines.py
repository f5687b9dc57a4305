from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest

from energy_platform.forecasting import ForecastInputError, Lear, make_model, naive_d, naive_w
from energy_platform.forecasting.metrics import mae

TARGET = date(2022, 6, 15)


def _day(prices: pl.DataFrame, d: date) -> list[float]:
    return prices.filter(pl.col("date") == d).sort("hour")["price"].to_list()


def test_naives_copy_the_right_day(prices):
    assert naive_d(horizon_days=2).predict(prices, TARGET)["forecast"].to_list() == _day(prices, TARGET - timedelta(days=2))
    assert naive_d(horizon_days=1).predict(prices, TARGET)["forecast"].to_list() == _day(prices, TARGET - timedelta(days=1))
    assert naive_w(horizon_days=2).predict(prices, TARGET)["forecast"].to_list() == _day(prices, TARGET - timedelta(days=7))
    assert naive_w().predict(prices, TARGET).columns == ["hour", "forecast"]


def test_naive_weekly_impossible_beyond_a_week():
    with pytest.raises(ForecastInputError):
        naive_w(horizon_days=8)


def test_lear_fits_real_lasso_and_beats_naive(prices_exog):
    m = Lear(horizon_days=1)
    m.fit(prices_exog, date(2022, 10, 31), 300)
    # Sparse: LASSO with an AIC penalty drops most of the 24*4 + 24*3 + 9 inputs for each hour.
    assert m._core._coef.shape == (24, 24 * 4 + 24 * 3 + 9)
    assert 0 < (m._core._coef != 0).sum(axis=1).mean() < m._core._coef.shape[1]
    # The exogenous load of day d drives the price of hour h: its coefficient must be picked.
    names = [f"load_forecast_lag0_h{h:02d}" for h in range(24)]
    from energy_platform.forecasting.features import FeatureSpec, feature_names

    all_names = feature_names(FeatureSpec(1), ["load_forecast"])
    cols = [all_names.index(n) for n in names]
    assert all(m._core._coef[h, cols[h]] > 0 for h in range(24))
    days = [date(2022, 11, 1) + timedelta(days=i) for i in range(14)]
    fc = np.concatenate([m.predict(prices_exog, d)["forecast"].to_numpy() for d in days])
    actual = np.concatenate([_day(prices_exog, d) for d in days])
    weekly = np.concatenate([_day(prices_exog, d - timedelta(days=7)) for d in days])
    assert mae(actual, fc) < 0.7 * mae(actual, weekly)


def test_registry_and_bad_names():
    assert make_model("lear", horizon_days=2).horizon_days == 2
    assert make_model("forecaster", horizon_days=2).has_intervals
    with pytest.raises(ForecastInputError, match="unknown model"):
        make_model("prophet")


def test_lear_refuses_short_window_and_gaps(prices):
    with pytest.raises(ForecastInputError, match="too short"):
        Lear().fit(prices, date(2022, 7, 31), 20)
    gappy = prices.filter(pl.col("ts") != pl.datetime(2022, 7, 1, 0))
    with pytest.raises(ForecastInputError, match="gap"):
        Lear().fit(gappy, date(2022, 7, 31), 200)
