"""The served model refuses a bad history with a 400 that says what is wrong, not MLflow's
generic "unexpected error": through `mlflow.pyfunc.load_model` and over REST (`mlflow models
serve`, the persistence model: it loads without a training)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
from datetime import date

import mlflow
import polars as pl
import pytest
from mlflow.exceptions import MlflowException

from energy_platform.forecasting.errors import ForecastInputError
from energy_platform.forecasting.model import MLPForecaster
from energy_platform.forecasting.request_history import complete_days_needed
from energy_platform.serving import cannot_serve_message
from energy_platform.tracking.pyfunc_model import (
    in_memory_forecaster,
    in_memory_persistence,
    save_persistence_pyfunc,
)
from energy_platform_tests.forecasting.conftest import TINY, synthetic_prices
from energy_platform_tests.platform_env import free_port, wait_for_http

PRICES = synthetic_prices(days=120).select("ts", "price")


def _swap_two_rows(frame: pl.DataFrame, i: int) -> pl.DataFrame:
    order = list(range(frame.height))
    order[i], order[i + 1] = order[i + 1], order[i]
    return frame[order]


BAD = {
    "misordered": (_swap_two_rows(PRICES.tail(24 * 10), 30), "not in time order: row 32"),
    "duplicated": (pl.concat([PRICES.tail(24 * 10).head(31), PRICES.tail(24 * 10).slice(30)]), "appears twice"),
    "no complete day": (PRICES.tail(20), "history has no complete day of 24 prices"),
    "infinite price": (PRICES.tail(24 * 10).with_columns(  # it answered 24 NaN forecasts with a 200 (session 19)
        price=pl.when(pl.int_range(pl.len()) == 200).then(float("inf")).otherwise(pl.col("price"))), "row 201 ("),
}


@pytest.fixture(scope="module")
def persistence_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("serve") / "model"
    save_persistence_pyfunc(str(path), PRICES.tail(24 * 30), horizon_days=2, floor=0.0)
    return path


@pytest.mark.parametrize("case", sorted(BAD))
def test_loaded_pyfunc_refuses_with_invalid_parameter_value(persistence_dir, case):
    history, message = BAD[case]
    model = mlflow.pyfunc.load_model(str(persistence_dir))
    with pytest.raises(MlflowException) as refused:
        model.predict(history.to_pandas())
    assert refused.value.error_code == "INVALID_PARAMETER_VALUE"
    assert message in refused.value.message and "history rejected" in refused.value.message
    assert len(model.predict(PRICES.tail(24 * 30).to_pandas())) == 24  # the good history still answers


def test_missing_column_is_named():
    with pytest.raises(MlflowException, match=r"missing column\(s\) \['price'\]"):
        in_memory_persistence(2, 0.0).predict(PRICES.select("ts").to_pandas())


def test_forecaster_names_the_minimum_history():
    model = MLPForecaster(horizon_days=2, **TINY)
    model.fit(synthetic_prices(days=120), date(2022, 4, 20), 80)
    served = in_memory_forecaster(model)
    needed = complete_days_needed(model)
    assert needed == 6  # H = 2 and lags up to 7 days: the README's figure
    enough = PRICES.tail(24 * needed)
    assert len(served.predict(enough.to_pandas())) == 24
    with pytest.raises(MlflowException, match=rf"history too short: .*needs {needed} consecutive complete days"):
        served.predict(enough.tail(24 * (needed - 1)).to_pandas())
    gappy = enough.with_columns(pl.when(pl.int_range(pl.len()) == 50).then(None).otherwise(pl.col("price")).alias("price"))
    with pytest.raises(MlflowException, match="history has gaps: 1 missing"):
        served.predict(gappy.to_pandas())
    for corrupt in (1e6, 1e300):  # REST answered 200 with p50 up to 1.5e4 and 5.8e153 (helper F, session 19)
        broken = enough.with_columns(pl.when(pl.int_range(pl.len()) == 100).then(corrupt).otherwise(pl.col("price")).alias("price"))
        with pytest.raises(MlflowException, match=re.escape(f"price {corrupt:g} at ") + r".* spreads \(MAD\) from the training"):
            served.predict(broken.to_pandas())
    spike = enough.with_columns(pl.when(pl.int_range(pl.len()) == 100).then(pl.col("price") * 20).otherwise(pl.col("price")))
    assert len(served.predict(spike.to_pandas())) == 24  # a real spike (20x) still forecasts


def test_rest_endpoint_answers_400_with_the_reason(persistence_dir, tmp_path):
    port = free_port()
    mlflow_bin = os.path.join(os.path.dirname(sys.executable), "mlflow")
    log = tmp_path / "serve.log"
    with open(log, "w") as out:
        server = subprocess.Popen(
            [mlflow_bin, "models", "serve", "-m", str(persistence_dir), "--env-manager", "local",
             "-h", "127.0.0.1", "-p", str(port)],
            env={**os.environ, "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")},
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/ping", server, log, 120)
        for case, (history, message) in BAD.items():
            rows = history.select(pl.col("ts").dt.strftime("%Y-%m-%dT%H:%M:%S"), "price")
            body = json.dumps({"dataframe_split": {"columns": rows.columns, "data": rows.rows()}}).encode()
            request = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", data=body,
                                             headers={"Content-Type": "application/json"})
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(request, timeout=60)
            assert refused.value.code == 400, case
            answer = json.loads(refused.value.read())
            assert answer["error_code"] == "INVALID_PARAMETER_VALUE", (case, answer)
            assert message in answer["message"] and "unexpected error" not in answer["message"], case
    finally:
        os.killpg(server.pid, 9)
        server.wait()


def test_a_long_history_needs_complete_prices_only_where_the_lags_read_them():
    """A model reading ENSO asks for 200 days of rows; only its last 6 need 24 prices. An older day
    without prices (an outage, or the data not begun yet) goes out as null-price rows, not a refusal
    that would block the gate and the artifact check; a gap in the last 6 days is still refused."""
    from datetime import timedelta

    from energy_platform.serving import IncompleteInputsError, forecast_day, history_window

    frame = synthetic_prices(days=120)
    model = MLPForecaster(horizon_days=2, **TINY)
    model.fit(frame, date(2022, 4, 20), 100)
    served, need = in_memory_forecaster(model), complete_days_needed(model)
    target = date(2022, 4, 30)
    cutoff = target - timedelta(days=2)
    outage = frame.filter(pl.col("date") != date(2022, 3, 1))  # 58 days before the target
    with pytest.raises(IncompleteInputsError, match=r"1 day\(s\) of history without 24 prices: 2022-03-01$"):
        history_window(outage, target, 2, 100)  # every day required (the old behaviour): refused
    window = history_window(outage, target, 2, 200, need)
    assert window["ts"].is_sorted() and window.height == ((cutoff - date(2022, 1, 1)).days + 1) * 24  # from the first stored day
    assert window.filter(pl.col("date") == date(2022, 3, 1))["price"].null_count() == 24  # the outage day, as null prices
    day = forecast_day(served, outage, target, 2, 200)
    assert day.height == 24 and day["p50"].is_finite().all()
    whole = forecast_day(served, frame, target, 2, 200)["p50"].to_list()
    assert day["p50"].to_list() == whole  # the old day is not a price lag: the same forecast
    recent = frame.filter(pl.col("date") != cutoff - timedelta(days=need - 1))
    with pytest.raises(IncompleteInputsError, match=str(cutoff - timedelta(days=need - 1))):
        forecast_day(served, recent, target, 2, 200)


def test_a_refused_day_names_a_feature_store_behind_the_prices():
    """Session 18's helper C: a day stored with 23 hours stops raw_prices' blocking check, the
    features stay behind, and the predictions failure said only "materialize features"."""
    exc = ForecastInputError("no features.daily row for target day 2024-12-31")
    behind = cannot_serve_message(exc, date(2024, 12, 30), date(2024, 12, 31), date(2024, 12, 30), date(2024, 12, 29))
    assert behind.startswith("cannot forecast 2024-12-30..2024-12-31: no features.daily row for target day 2024-12-31")
    assert "features.daily ends at target day 2024-12-29, behind the prices stored to 2024-12-30" in behind
    assert "blocking check of raw_prices" in behind
    level = cannot_serve_message(exc, date(2024, 12, 30), date(2024, 12, 31), date(2024, 12, 30), date(2024, 12, 31))
    assert level == "cannot forecast 2024-12-30..2024-12-31: no features.daily row for target day 2024-12-31"
