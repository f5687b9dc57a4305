"""A market with less history than the training window (a new market, a CSV of months of
prices): the platform trains on the history there is, as its recent backtest already did,
instead of failing on feature rows from before the data began."""

from datetime import date

import polars as pl
import pytest

from energy_platform.defs import FEATURES_JOB, INGEST_JOB, TRAIN_JOB
from energy_platform.forecasting.errors import ForecastInputError
from energy_platform.orchestration import run_job
from energy_platform.sources import SampleSource
from energy_platform_tests.platform_env import make_env

FIRST, LAST = date(2015, 1, 1), date(2015, 9, 30)  # 273 days, far less than the default 1456-day window
QUICK = {"backtest_weeks": 2, "recalibrate_every": 7, "max_epochs": 3, "n_members": 1, "lear_weight": 0.0}


def _csv(path, first: date, last: date):
    prices = SampleSource().frame.filter(pl.col("ts").dt.date().is_between(first, last)).sort("ts")
    prices.select(pl.col("ts").dt.strftime("%Y-%m-%d %H:%M:%S").alias("Date"), pl.col("price").alias("Price")).write_csv(path)
    return path


def _train(env, config):
    return run_job(env.defs, TRAIN_JOB, env.instance, run_config={"ops": {"forecaster_model": {"config": config}}})


@pytest.mark.slow
def test_a_market_with_less_history_than_the_window_trains_on_what_exists(tmp_path):
    env = make_env(tmp_path / "home", source=f"csv:{_csv(tmp_path / 'prices.csv', FIRST, LAST)}")
    run_job(env.defs, INGEST_JOB, env.instance, partition_range=("2015-01-01", "2015-09-01"))
    run_job(env.defs, FEATURES_JOB, env.instance)
    result = _train(env, QUICK)  # the default window, 1456 days
    trained = result.asset_materializations_for_node("forecaster_model")[-1].metadata
    assert trained["train_range"].value == f"{FIRST}..{LAST}"  # the whole history, from its first day
    assert trained["model_version"].value


@pytest.mark.slow
def test_a_history_too_short_for_the_model_is_refused_naming_the_window(tmp_path):
    env = make_env(tmp_path / "home", source=f"csv:{_csv(tmp_path / 'prices.csv', FIRST, date(2015, 3, 31))}")
    run_job(env.defs, INGEST_JOB, env.instance, partition_range=("2015-01-01", "2015-03-01"))
    run_job(env.defs, FEATURES_JOB, env.instance)
    with pytest.raises(ForecastInputError, match=r"window of 75 days is too short, needs at least 105"):
        _train(env, QUICK)
