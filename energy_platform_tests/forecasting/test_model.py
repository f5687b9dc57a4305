from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest

from energy_platform.forecasting import ForecastFitError, ForecastInputError, MLPForecaster
from energy_platform.forecasting.metrics import mae

from .conftest import TINY

TRAIN_END = date(2022, 7, 31)
TARGET = date(2022, 8, 2)


@pytest.fixture(scope="module")
def fitted(prices) -> MLPForecaster:
    m = MLPForecaster(horizon_days=2, **TINY)
    m.fit(prices, TRAIN_END, 200)
    return m


def test_forecast_has_24_ordered_quantiles_and_learns(fitted, prices):
    out = fitted.predict(prices, TARGET)
    assert out.columns == ["hour", "forecast", "p10", "p50", "p90"]
    assert out["hour"].to_list() == list(range(24))
    assert (out["p10"] <= out["p50"]).all() and (out["p50"] <= out["p90"]).all()
    assert out["forecast"].equals(out["p50"].alias("forecast"))
    # A real training loop: the fitted net beats the weekly naive on unseen days.
    days = [TARGET + timedelta(days=i) for i in range(14)]
    actual = np.concatenate([prices.filter(pl.col("date") == d).sort("hour")["price"].to_numpy() for d in days])
    weekly = np.concatenate([prices.filter(pl.col("date") == d - timedelta(days=7)).sort("hour")["price"].to_numpy() for d in days])
    fc = np.concatenate([fitted.predict(prices, d)["forecast"].to_numpy() for d in days])
    assert mae(actual, fc) < mae(actual, weekly)


def test_same_seed_same_forecast(prices, fitted):
    again = MLPForecaster(horizon_days=2, **TINY)
    again.fit(prices, TRAIN_END, 200)
    assert again.predict(prices, TARGET).equals(fitted.predict(prices, TARGET))
    other = MLPForecaster(horizon_days=2, **{**TINY, "seed": 1})
    other.fit(prices, TRAIN_END, 200)
    assert not other.predict(prices, TARGET).equals(fitted.predict(prices, TARGET))


def test_save_load_round_trip(tmp_path, prices, fitted):
    path = tmp_path / "model.pt"
    fitted.save(path)
    loaded = MLPForecaster.load(path)
    assert loaded.predict(prices, TARGET).equals(fitted.predict(prices, TARGET))
    assert MLPForecaster.from_state(fitted.to_state()).predict(prices, TARGET).equals(fitted.predict(prices, TARGET))


def test_warm_start_recalibration_is_cheaper(prices):
    m = MLPForecaster(horizon_days=2, **TINY)
    m.fit(prices, TRAIN_END, 200)
    cold = m.last_fit
    m.fit(prices, TRAIN_END + timedelta(days=1), 200)
    assert not cold["warm"] and m.last_fit["warm"]
    assert max(m.last_fit["epochs"]) <= TINY["warm_max_epochs"]


def test_predict_from_history(fitted, prices):
    history = prices.filter(pl.col("date").is_between(date(2022, 7, 1), TARGET - timedelta(days=2))).select("ts", "price")
    out = fitted.predict_from_history(history)
    assert out.columns == ["ts", "hour", "forecast", "p10", "p50", "p90"]
    assert out["ts"][0].date() == TARGET and out["ts"][23].hour == 23
    assert out.drop("ts").equals(fitted.predict(prices, TARGET))
    with pytest.raises(ForecastInputError, match="too short"):
        fitted.predict_from_history(history.tail(24 * 3))
    gappy = history.filter(pl.col("ts") != pl.datetime(2022, 7, 28, 5))
    with pytest.raises(ForecastInputError, match="gaps"):
        fitted.predict_from_history(gappy)
    nulled = history.with_columns(pl.when(pl.col("ts") == pl.datetime(2022, 7, 27, 3)).then(None).otherwise(pl.col("price")).alias("price"))
    with pytest.raises(ForecastInputError, match="gaps"):
        fitted.predict_from_history(nulled)


def test_non_finite_loss_raises_and_leaves_no_forecast(prices):
    m = MLPForecaster(horizon_days=2, **{**TINY, "lr": 1e30})
    with pytest.raises(ForecastFitError, match="non-finite"):
        m.fit(prices, TRAIN_END, 200)
    with pytest.raises(ForecastInputError, match="no fitted model"):
        m.predict(prices, TARGET)


def test_bad_input_refused_before_fitting(prices):
    m = MLPForecaster(horizon_days=2, **TINY)
    with pytest.raises(ForecastInputError, match="too short"):
        m.fit(prices, TRAIN_END, 30)
    with pytest.raises(ForecastInputError, match="outside the data"):
        m.fit(prices, date(2023, 6, 1), 200)
    gappy = prices.with_columns(pl.when(pl.col("ts") == pl.datetime(2022, 5, 1, 3)).then(None).otherwise(pl.col("price")).alias("price"))
    with pytest.raises(ForecastInputError, match="gap"):
        m.fit(gappy, TRAIN_END, 200)
    with pytest.raises(ForecastInputError, match="horizon"):
        MLPForecaster(horizon_days=0)
    assert not m._members


def test_predict_from_history_uses_next_day_exogenous_forecasts(prices_exog):
    m = MLPForecaster(horizon_days=1, **TINY)
    m.fit(prices_exog, date(2022, 7, 31), 200)
    target = date(2022, 8, 10)
    history = prices_exog.filter(pl.col("date").is_between(date(2022, 7, 20), target)).with_columns(
        pl.when(pl.col("date") == target).then(None).otherwise(pl.col("price")).alias("price")
    ).select("ts", "price", "load_forecast")
    out = m.predict_from_history(history)
    assert out["ts"][0].date() == target
    assert out.drop("ts").equals(m.predict(prices_exog, target))
    with pytest.raises(ForecastInputError, match="missing history"):
        m.predict_from_history(history.filter(pl.col("ts").dt.date() < target))


def test_price_floor_bounds_every_quantile_and_survives_save_load(tmp_path):
    from datetime import date as _date

    from energy_platform.forecasting.model import MLPForecaster
    from energy_platform.forecasting.models import make_model
    from energy_platform.sources import SampleSource

    prices = SampleSource().hourly_prices(_date(2024, 3, 1), _date(2024, 12, 31))
    model = make_model("forecaster", horizon_days=2, max_epochs=3, n_members=1, price_floor=50.0)
    model.fit(prices, _date(2024, 12, 31), 250)
    out = model.predict_from_history(prices.filter(prices["date"] > _date(2024, 12, 15)))
    assert out["p10"].min() >= 50.0 and (out["p10"] <= out["p50"]).all() and (out["p50"] <= out["p90"]).all()
    model.save(tmp_path / "m.pt")
    assert MLPForecaster.load(tmp_path / "m.pt").config.price_floor == 50.0
