"""The market's holiday calendar (`ENERGY_PLATFORM_COUNTRY`): the feature store's holiday columns
and the models trained from them follow it; a store of another calendar is recomputed whole."""

from __future__ import annotations

from datetime import date

import dagster as dg
import polars as pl
import pytest

from energy_platform.defs.lifecycle import TrainingConfig, model_overrides
from energy_platform.sources import SampleSource
from energy_platform.tracking.training import TrainingParams
from energy_platform.warehouse.db import connect
from energy_platform.warehouse.features import read_features, refresh_features, write_features
from energy_platform.warehouse.prices import replace_prices
from energy_platform_tests.platform_env import make_env

US_ONLY, CO_ONLY = date(2023, 7, 4), date(2023, 7, 20)  # Independence Day; Colombia's Independence Day


def _holiday(frame: pl.DataFrame, day: date) -> float:
    return frame.filter(pl.col("target_date") == day)["holiday"].item()


def test_the_store_follows_the_calendar_and_another_calendar_recomputes_every_day(tmp_path):
    path = tmp_path / "w.duckdb"
    start, end = date(2023, 5, 1), date(2023, 8, 31)
    replace_prices(path, SampleSource().hourly_prices(start, end), start, end, "sample")
    us = refresh_features(path, 2, country="US")
    assert (_holiday(us, US_ONLY), _holiday(us, CO_ONLY)) == (1.0, 0.0)

    with pytest.raises(ValueError, match="holiday calendar US, these rows with CO"):
        write_features(path, us.tail(3), country="CO")  # some days of another calendar: refused
    assert read_features(path).equals(us)

    co = refresh_features(path, 2, country="CO")  # the daily refresh after the setting changed
    stored = read_features(path)
    assert co.height == stored.height == us.height  # every day, not the ~15 a daily refresh owes
    assert (_holiday(stored, US_ONLY), _holiday(stored, CO_ONLY)) == (0.0, 1.0)
    assert refresh_features(path, 2, country="CO").height < 20  # then incremental again


def test_a_table_written_before_the_calendar_was_named_is_colombia_s(tmp_path):
    path = tmp_path / "w.duckdb"
    start, end = date(2023, 5, 1), date(2023, 8, 31)
    replace_prices(path, SampleSource().hourly_prices(start, end), start, end, "sample")
    full = refresh_features(path, 2)
    with connect(path) as conn:  # the comment earlier code wrote
        conn.execute("COMMENT ON TABLE features.daily IS 'Point-in-time features per target day (raw, unscaled); "
                     "cutoff_date = last day of data used'")
    assert refresh_features(path, 2).height < 20  # the same calendar: incremental
    assert refresh_features(path, 2, country="US").height == full.height


def test_the_platform_s_features_and_models_take_the_setting_and_refuse_an_unknown_code(tmp_path):
    env = make_env(tmp_path / "us", ENERGY_PLATFORM_COUNTRY="us")
    raw, features = env.defs.get_assets_def("raw_prices"), env.defs.get_assets_def("features")
    result = dg.materialize([raw, features], partition_key="2016-01-01", resources=env.defs.resources, instance=env.instance)
    [event] = result.asset_materializations_for_node("features")
    assert event.metadata["holidays"].value == "US"
    rows = read_features(env.warehouse)
    assert (_holiday(rows, date(2016, 1, 18)), _holiday(rows, date(2016, 1, 11))) == (1.0, 0.0)  # MLK day; Reyes (CO)
    model = TrainingParams(model_overrides=model_overrides(TrainingConfig(), 0.0, env.settings.country)).build()
    assert model.spec.country == "US"

    bad = make_env(tmp_path / "xx", ENERGY_PLATFORM_COUNTRY="XX")
    raw, features = bad.defs.get_assets_def("raw_prices"), bad.defs.get_assets_def("features")
    result = dg.materialize([raw, features], partition_key="2016-01-01", resources=bad.defs.resources, instance=bad.instance,
                            raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE" and e.step_key == "features")
    assert "ENERGY_PLATFORM_COUNTRY: unknown holiday country 'XX'" in failure.event_specific_data.error.message
    with connect(bad.warehouse, read_only=True) as conn:
        assert conn.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'daily'").fetchone()[0] == 0


def test_a_model_of_the_earlier_calendar_reads_its_own_holidays_from_the_store_s_rows():
    """After the setting changes, the champion trained before it is served from the store's rows
    with its own calendar's holiday columns (the predictions asset), the same as its own rows."""
    from energy_platform.forecasting.features import build_feature_frame, in_calendar

    prices = SampleSource().hourly_prices(date(2023, 5, 1), date(2023, 8, 31))
    targets = [date(2023, 7, d) for d in range(1, 31)]
    us, co = (build_feature_frame(prices, targets, 2, country=c) for c in ("US", "CO"))
    assert not us.equals(co)
    assert in_calendar(us, "CO", 2).equals(co)
    assert in_calendar(co, "US", 2).equals(us)
