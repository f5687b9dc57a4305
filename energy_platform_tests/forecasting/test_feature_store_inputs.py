"""The feature store row is point-in-time in every column, and training, the feature store and a
served request all compute the same features (operating groups included) with one function."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest
from mlflow.exceptions import MlflowException

from energy_platform.forecasting.base import training_set, training_set_from_features
from energy_platform.forecasting.features import FeatureSpec, build_feature_frame, daily_panel
from energy_platform.forecasting.model import MLPForecaster
from energy_platform.forecasting.operating_features import (
    OPERATING_COLUMNS,
    OperatingData,
    hourly_operating_columns,
    operating_inputs,
)
from energy_platform.forecasting.request_history import history_days
from energy_platform.serving import unknown_operating_groups
from energy_platform.sources import SampleSource
from energy_platform.sources.operating import get_operating_source
from energy_platform.sources.publication import daily_known_on, hydrology_known_on, oni_known_on
from energy_platform.tracking.pyfunc_model import in_memory_forecaster
from energy_platform_tests.forecasting.conftest import TINY

H = 2
# Month ends, the ONI 14th/15th switch, a leap day, the missing 2015-12-31 and a quarter later.
CUTOFFS = [date(2016, 1, 1), date(2016, 2, 13), date(2016, 2, 14), date(2016, 2, 29), date(2016, 3, 31),
           date(2021, 6, 30), date(2021, 7, 1), date(2022, 1, 14)]


@pytest.fixture(scope="module")
def data():
    prices = SampleSource().frame.filter(pl.col("ts").dt.date() <= date(2022, 6, 30)).select("ts", "price")
    return prices, OperatingData.from_source(get_operating_source("sample"))


def _scramble(frame: pl.DataFrame, late: pl.Expr, values: list[str]) -> pl.DataFrame:
    """Every value in `late` rows scrambled, and a fake far-future row added."""
    changed = frame.with_columns([pl.when(late).then(pl.col(c) * -7.0 + 1234.5).otherwise(pl.col(c)).alias(c) for c in values])
    key = frame.columns[0]
    return pl.concat([changed, changed.tail(1).with_columns(pl.col(key) + pl.duration(days=4000))])


@pytest.mark.parametrize("cutoff", CUTOFFS)
def test_every_column_of_the_row_ignores_everything_after_its_publication_boundary(data, cutoff):
    prices, op = data
    target = cutoff + timedelta(days=H)
    decision = cutoff + timedelta(days=1)  # the morning the forecast is made
    row = build_feature_frame(prices, [target], H, operating=op)
    perturbed_prices = prices.with_columns(
        pl.when(pl.col("ts").dt.date() > cutoff).then(pl.col("price") * 3 + 99).otherwise(pl.col("price")).alias("price")
    )
    perturbed_op = OperatingData(
        _scramble(op.daily, daily_known_on("date") > decision, ["demand_gwh", "generation_gwh"]),
        _scramble(op.hydrology, hydrology_known_on("month") > decision,
                  ["reservoir_useful_volume_pct", "inflows_pct_of_historical_mean"]),
        _scramble(op.oni, oni_known_on("month") > decision, ["oni"]),
    )
    after = build_feature_frame(perturbed_prices, [target], H, operating=perturbed_op)
    # target_h00..23 are the realised prices the row is scored against, not inputs: they must change.
    inputs = [c for c in row.columns if not c.startswith("target_h")]
    assert set(OPERATING_COLUMNS) <= set(inputs)
    assert after.select(inputs).to_dicts() == row.select(inputs).to_dicts()
    assert after.select("target_h00").item() != row.select("target_h00").item()


def test_the_boundary_is_tight_the_cutoff_day_is_used(data):
    """Scrambling the cutoff day itself (prices and demand) changes the row: nothing usable is dropped."""
    prices, op = data
    cutoff = date(2021, 7, 1)
    row = build_feature_frame(prices, [cutoff + timedelta(days=H)], H, operating=op)
    bumped = pl.when(pl.col("date") == cutoff).then(pl.col("demand_gwh") + 10).otherwise(pl.col("demand_gwh"))
    same_day = op.daily.with_columns(bumped.alias("demand_gwh"))
    after = build_feature_frame(prices, [cutoff + timedelta(days=H)], H, operating=OperatingData(same_day, op.hydrology, op.oni))
    assert after["demand_gwh_last"].item() == pytest.approx(row["demand_gwh_last"].item() + 10)


def test_training_from_feature_rows_equals_training_from_the_panel(data):
    prices, op = data
    spec = FeatureSpec(horizon_days=H, operating_groups=("demand", "hydrology", "enso"))
    end = date(2022, 3, 31)
    from_panel = training_set(daily_panel(prices, op), spec, end, 400, 56)
    targets = pl.date_range(end - timedelta(days=420), end, "1d", eager=True).to_list()
    from_rows = training_set_from_features(build_feature_frame(prices, targets, H, operating=op), spec, end, 400, 56)
    assert from_rows.names == from_panel.names
    np.testing.assert_array_equal(from_rows.X, from_panel.X)
    np.testing.assert_array_equal(from_rows.Y, from_panel.Y)


@pytest.fixture(scope="module")
def fitted(data):
    prices, op = data
    model = MLPForecaster(horizon_days=H, operating_groups=("demand", "hydrology", "enso"), **TINY)
    model.fit(daily_panel(prices, op), date(2022, 3, 31), 400)
    return model


def _request(prices: pl.DataFrame, op: OperatingData, model: MLPForecaster, target: date) -> pl.DataFrame:
    cutoff = target - timedelta(days=H)
    first = target - timedelta(days=history_days(model))
    window = prices.filter(pl.col("ts").dt.date().is_between(first, cutoff))
    return hourly_operating_columns(window, op, model.spec.operating_groups)


@pytest.mark.parametrize("target", [date(2022, 4, 1), date(2022, 4, 15), date(2022, 5, 16), date(2022, 6, 1)])
def test_a_request_of_history_days_forecasts_exactly_what_the_feature_row_does(data, fitted, target):
    """The README's minimum history (history_days) carries every operating value the row uses."""
    prices, op = data
    row = build_feature_frame(prices, [target], H, operating=op)
    from_row = fitted.predict(row, target)
    served = in_memory_forecaster(fitted).predict(_request(prices, op, fitted, target).to_pandas())
    np.testing.assert_allclose(served[["p10", "p50", "p90"]].to_numpy(), from_row.select("p10", "p50", "p90").to_numpy(), atol=1e-9)
    assert str(served["ts"].iloc[0].date()) == str(target)


def test_a_late_demand_day_does_not_fail_the_forecast(data, fitted):
    prices, op = data
    target = date(2022, 4, 15)
    request = _request(prices, op, fitted, target)
    cutoff = target - timedelta(days=H)
    late = request.with_columns(
        pl.when(pl.col("ts").dt.date() == cutoff).then(None).otherwise(pl.col(c)).alias(c) for c in ("demand_gwh", "generation_gwh")
    )
    full = in_memory_forecaster(fitted).predict(request.to_pandas())
    degraded = in_memory_forecaster(fitted).predict(late.to_pandas())
    assert np.isfinite(degraded[["p10", "p50", "p90"]].to_numpy()).all()
    assert not np.allclose(degraded["p50"].to_numpy(), full["p50"].to_numpy())  # the missing flag is on


def test_the_groups_a_feature_row_does_not_know_are_named(data, fitted):
    """What the predictions asset warns about: the cutoff 04-13's demand missing, hydrology
    stopped after January (overdue twice by April), each named on the days it is unknown."""
    prices, op = data
    gaps = OperatingData(
        op.daily.filter(pl.col("date") != date(2022, 4, 13)), op.hydrology.filter(pl.col("month") <= date(2022, 1, 1)), op.oni
    )
    days = [date(2022, 4, 14), date(2022, 4, 15)]
    rows = build_feature_frame(prices, days, H, operating=gaps)
    assert unknown_operating_groups(fitted, rows, *days) == {days[0]: ["hydrology"], days[1]: ["demand", "hydrology"]}
    assert unknown_operating_groups(fitted, build_feature_frame(prices, days, H, operating=op), *days) == {}


def test_a_request_without_the_operating_columns_is_a_clear_400(data, fitted):
    prices, op = data
    request = _request(prices, op, fitted, date(2022, 4, 15)).drop("oni")
    with pytest.raises(MlflowException) as refused:
        in_memory_forecaster(fitted).predict(request.to_pandas())
    assert refused.value.error_code == "INVALID_PARAMETER_VALUE"
    assert "oni" in refused.value.message and "operating groups" in refused.value.message


def test_two_values_for_one_day_are_refused(data, fitted):
    prices, op = data
    request = _request(prices, op, fitted, date(2022, 4, 15))
    bad = request.with_columns(pl.when(pl.int_range(pl.len()) == request.height - 3).then(1.0).otherwise(pl.col("demand_gwh")).alias("demand_gwh"))
    with pytest.raises(MlflowException, match="different values within day"):
        in_memory_forecaster(fitted).predict(bad.to_pandas())


def test_the_groups_reload_with_the_saved_model(data, fitted, tmp_path):
    prices, op = data
    fitted.save(tmp_path / "m.pt")
    again = MLPForecaster.load(tmp_path / "m.pt")
    assert again.spec.operating_groups == ("demand", "hydrology", "enso")
    row = build_feature_frame(prices, [date(2022, 4, 1)], H, operating=op)
    assert again.predict(row, date(2022, 4, 1)).equals(fitted.predict(row, date(2022, 4, 1)))
    assert set(operating_inputs(again.spec.operating_groups)) <= set(_request(prices, op, again, date(2022, 4, 1)).columns)


def test_groups_off_gives_exactly_the_price_only_features(data):
    prices, op = data
    spec = FeatureSpec(horizon_days=H)
    a = training_set(daily_panel(prices, op), spec, date(2022, 3, 31), 300, 56)
    b = training_set(daily_panel(prices), spec, date(2022, 3, 31), 300, 56)
    assert a.names == b.names and not any(n in OPERATING_COLUMNS for n in a.names)
    np.testing.assert_array_equal(a.X, b.X)


def test_a_non_numeric_operating_column_is_a_clear_400(data, fitted):
    prices, op = data
    request = _request(prices, op, fitted, date(2022, 4, 15)).with_columns(pl.lit("wet").alias("reservoir_useful_volume_pct"))
    with pytest.raises(MlflowException, match="column reservoir_useful_volume_pct is not numeric"):
        in_memory_forecaster(fitted).predict(request.to_pandas())


def test_a_refit_with_operating_groups_warm_starts(data):
    """The missing flags widen the net's input: a refit must still recognise its own net."""
    prices, op = data
    model = MLPForecaster(horizon_days=H, operating_groups=("demand", "enso"), **TINY)
    panel = daily_panel(prices, op)
    model.fit(panel, date(2022, 3, 31), 400)
    model.fit(panel, date(2022, 4, 7), 400)
    assert model.last_fit["warm"] is True


def test_a_window_shorter_than_a_year_trains_on_prices_alone_and_says_so(data, tmp_path):
    """Monthly series seen for half a year (a replay of 2015) are left out of that fit only: the
    saved model, its requests and the next, longer window each know which groups it read."""
    prices, op = data
    panel = daily_panel(prices, op)
    model = MLPForecaster(horizon_days=H, operating_groups=("hydrology", "enso"), **TINY)
    model.fit(panel, date(2016, 3, 31), 200)
    assert model.spec.operating_groups == () and model.last_fit["operating_groups"] == []
    assert model.last_fit["operating_groups_left_out"]["enso"].endswith("days (needs 365)")  # and why, for the run's log
    model.save(tmp_path / "short.pt")
    short = MLPForecaster.load(tmp_path / "short.pt")
    assert short.spec.operating_groups == ()
    request = prices.filter(pl.col("ts").dt.date().is_between(date(2016, 3, 24), date(2016, 3, 31)))
    served = in_memory_forecaster(short).predict(request.to_pandas())  # no operating columns needed
    assert len(served) == 24 and served["p50"].notna().all()
    model.fit(panel, date(2017, 3, 31), 400)
    assert model.spec.operating_groups == ("hydrology", "enso") and model.last_fit["warm"] is False


def test_an_operating_series_that_begins_late_is_left_out_of_that_fit_only(data):
    """Reservoir data from 2021-10 on: a window to 2022-03 knows it on ~150 days, too few to
    learn from, so that fit reads ENSO alone instead of failing, and forecasts."""
    prices, op = data
    late = OperatingData(op.daily, op.hydrology.filter(pl.col("month") >= date(2021, 10, 1)), op.oni)
    model = MLPForecaster(horizon_days=H, operating_groups=("hydrology", "enso"), **TINY)
    model.fit(daily_panel(prices, late), date(2022, 3, 31), 400)
    assert model.spec.operating_groups == ("enso",)
    assert list(model.last_fit["operating_groups_left_out"]) == ["hydrology"]
    assert model.predict(build_feature_frame(prices, [date(2022, 4, 2)], H, operating=late), date(2022, 4, 2)).height == 24


def test_an_operating_series_that_stopped_is_left_out_until_it_is_known_again(data):
    """Reservoir data ending 2021-09: from December its newest month is two publications overdue
    and reads as unknown. A 600-day window to 2022-03 still knows it on ~480 days, but the fit's
    forecasts would read it as missing, which its net never saw: the fit reads ENSO alone, and
    forecasts. With the data back, the next fit reads hydrology again."""
    prices, op = data
    stopped = OperatingData(op.daily, op.hydrology.filter(pl.col("month") <= date(2021, 9, 1)), op.oni)
    model = MLPForecaster(horizon_days=H, operating_groups=("hydrology", "enso"), **TINY)
    model.fit(daily_panel(prices, stopped), date(2022, 3, 31), 600)
    assert model.spec.operating_groups == ("enso",) and model.last_fit["operating_groups"] == ["enso"]
    assert model.last_fit["operating_groups_left_out"] == {"hydrology": "not known on the newest training row (target day 2022-03-31)"}
    assert model.predict(build_feature_frame(prices, [date(2022, 4, 2)], H, operating=stopped), date(2022, 4, 2)).height == 24
    model.fit(daily_panel(prices, op), date(2022, 3, 31), 600)
    assert model.spec.operating_groups == ("hydrology", "enso")



@pytest.mark.parametrize("rows", ["panel", "feature rows"])
def test_a_series_unknown_at_the_fit_s_first_forecast_is_left_out(data, rows):
    """Helper J (session 19): reservoir data ending 2021-09 reads as unknown from the cutoff of
    2021-11-30. A fit to 2021-11-30 (newest training row: cutoff 11-28, still known) kept it, and
    its first forecast (target 12-02, cutoff 11-30) and every later one read it as missing."""
    prices, op = data
    stopped = OperatingData(op.daily, op.hydrology.filter(pl.col("month") <= date(2021, 9, 1)), op.oni)
    end = date(2021, 11, 30)
    if rows == "panel":
        source = daily_panel(prices, stopped)
    else:
        days = [end - timedelta(days=i) for i in range(640, -H - 1, -1)]  # to the first forecast's day, as the store
        source = build_feature_frame(prices, days, H, operating=stopped)
    model = MLPForecaster(horizon_days=H, operating_groups=("hydrology", "enso"), **TINY)
    model.fit(source, end, 600)
    assert model.spec.operating_groups == ("enso",), model.last_fit["operating_groups"]
    assert model.last_fit["operating_groups_left_out"] == {"hydrology": "not known at the cutoff of the first forecast (2021-12-02)"}


def test_a_model_without_operating_groups_leaves_none_out(data):
    """Helper M (session 20): a market without operating data has feature rows whose operating
    columns are all null; a model configured without groups must not report them as left out."""
    prices, _ = data
    end = date(2021, 11, 30)
    days = [end - timedelta(days=i) for i in range(400, -H - 1, -1)]
    model = MLPForecaster(horizon_days=H, **TINY)
    rows = build_feature_frame(prices, days, H)
    rows = rows.with_columns(pl.lit(None, pl.Float64).alias(c) for c in OPERATING_COLUMNS if c not in rows.columns)
    model.fit(rows, end, 300)  # the store's rows of a market without operating data
    assert model.last_fit["operating_groups_left_out"] == {} and model.spec.operating_groups == ()
