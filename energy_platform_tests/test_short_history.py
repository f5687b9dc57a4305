"""A CSV market's history as the platform sees it. With less history than the training window (a
new market, a CSV of months of prices) it trains on the history there is, as its recent backtest
already did, instead of failing on feature rows from before the data began; a file that starts
before 2015 (NP's and PJM's start in 2013) is ingested from its first month; a file that grows
between runs adds its new days."""

import logging
from datetime import date

import polars as pl
import pytest

from energy_platform.defs import FEATURES_JOB, INGEST_JOB, PREDICT_JOB, TRAIN_JOB
from energy_platform.defs.ingestion import DAYS_AHEAD, EXOGENOUS_STORED, LEFT_OUT
from energy_platform.forecasting.errors import ForecastInputError
from energy_platform.orchestration import run_job
from energy_platform.sources import SampleSource
from energy_platform.warehouse.db import connect
from energy_platform_tests.platform_env import make_env

FIRST, LAST = date(2015, 1, 1), date(2015, 9, 30)  # 273 days, far less than the default 1456-day window
QUICK = {"backtest_weeks": 2, "recalibrate_every": 7, "max_epochs": 3, "n_members": 1, "lear_weight": 0.0}


def _csv(path, first: date, last: date, shift_days: int = 0):
    """The sample's prices of [first, last], their timestamps moved by `shift_days`."""
    prices = SampleSource().frame.filter(pl.col("ts").dt.date().is_between(first, last)).sort("ts")
    ts = (pl.col("ts") + pl.duration(days=shift_days)).dt.strftime("%Y-%m-%d %H:%M:%S")
    prices.select(ts.alias("Date"), pl.col("price").alias("Price")).write_csv(path)
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
def test_a_day_ahead_market_trains_and_serves_tomorrow_from_today(tmp_path):
    """ENERGY_PLATFORM_HORIZON_DAYS=1 (NP, PJM and most day-ahead markets): the feature rows, the
    model and the served forecast are one day ahead, end to end (every other platform test is H = 2)."""
    env = make_env(tmp_path / "home", source=f"csv:{_csv(tmp_path / 'prices.csv', FIRST, LAST)}",
                   ENERGY_PLATFORM_HORIZON_DAYS="1")
    days = env.defs.resolve_assets_def("predictions").partitions_def.get_partition_keys()
    assert days[-1] == "2015-10-01"  # the last day (09-30) + 1
    run_job(env.defs, INGEST_JOB, env.instance, partition_range=("2015-01-01", "2015-09-01"))
    run_job(env.defs, FEATURES_JOB, env.instance)
    trained = _train(env, QUICK).asset_materializations_for_node("forecaster_model")[-1].metadata
    assert trained["model_version"].value
    run_job(env.defs, PREDICT_JOB, env.instance, partition_range=(days[-2], days[-1]))
    with connect(env.settings.warehouse_path, read_only=True) as conn:
        rows = conn.execute("SELECT target_date, feature_cutoff, count(*), bool_and(p10 <= p50 AND p50 <= p90) "
                            "FROM ml.predictions GROUP BY ALL ORDER BY 1").fetchall()
    assert rows == [(date(2015, 9, 30), date(2015, 9, 29), 24, True), (date(2015, 10, 1), date(2015, 9, 30), 24, True)], rows


@pytest.mark.slow
def test_a_history_too_short_for_the_model_is_refused_naming_the_days_it_needs(tmp_path):
    """It named the backtest's first window (75 of 105 days): a file grown to 105 days was refused again (helper G)."""
    env = make_env(tmp_path / "home", source=f"csv:{_csv(tmp_path / 'prices.csv', FIRST, date(2015, 3, 31))}")
    run_job(env.defs, INGEST_JOB, env.instance, partition_range=("2015-01-01", "2015-03-01"))
    run_job(env.defs, FEATURES_JOB, env.instance)
    with pytest.raises(ForecastInputError, match=r"has 90 days; training needs at least 120 \(105 for the first fit of its 14-day"):
        _train(env, QUICK)
    # a window asked for shorter than a fit needs is named as such, not as a short history (helper S, session 21)
    with pytest.raises(ForecastInputError, match=r"window_days 3 is shorter than the 105 days a fit of this model needs"):
        _train(env, {**QUICK, "window_days": 3})


def test_a_csv_market_is_ingested_from_its_first_month_whenever_it_starts(tmp_path):
    """Month partitions follow the file: one from 2014-10 holds its first quarter (they began
    at 2015-01 whatever the file, so a file's earlier years were never read); one from 2016-06
    has no empty months before it."""
    early = _csv(tmp_path / "early.csv", FIRST, date(2015, 3, 31), shift_days=-92)  # 2014-10-01..2014-12-29
    env = make_env(tmp_path / "early", source=f"csv:{early}")
    keys = env.defs.resolve_assets_def("raw_prices").partitions_def.get_partition_keys()
    assert keys[0] == "2014-10-01" and keys[-1] == "2014-12-01", keys
    run_job(env.defs, INGEST_JOB, env.instance, partition_range=(keys[0], keys[-1]))
    with connect(env.settings.warehouse_path, read_only=True) as conn:
        first, last, hours = conn.execute("SELECT min(date), max(date), count(*) FROM raw.prices_hourly").fetchall()[0]
    assert (first, last, hours) == (date(2014, 10, 1), date(2014, 12, 29), 90 * 24)
    days = {name: env.defs.resolve_assets_def(name).partitions_def.get_partition_keys() for name in ("predictions", "forecast_accuracy")}
    assert days["predictions"][0] == days["forecast_accuracy"][0] == "2014-11-01", days  # a month of history first
    late = _csv(tmp_path / "late.csv", date(2016, 6, 10), date(2016, 8, 31))
    defs = make_env(tmp_path / "late", source=f"csv:{late}").defs
    keys = defs.resolve_assets_def("raw_prices").partitions_def.get_partition_keys()
    assert keys == ["2016-06-01", "2016-07-01", "2016-08-01"]
    # no day before the file's data could forecast it (they began on 2015-02-01 for any file)
    days = defs.resolve_assets_def("predictions").partitions_def.get_partition_keys()
    assert days[0] == "2016-07-01" and days[-1] == "2016-09-02", (days[0], days[-1])
    assert defs.resolve_assets_def("forecast_accuracy").partitions_def.get_partition_keys()[0] == "2016-07-01"


@pytest.mark.slow
def test_a_csv_market_file_that_grows_between_runs_adds_its_new_days_and_keeps_the_stored_ones(tmp_path):
    """Later periods of a file market: the owner appends days to the same file and runs again. The
    definitions' partitions reach the new months, the part-filled month is completed, only the
    days not stored are read (stored rows keep their ingestion time) and nothing is duplicated."""
    path = tmp_path / "prices.csv"
    env = make_env(tmp_path / "home", source=f"csv:{_csv(path, FIRST, date(2015, 2, 14))}")
    assert env.defs.resolve_assets_def("raw_prices").partitions_def.get_partition_keys() == ["2015-01-01", "2015-02-01"]
    run_job(env.defs, INGEST_JOB, env.instance, partition_range=("2015-01-01", "2015-02-01"))
    run_job(env.defs, FEATURES_JOB, env.instance)

    def stored():
        with connect(env.settings.warehouse_path, read_only=True) as conn:
            return conn.execute("SELECT count(*), count(DISTINCT ts), max(date), max(ingested_at) FILTER (WHERE date <= DATE '2015-02-14'), "
                                "(SELECT max(target_date) FROM features.daily) FROM raw.prices_hourly").fetchall()[0]

    hours, distinct, last, first_run_at, last_target = stored()
    assert (hours, distinct, last, last_target) == (45 * 24, 45 * 24, date(2015, 2, 14), date(2015, 2, 16))

    _csv(path, FIRST, date(2015, 3, 31))  # the same file, six more weeks
    env = make_env(tmp_path / "home", source=f"csv:{path}")  # the next run loads the definitions again
    keys = env.defs.resolve_assets_def("raw_prices").partitions_def.get_partition_keys()
    assert keys == ["2015-01-01", "2015-02-01", "2015-03-01"]
    assert env.defs.resolve_assets_def("predictions").partitions_def.get_partition_keys()[-1] == "2015-04-02"
    run_job(env.defs, INGEST_JOB, env.instance, partition_range=("2015-01-01", "2015-03-01"))
    run_job(env.defs, FEATURES_JOB, env.instance)
    hours, distinct, last, kept_at, last_target = stored()
    assert (hours, distinct, last, last_target) == (90 * 24, 90 * 24, date(2015, 3, 31), date(2015, 4, 2))
    assert kept_at == first_run_at  # the stored days were not read again


def test_a_csv_market_s_exogenous_columns_are_stored_and_named(tmp_path):
    """A file's load or wind forecasts go to raw.exogenous_hourly, named in the run with its days
    ahead of the prices (none here: a model will not read them, test_exogenous_platform.py)."""
    path = _csv(tmp_path / "prices.csv", FIRST, date(2015, 1, 31))
    pl.read_csv(path).with_columns((pl.col("Price") * 0 + 41000).alias("Grid load forecast")).write_csv(path)
    env = make_env(tmp_path / "home", source=f"csv:{path}")
    result = run_job(env.defs, INGEST_JOB, env.instance, partition_range=("2015-01-01", "2015-01-01"))
    metadata = result.asset_materializations_for_node("raw_prices")[-1].metadata
    assert metadata[EXOGENOUS_STORED].value == "grid_load_forecast"  # as the reader names it
    assert metadata[DAYS_AHEAD].value == "none"
    with connect(env.settings.warehouse_path, read_only=True) as conn:
        assert conn.execute("SELECT count(*), min(value), max(value) FROM raw.exogenous_hourly").fetchone() == (31 * 24, 41000, 41000)
    plain = make_env(tmp_path / "plain", source=f"csv:{_csv(tmp_path / 'plain.csv', FIRST, date(2015, 1, 31))}")
    result = run_job(plain.defs, INGEST_JOB, plain.instance, partition_range=("2015-01-01", "2015-01-01"))
    assert EXOGENOUS_STORED not in result.asset_materializations_for_node("raw_prices")[-1].metadata


def test_a_csv_market_s_part_day_is_named_in_the_ingestion_run(tmp_path):
    """An export cut mid-day: the part-day is left out (a stored part-day blocks ingestion), and the
    run says so in its log and metadata, not only in the process's Python log."""
    path = _csv(tmp_path / "prices.csv", FIRST, date(2015, 2, 1))
    pl.read_csv(path).head(31 * 24 + 10).write_csv(path)  # 2015-02-01 up to 09:00
    env = make_env(tmp_path / "home", source=f"csv:{path}")
    result = run_job(env.defs, INGEST_JOB, env.instance, partition_range=("2015-01-01", "2015-01-01"))
    left_out = result.asset_materializations_for_node("raw_prices")[-1].metadata[LEFT_OUT].value
    assert "left out (2015-01-01 00:00:00..2015-01-31 23:00:00 read of 2015-01-01 00:00:00..2015-02-01 09:00:00)" in left_out
    warnings = [e.user_message for e in env.instance.all_logs(result.run_id) if e.level == logging.WARNING]
    assert any("part-days at its ends are left out" in m for m in warnings), warnings
    with connect(env.warehouse, read_only=True) as conn:
        assert conn.execute("SELECT count(*), max(date) FROM raw.prices_hourly").fetchone() == (31 * 24, date(2015, 1, 31))


def test_a_file_shorter_than_the_stored_prices_or_only_their_newest_days_is_named(tmp_path):
    """Helper M (session 20): a home pointed at an older, shorter export crashed the demo in
    Dagster's own partition check (a traceback); a rolling export of the newest days was called
    "history too short" while the warehouse held a year."""
    from types import SimpleNamespace

    from energy_platform.demo import _check_source_covers
    from energy_platform.sources.base import SourceError
    from energy_platform.warehouse.prices import replace_prices

    path = tmp_path / "w.duckdb"
    start, end = date(2022, 9, 1), date(2023, 7, 25)
    replace_prices(path, SampleSource().hourly_prices(start, end), start, end, "sample")
    settings = SimpleNamespace(warehouse_path=path, horizon_days=2, source="csv:/exports/prices.csv")
    days = lambda first, last: [str(d) for d in pl.date_range(first, last, eager=True).to_list()]  # noqa: E731
    _check_source_covers(settings, end, days(date(2022, 10, 1), date(2023, 7, 27)))  # the file covers the warehouse
    with pytest.raises(SourceError, match=r"holds prices to 2023-07-25, after the last day of 'csv:/exports/prices.csv' \(2023-07-10\)"):
        _check_source_covers(settings, end, days(date(2022, 10, 1), date(2023, 7, 12)))
    with pytest.raises(SourceError, match=r"holds only its newest days .* prices 2022-09-01\.\.2023-07-25"):
        _check_source_covers(settings, end, days(date(2023, 8, 1), date(2023, 8, 2)))
