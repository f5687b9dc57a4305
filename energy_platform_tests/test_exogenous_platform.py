"""A price file's exogenous series (load, wind forecasts) through the platform: stored, in the
feature store, read by the model and its requests when the file carries the day ahead of its
prices, left out with a reason when it does not."""

from datetime import date, timedelta

import polars as pl
import pytest

from energy_platform.defs import FEATURES_JOB, INGEST_JOB, PREDICT_JOB, TRAIN_JOB
from energy_platform.defs.ingestion import DAYS_AHEAD, EXOGENOUS_STORED
from energy_platform.defs.lifecycle import EXOGENOUS
from energy_platform.orchestration import run_job
from energy_platform.serving import forecast_day
from energy_platform.sources import SampleSource
from energy_platform.sources.csv_file import CsvFormatError, CsvSource
from energy_platform.tracking.registry import ModelRegistry
from energy_platform.tracking.training import choose_exogenous
from energy_platform.warehouse.db import connect
from energy_platform.warehouse.prices import read_prices
from energy_platform_tests.platform_env import make_env

FIRST, LAST = date(2015, 1, 1), date(2015, 9, 30)
AHEAD = LAST + timedelta(days=1)
QUICK = {"backtest_weeks": 2, "recalibrate_every": 7, "max_epochs": 3, "n_members": 1, "lear_weight": 0.0}


def _frame(first: date, last: date, ahead_days: int) -> pl.DataFrame:
    """The sample's prices of [first, last] and a made-up load forecast that follows them (known a
    day ahead), plus `ahead_days` days after `last` with the load forecast and no price."""
    prices = SampleSource().frame.filter(pl.col("date").is_between(first, last + timedelta(days=ahead_days))).sort("ts")
    return prices.select(
        pl.col("ts").dt.strftime("%Y-%m-%d %H:%M:%S").alias("Date"),
        pl.when(pl.col("date") <= last).then(pl.col("price")).alias("Price"),
        (pl.col("price") * 40 + 20_000 + pl.col("hour") * 100).round(1).alias("Grid load forecast"),
    )


def test_a_file_may_end_with_days_ahead_of_its_prices(tmp_path):
    path = tmp_path / "prices.csv"
    _frame(date(2015, 1, 1), date(2015, 1, 31), 2).write_csv(path)
    source = CsvSource(path)
    assert (source.last_date(), source.data_end()) == (date(2015, 1, 31), date(2015, 2, 2))
    ahead = source.hourly_prices(date(2015, 2, 1), date(2015, 2, 2))
    assert ahead.height == 48 and ahead["price"].null_count() == 48 and ahead["grid_load_forecast"].null_count() == 0

    # an export cut mid-day: the day's priced hours are a part-day, left out; the day is a day ahead
    frame = _frame(date(2015, 1, 1), date(2015, 1, 31), 1)
    frame.with_columns(pl.when(pl.col("Date") >= "2015-01-31 12:00:00").then(None).otherwise(pl.col("Price")).alias("Price")
                       ).write_csv(path)
    cut = CsvSource(path)
    assert (cut.last_date(), cut.data_end()) == (date(2015, 1, 30), date(2015, 2, 1))
    assert cut.frame.filter(pl.col("date") == date(2015, 1, 31))["price"].null_count() == 24
    assert "the part-day 2015-01-31 is left out of the prices (12 priced hours)" in cut.notes[0]
    # a row with neither price nor exogenous value is refused
    frame.with_columns(pl.when(pl.col("Date") == "2015-02-01 05:00:00").then(None).otherwise(pl.col("Grid load forecast"))
                       .alias("Grid load forecast")).write_csv(path)
    with pytest.raises(CsvFormatError, match=r"line 751: column 'price': empty price"):
        CsvSource(path).first_date()
    # a prices-only file still needs every price
    frame.select("Date", "Price").write_csv(path)
    with pytest.raises(CsvFormatError, match="empty price"):
        CsvSource(path).first_date()


def test_a_series_is_read_only_when_known_on_every_day_to_the_day_ahead():
    frame = _frame(date(2015, 1, 1), date(2015, 3, 31), 1).with_columns(
        pl.col("Date").str.strptime(pl.Datetime("us"), "%Y-%m-%d %H:%M:%S").alias("ts")
    ).select(pl.col("ts"), pl.col("ts").dt.date().alias("date"), pl.col("ts").dt.hour().alias("hour"),
             pl.col("Price").alias("price"), pl.col("Grid load forecast").alias("load"),
             pl.when(pl.col("ts").dt.date() != date(2015, 2, 10)).then(pl.col("Grid load forecast")).alias("wind"))
    choice = choose_exogenous(frame, date(2015, 1, 1), date(2015, 3, 31))
    assert choice.columns == ["load"]
    assert "wind (unknown on 1 day(s) of 2015-01-01..2015-04-01, first 2015-02-10)" in choice.note
    no_ahead = choose_exogenous(frame.filter(pl.col("date") <= date(2015, 3, 31)), date(2015, 1, 1), date(2015, 3, 31))
    assert no_ahead.columns == [] and "load (no day ahead of the prices: 2015-04-01 unknown" in no_ahead.note
    assert choose_exogenous(frame.select("ts", "date", "hour", "price"), date(2015, 1, 1), date(2015, 3, 31)).note == ""


@pytest.mark.slow
def test_the_day_ahead_s_forecasts_reach_the_model_that_forecasts_it(tmp_path):
    """H = 1: the forecast of 10-01 reads the load forecast of 10-01, stored from the file's day
    ahead (no price stored for it); the registered model's request carries it, never a price of
    that day, and the forecast moves when it does."""
    path = tmp_path / "prices.csv"
    _frame(FIRST, LAST, 1).write_csv(path)
    env = make_env(tmp_path / "home", source=f"csv:{path}", ENERGY_PLATFORM_HORIZON_DAYS="1")
    assert env.defs.resolve_assets_def("raw_prices").partitions_def.get_partition_keys()[-1] == "2015-10-01"
    assert env.defs.resolve_assets_def("predictions").partitions_def.get_partition_keys()[-1] == str(AHEAD)
    result = run_job(env.defs, INGEST_JOB, env.instance, partition_range=("2015-01-01", "2015-10-01"))
    stored = result.asset_materializations_for_node("raw_prices")[-1].metadata
    assert (stored[EXOGENOUS_STORED].value, stored[DAYS_AHEAD].value) == ("grid_load_forecast", str(AHEAD))
    with connect(env.warehouse, read_only=True) as conn:
        prices, last_price = conn.execute("SELECT count(*), max(date) FROM raw.prices_hourly").fetchone()
        exog, last_exog = conn.execute("SELECT count(*), max(date) FROM raw.exogenous_hourly").fetchone()
    assert (prices, last_price) == (273 * 24, LAST) and (exog, last_exog) == (274 * 24, AHEAD)
    # a second run stores nothing twice, and asks the day ahead again (it changes until its prices come)
    again = run_job(env.defs, INGEST_JOB, env.instance, partition_range=("2015-10-01", "2015-10-01"))
    assert again.asset_materializations_for_node("raw_prices")[-1].metadata[DAYS_AHEAD].value == str(AHEAD)
    with connect(env.warehouse, read_only=True) as conn:
        assert conn.execute("SELECT count(*) FROM raw.exogenous_hourly").fetchone()[0] == 274 * 24

    run_job(env.defs, FEATURES_JOB, env.instance)
    with connect(env.warehouse, read_only=True) as conn:
        row = conn.execute("SELECT grid_load_forecast_lag0_h05, price_lag1_h05 FROM features.daily WHERE target_date = ?",
                           [AHEAD]).fetchone()
    assert row[0] is not None and row[1] is not None  # tomorrow's row knows tomorrow's load forecast

    trained = run_job(env.defs, TRAIN_JOB, env.instance, run_config={"ops": {"forecaster_model": {"config": QUICK}}})
    meta = trained.asset_materializations_for_node("forecaster_model")[-1].metadata
    assert meta[EXOGENOUS].value == "read: grid_load_forecast"
    gate = trained.asset_materializations_for_node("champion_model")[-1].metadata
    assert "fails to forecast" not in gate["reason"].value  # the gate ran the artifact with the exogenous request
    registry = ModelRegistry(env.settings.mlflow_tracking_uri, env.settings.mlflow_artifacts)
    version = registry.card(meta["model_version"].value)
    assert version.tags["exogenous"] == "grid_load_forecast"
    model = registry.load(version)
    history = read_prices(env.warehouse, exogenous=True)
    served = forecast_day(model, history, AHEAD, 1, version.history_days)
    assert served.height == 24 and served["target_date"].unique().to_list() == [AHEAD]
    moved = forecast_day(model, history.with_columns(
        pl.when(pl.col("date") == AHEAD).then(pl.col("grid_load_forecast") * 1.5).otherwise(pl.col("grid_load_forecast"))
        .alias("grid_load_forecast")), AHEAD, 1, version.history_days)
    assert (moved["p50"] - served["p50"]).abs().max() > 1e-3  # the day ahead's load forecast is read

    # served as champion, the predictions asset forecasts tomorrow from its features.daily row
    registry.tag_version(version.version, {"gate_decision": "promoted"})  # as the gate would (a champion no gate approved is not served)
    registry.promote(version.version)
    run_job(env.defs, PREDICT_JOB, env.instance, partition_range=(str(AHEAD), str(AHEAD)))
    with connect(env.warehouse, read_only=True) as conn:
        stored = conn.sql("SELECT hour, p50, model_version FROM ml.predictions WHERE target_date = ? ORDER BY hour",
                          params=[AHEAD]).pl()
    assert stored["model_version"].unique().to_list() == [version.version]
    assert stored["p50"].to_list() == pytest.approx(served["p50"].to_list(), rel=1e-6)  # the artifact's answer

    # a morning the file carries no day ahead: the champion cannot forecast it, persistence serves
    # it, named (the run failed before, and the desk had no forecast)
    with connect(env.warehouse) as conn:
        conn.execute("DELETE FROM raw.exogenous_hourly WHERE date = ?", [AHEAD])
    run_job(env.defs, FEATURES_JOB, env.instance)
    result = run_job(env.defs, PREDICT_JOB, env.instance, partition_range=(str(AHEAD - timedelta(days=1)), str(AHEAD)))
    assert result.asset_materializations_for_node("predictions")[-1].metadata[
        "served_by_baseline (no day ahead of the prices)"].value == str(AHEAD)
    with connect(env.warehouse, read_only=True) as conn:
        served_by = dict(conn.execute("SELECT target_date, any_value(model_version) FROM ml.predictions "
                                      "WHERE created_at = (SELECT max(created_at) FROM ml.predictions) GROUP BY 1").fetchall())
    baseline = registry.baseline(1)
    assert served_by == {AHEAD - timedelta(days=1): version.version, AHEAD: baseline.version}


def test_a_missing_day_ahead_is_named_as_such():
    """A champion reading a series, on a morning the file carries no day ahead: the refusal names
    the series and the day, not 'days without all 24 prices'."""
    from energy_platform.forecasting.base import prediction_features_from_frame
    from energy_platform.forecasting.errors import ForecastInputError
    from energy_platform.forecasting.features import FeatureSpec, build_feature_frame

    frame = _frame(date(2015, 1, 1), date(2015, 2, 28), 0).select(
        pl.col("Date").str.strptime(pl.Datetime("us"), "%Y-%m-%d %H:%M:%S").alias("ts"),
        pl.col("Price").alias("price"), pl.col("Grid load forecast").alias("load"))
    rows = build_feature_frame(frame, [date(2015, 3, 1)], 1)
    with pytest.raises(ForecastInputError, match=r"load unknown on 2015-03-01 \(a file's day ahead of its prices carries it\)"):
        prediction_features_from_frame(rows, FeatureSpec(horizon_days=1), date(2015, 3, 1), ["load"])
