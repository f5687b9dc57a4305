from datetime import date

import polars as pl
import pytest

from energy_platform.forecasting import ForecastInputError, Lear, MLPForecaster, backtest, backtest_recent, naive_d, naive_w

from .conftest import TINY


class SpyModel:
    """Records fits; forecasts the weekly naive so metrics are known."""

    name = "spy"
    horizon_days = 2
    has_intervals = False
    reads_exogenous = False

    def min_window_days(self, n_exog: int = 0) -> int:
        return 10

    def __init__(self):
        self.fits: list[date] = []
        self._naive = naive_w(horizon_days=2)

    def fit(self, prices, train_end, window_days):
        self.fits.append(train_end)

    def predict(self, prices, target):
        return self._naive.predict(prices, target)


def test_walk_forward_refits_every_k_days_and_collects_forecasts(prices):
    spy = SpyModel()
    res = backtest(prices, [spy, naive_d(horizon_days=2), naive_w(horizon_days=2)], date(2022, 6, 1), date(2022, 6, 10),
                   recalibrate_every=4, window_days=60)
    assert spy.fits == [date(2022, 5, 30), date(2022, 6, 3), date(2022, 6, 7)]
    assert res.forecasts.height == 3 * 10 * 24
    assert res.forecasts.columns == ["model", "target_date", "hour", "ts", "actual", "forecast", "p10", "p50", "p90"]
    by = {m["model"]: m for m in res.metrics}
    assert by["spy"]["rmae"] == pytest.approx(1.0) and by["naive_w"]["rmae"] == pytest.approx(1.0)
    assert set(by["naive_d"]) >= {"model", "mae", "rmae", "smape", "rmse", "test_days", "fit_seconds"}
    row = res.forecasts.filter((pl.col("model") == "naive_d") & (pl.col("target_date") == date(2022, 6, 3)) & (pl.col("hour") == 5))
    actual = prices.filter(pl.col("ts") == pl.datetime(2022, 6, 3, 5))["price"][0]
    assert row["actual"][0] == actual and row["ts"][0].hour == 5
    assert row["forecast"][0] == prices.filter(pl.col("ts") == pl.datetime(2022, 6, 1, 5))["price"][0]


def test_forecaster_in_backtest_has_interval_metrics(prices):
    m = MLPForecaster(horizon_days=2, **TINY)
    res = backtest(prices, [m], date(2022, 7, 20), date(2022, 7, 26), recalibrate_every=7, window_days=150)
    (row,) = res.metrics
    assert {"pinball", "coverage_80"} <= set(row) and 0 <= row["coverage_80"] <= 1
    assert res.forecasts["p10"].null_count() == 0


def test_backtest_recent_for_one_candidate(prices):
    res = backtest_recent(prices, naive_d(horizon_days=2), weeks=2, recalibrate_every=7, window_days=30)
    assert [m["model"] for m in res.metrics] == ["naive_d", "naive_w"]
    assert res.forecasts["target_date"].max() == prices["date"].max()
    assert res.metrics[0]["test_days"] == 14


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(test_start=date(2022, 8, 1), test_end=date(2023, 1, 1)), "outside the data"),
        (dict(test_start=date(2022, 1, 5), test_end=date(2022, 1, 9)), "before the data starts"),
        (dict(window_days=5), "too short"),
        (dict(recalibrate_every=0), "at least 1"),
    ],
)
def test_bad_ranges_refused_before_any_fit(prices, kwargs, match):
    spy = SpyModel()
    args = dict(test_start=date(2022, 6, 1), test_end=date(2022, 6, 10), window_days=60, recalibrate_every=1) | kwargs
    with pytest.raises(ForecastInputError, match=match):
        backtest(prices, [spy], args.pop("test_start"), args.pop("test_end"), **args)
    assert spy.fits == []


def test_gap_in_history_refused_before_any_fit(prices):
    spy = SpyModel()
    gappy = prices.with_columns(pl.when(pl.col("ts") == pl.datetime(2022, 6, 5, 7)).then(None).otherwise(pl.col("price")).alias("price"))
    with pytest.raises(ForecastInputError, match="missing actual"):
        backtest(gappy, [spy], date(2022, 6, 1), date(2022, 6, 10), window_days=60)
    gappy = prices.with_columns(pl.when(pl.col("ts") == pl.datetime(2022, 5, 5, 7)).then(None).otherwise(pl.col("price")).alias("price"))
    with pytest.raises(ForecastInputError, match=r"gaps in the history.*first 2022-05-05 \(in 'price'\)"):
        backtest(gappy, [spy], date(2022, 6, 1), date(2022, 6, 10), window_days=60)
    assert spy.fits == []


def test_a_gap_in_an_exogenous_series_names_it_and_stops_only_the_models_reading_it(prices):
    load = prices.with_columns(pl.when(pl.col("date") == date(2022, 5, 5)).then(None).otherwise(pl.col("price") * 3).alias("load"))
    with pytest.raises(ForecastInputError, match=r"lear: gaps in the history.*first 2022-05-05 \(in 'load'\)"):
        backtest(load, [Lear(horizon_days=2)], date(2022, 7, 20), date(2022, 7, 29), window_days=190)
    spy = SpyModel()  # the weekly naive reads no exogenous series: its backtest runs
    backtest(load, [spy], date(2022, 7, 20), date(2022, 7, 29), window_days=190)
    assert len(spy.fits) == 10
