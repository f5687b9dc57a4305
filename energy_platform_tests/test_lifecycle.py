"""The model lifecycle on real parts: DuckDB, MLflow on SQLite, Dagster runs, a served model."""

import json
import os
import subprocess
import sys
import urllib.request
from datetime import date, timedelta

import mlflow
import polars as pl
import pytest
from mlflow import MlflowClient

from energy_platform.defs import FEATURES_JOB, INGEST_JOB, PREDICT_JOB, TRAIN_JOB
from energy_platform.orchestration import run_job
from energy_platform.serving import request_frame
from energy_platform.tracking import EXPERIMENT_NAME, MODEL_NAME, registry
from energy_platform.warehouse.db import connect
from energy_platform.warehouse.features import read_operating_data
from energy_platform.warehouse.predictions import read_predictions
from energy_platform.warehouse.prices import read_prices
from energy_platform_tests.platform_env import free_port, make_env, wait_for_http

TINY = {"window_days": 330, "backtest_weeks": 3, "recalibrate_every": 7, "max_epochs": 25, "n_members": 1}
# Honest but useless: barely moved from init, no blend (it would fall back on naive_d), no LEAR in its median.
UNTRAINED = {**TINY, "max_epochs": 1, "learning_rate": 1e-7, "blend_naive": False, "lear_weight": 0.0}


def _train(env, config):
    result = run_job(env.defs, TRAIN_JOB, env.instance, run_config={"ops": {"forecaster_model": {"config": config}}})
    meta = lambda key: {k: v.value for k, v in result.asset_materializations_for_node(key)[-1].metadata.items()}  # noqa: E731
    return meta("forecaster_model"), meta("champion_model")


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    home = tmp_path_factory.mktemp("lifecycle")
    env = make_env(home)
    _ingest(env, ("2024-01-01", "2024-11-01"), as_of="2024-11-30")
    return env


def _ingest(env, months: tuple[str, str], as_of: str | None = None) -> None:
    """Prices as the platform had them on the morning after `as_of`, then the feature store."""
    source = {"resources": {"source": {"config": {"spec": "sample", "as_of": as_of}}}} if as_of else None
    run_job(env.defs, INGEST_JOB, env.instance, partition_range=months, run_config=source)
    run_job(env.defs, FEATURES_JOB, env.instance)


@pytest.fixture(scope="module")
def client(env):
    return MlflowClient(tracking_uri=env.settings.mlflow_tracking_uri, registry_uri=env.settings.mlflow_tracking_uri)


def test_features_store_one_point_in_time_row_per_target_day(env):
    _ingest(env, ("2024-12-01", "2024-12-01"))
    with connect(env.warehouse, read_only=True) as conn:
        n, first, last, bad = conn.execute(
            "SELECT count(*), min(target_date), max(target_date), count(*) FILTER (WHERE cutoff_date <> target_date - 2) FROM features.daily"
        ).fetchall()[0]
    assert (first, last, bad) == (date(2024, 1, 8), date(2025, 1, 2), 0)  # from the first day whose 7 days of lags exist
    assert n == (last - first).days + 1
    result = run_job(env.defs, FEATURES_JOB, env.instance)  # incremental: only the recent days again
    assert result.asset_materializations_for_node("features")[-1].metadata["dagster/row_count"].value == 15
    with connect(env.warehouse) as conn:  # back to the state of the morning of 2024-12-01
        conn.execute("DELETE FROM raw.prices_hourly WHERE date > DATE '2024-11-30'")
        conn.execute("DELETE FROM features.daily WHERE target_date > DATE '2024-12-02'")


def test_a_first_deployment_serves_the_persistence_baseline(env, client):
    result = run_job(env.defs, PREDICT_JOB, env.instance, partition_key="2024-12-02")
    meta = result.asset_materializations_for_node("predictions")[-1].metadata
    assert meta["model_kind"].value == "baseline" and "baseline" in meta["served_by"].value
    champion = registry.alias_version(client, registry.CHAMPION)
    assert champion.tags["kind"] == "baseline" and champion.tags["metric.backtest_rmae"]
    assert champion.tags["dagster_run_url"].endswith(f"/runs/{champion.tags['dagster_run_id']}")  # back to the run that registered it
    rows = read_predictions(env.warehouse, date(2024, 12, 2))
    assert rows.height == 24 and rows["model_version"].unique().to_list() == [str(champion.version)]
    last = read_prices(env.warehouse, date(2024, 11, 30), date(2024, 11, 30)).sort("hour")["price"].to_list()
    assert rows.sort("hour")["forecast"].to_list() == pytest.approx(last)  # persistence: the latest known day
    assert rows.filter((pl.col("p10") > pl.col("forecast")) | (pl.col("forecast") > pl.col("p90"))).is_empty()
    with connect(env.warehouse, read_only=True) as conn:
        kind, reason = conn.execute("SELECT kind, gate_reason FROM ml.model_versions WHERE aliases LIKE '%champion%'").fetchall()[0]
    assert kind == "baseline" and "no champion" in reason


def test_a_useless_first_model_is_refused_and_the_baseline_keeps_serving(env, client):
    baseline = str(registry.alias_version(client, registry.CHAMPION).version)
    _, gate = _train(env, UNTRAINED)  # data to 2024-11-30
    assert gate["decision"] == "refused", gate["reason"]
    assert "persistence" in gate["reason"] or "weekly naive" in gate["reason"]
    assert gate["champion_version"] == baseline and gate["champion_kind"] == "baseline"


def test_a_better_model_replaces_the_baseline(env, client):
    baseline = str(registry.alias_version(client, registry.CHAMPION).version)
    _ingest(env, ("2024-12-01", "2024-12-01"), as_of="2024-12-15")
    trained, gate = _train(env, TINY)  # data to 2024-12-15
    assert gate["decision"] == "promoted", gate["reason"]
    assert trained["operating_groups"] == "none"  # the default's groups, known on < 365 days of this window: prices alone
    assert "hydrology: known on " in trained["operating_groups_left_out"] and "(needs 365)" in trained["operating_groups_left_out"]
    assert gate["challenger_rmae"] < gate["persistence_rmae"] and gate["challenger_rmae"] < 1.0
    assert gate["compared_days"] >= 7
    assert str(registry.alias_version(client, registry.PREVIOUS).version) == baseline
    run = client.get_run(trained["mlflow_run_id"])
    assert run.info.status == "FINISHED"
    for tag in ("dagster_run_id", "data_fingerprint", "git_commit", "code_version", "gate_decision"):
        assert run.data.tags.get(tag), tag
    assert run.data.tags["data_fingerprint"] == trained["data_fingerprint"]
    assert run.data.tags["data_end"] == "2024-12-15"
    assert run.data.tags["operating_groups_left_out"] == trained["operating_groups_left_out"]  # why, beside what it read
    assert run.data.tags["dagster_run_url"].endswith(f"/runs/{run.data.tags['dagster_run_id']}")  # back to the Dagster run
    assert {"backtest_rmae", "backtest_pinball", "backtest_coverage_80", "val_pinball_scaled", "blend_weight"} <= set(run.data.metrics)
    assert len(client.get_metric_history(run.info.run_id, "val_pinball")) >= 2  # per-epoch losses
    with connect(env.warehouse, read_only=True) as conn:
        rows = conn.execute("SELECT version, gate_decision, kind, dagster_run_id, mlflow_run_id, git_commit, data_fingerprint "
                            "FROM ml.model_versions").fetchall()
    by_version = {r[0]: r for r in rows}
    assert by_version[trained["model_version"]][1] == "promoted"
    for r in rows:  # lineage is complete on every version, the baseline included
        assert all(r[3:]), r
        assert env.instance.get_run_by_id(r[3]) is not None


def test_a_worse_challenger_is_refused_on_fresh_days(env, client):
    champion = str(registry.alias_version(client, registry.CHAMPION).version)
    _ingest(env, ("2024-12-01", "2024-12-01"))  # data to 2024-12-31
    _, gate = _train(env, UNTRAINED)
    assert gate["decision"].startswith("refused"), gate["reason"]
    assert str(registry.alias_version(client, registry.CHAMPION).version) == champion


def test_no_fresh_days_means_no_promotion(env, client):
    aliases = {a: str(registry.alias_version(client, a).version) for a in (registry.CHAMPION, registry.PREVIOUS)}
    first, _ = _train(env, {**TINY, "seed": 3, "lear_weight": 0.0})  # the gate rule, not the model, is under test
    client.set_registered_model_alias(MODEL_NAME, registry.CHAMPION, first["model_version"])
    try:
        _, gate = _train(env, {**TINY, "seed": 4, "lear_weight": 0.0})  # the same data as that champion's
    finally:  # whatever the first training's gate did (it may beat the champion on the days after its data)
        for alias, version in aliases.items():
            client.set_registered_model_alias(MODEL_NAME, alias, version)
    assert gate["decision"] == "refused" and gate["compared_days"] == 0, gate["reason"]
    assert "only 0 day(s)" in gate["reason"] or "persistence" in gate["reason"]


def test_prediction_partitions_are_idempotent_and_traceable(env, client):
    for _ in range(2):
        run_job(env.defs, PREDICT_JOB, env.instance, partition_range=("2024-12-30", "2025-01-02"))
    rows = read_predictions(env.warehouse).filter(pl.col("target_date") >= date(2024, 12, 30))
    assert rows.height == 4 * 24
    assert rows.filter((pl.col("p10") > pl.col("p50")) | (pl.col("p50") > pl.col("p90"))).is_empty()
    row = rows.filter(pl.col("target_date") == date(2025, 1, 2)).row(0, named=True)
    assert row["feature_cutoff"] == date(2024, 12, 31)
    version = client.get_model_version(MODEL_NAME, row["model_version"])
    assert version.run_id == row["mlflow_run_id"]
    assert client.get_run(row["mlflow_run_id"]).data.tags["data_fingerprint"]
    assert env.instance.get_run_by_id(row["dagster_run_id"]) is not None


def test_a_new_champion_adds_its_forecasts_beside_the_old_ones(env, client):
    before = str(registry.alias_version(client, registry.CHAMPION).version)
    previous = str(registry.alias_version(client, registry.PREVIOUS).version)
    client.set_registered_model_alias(MODEL_NAME, registry.CHAMPION, previous)
    try:
        run_job(env.defs, PREDICT_JOB, env.instance, partition_key="2025-01-02")
    finally:
        client.set_registered_model_alias(MODEL_NAME, registry.CHAMPION, before)
    versions = sorted(read_predictions(env.warehouse, date(2025, 1, 2))["model_version"].unique().to_list())
    assert versions == sorted([before, previous])  # every version's forecast is kept


def test_incomplete_history_fails_naming_the_days(env):
    with connect(env.warehouse) as conn:
        conn.execute("DELETE FROM raw.prices_hourly WHERE date = DATE '2024-12-25' AND hour = 5")
    # The forecaster serves from features.daily: the change reaches it through the features asset.
    run_job(env.defs, FEATURES_JOB, env.instance)
    with pytest.raises(Exception, match="2024-12-25"):
        run_job(env.defs, PREDICT_JOB, env.instance, partition_key="2024-12-28")
    assert read_predictions(env.warehouse, date(2024, 12, 28)).is_empty()


def test_the_champion_loads_as_pyfunc_from_the_registry(env):
    mlflow.set_tracking_uri(env.settings.mlflow_tracking_uri)
    model = mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}@champion")
    history = request_frame(model, read_prices(env.warehouse, date(2024, 11, 1), date(2024, 11, 30)),
                            read_operating_data(env.warehouse))  # ts, price (+ the operating columns it reads)
    out = model.predict(history.to_pandas())
    assert list(out.columns) == ["ts", "hour", "forecast", "p10", "p50", "p90"]
    assert len(out) == 24 and str(out["ts"].iloc[0].date()) == "2024-12-02"



def test_mlflow_models_serve_answers_a_rest_request(env, tmp_path):
    port = free_port()
    mlflow_bin = os.path.join(os.path.dirname(sys.executable), "mlflow")
    server = subprocess.Popen(
        [mlflow_bin, "models", "serve", "-m", f"models:/{MODEL_NAME}@champion", "--env-manager", "local",
         "-h", "127.0.0.1", "-p", str(port)],
        env={**os.environ, "MLFLOW_TRACKING_URI": env.settings.mlflow_tracking_uri,
             "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")},  # its uvicorn
        stdout=open(tmp_path / "serve.log", "w"), stderr=subprocess.STDOUT, start_new_session=True,  # noqa: SIM115
    )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/ping", server, tmp_path / "serve.log", 120)
        champion = mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}@champion")
        history = request_frame(champion, read_prices(env.warehouse, date(2024, 11, 1), date(2024, 11, 30)),
                                read_operating_data(env.warehouse)).with_columns(pl.col("ts").dt.strftime("%Y-%m-%dT%H:%M:%S"))
        body = json.dumps({"dataframe_split": {"columns": history.columns, "data": history.rows()}}).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", data=body,
                                         headers={"Content-Type": "application/json"})
        answer = json.loads(urllib.request.urlopen(request, timeout=60).read())
        rows = answer["predictions"]
        assert len(rows) == 24 and rows[0]["ts"].startswith("2024-12-02")
        assert all(r["p10"] <= r["p50"] <= r["p90"] for r in rows)
    finally:
        os.killpg(server.pid, 9)
        server.wait()


def test_corrupt_mlflow_backend_fails_training_clearly(tmp_path):
    env = make_env(tmp_path)
    env.settings.mlflow_db_path.write_bytes(b"this is not an SQLite database" * 100)
    with pytest.raises(Exception) as failure:
        run_job(env.defs, TRAIN_JOB, env.instance, run_config={"ops": {"forecaster_model": {"config": TINY}}})
    causes, error = [], failure.value
    while error is not None:
        causes.append(str(error))
        error = error.__cause__
    db = env.settings.mlflow_db_path
    assert any(c.startswith(f"MLflow database {db} is unreadable") and "\n" not in c for c in causes), causes


def test_a_model_reading_operating_data_fits_from_features_and_serves_its_row(env, client):
    """Operating groups on: trained from features.daily, the pyfunc reads the operating columns, and
    the predictions asset's forecast from the features row equals the pyfunc's from a request."""
    _ingest(env, ("2024-12-01", "2024-12-01"))  # data to 2024-12-31, refetching any hour an earlier test removed
    before = registry.alias_version(client, registry.CHAMPION)
    # the module's data begin in 2024: fewer known days than the default 365 would leave every group out
    trained, _ = _train(env, {**TINY, "operating_min_days": 200, "operating_groups": "all", "seed": 5})
    assert trained["operating_groups"] == "demand,hydrology,enso" and trained["operating_groups_left_out"] == "none"
    version = trained["model_version"]
    model = mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}/{version}")
    assert {"demand_gwh", "generation_gwh", "reservoir_useful_volume_pct", "inflows_pct_of_historical_mean", "oni"} <= set(
        model.metadata.get_input_schema().input_names())
    history_days = int(client.get_model_version(MODEL_NAME, version).tags["history_days"])
    assert history_days == 200
    params = client.get_run(client.get_model_version(MODEL_NAME, version).run_id).data.params
    assert params["fit.operating_groups"] == "demand,hydrology,enso"  # MLflow's params say what the fit read
    client.set_model_version_tag(MODEL_NAME, version, "gate_decision", "promoted")  # as the gate would: a champion
    client.set_registered_model_alias(MODEL_NAME, registry.CHAMPION, version)  # no gate approved is not served
    try:
        result = run_job(env.defs, PREDICT_JOB, env.instance, partition_key="2024-12-30")
    finally:
        champion = registry.alias_version(client, registry.CHAMPION) if before is None else before
        client.set_registered_model_alias(MODEL_NAME, registry.CHAMPION, champion.version)
    with connect(env.warehouse, read_only=True) as conn:  # the registry's mirror says what each version reads
        groups = dict(conn.execute("SELECT version, operating_groups FROM ml.model_versions").fetchall())
    assert groups[str(version)] == "demand,hydrology,enso"
    unknown = result.asset_materializations_for_node("predictions")[-1].metadata["operating_inputs_unknown"].value
    assert unknown == "none"  # every group it reads is known at the cutoff (the unknown case: test_feature_store_inputs)
    served = read_predictions(env.warehouse, date(2024, 12, 30)).filter(pl.col("model_version") == version).sort("hour")
    assert served.height == 24 and served["operating_unknown"].is_null().all()  # every group known at the cutoff
    prices = read_prices(env.warehouse, date(2024, 12, 30) - timedelta(days=history_days), date(2024, 12, 28))
    request = request_frame(model, prices, read_operating_data(env.warehouse))
    assert request["oni"].null_count() < request.height and request["demand_gwh"].null_count() == 0
    answer = model.predict(request.to_pandas())
    assert answer["p50"].to_numpy() == pytest.approx(served["p50"].to_numpy(), abs=1e-6)


def test_a_model_champion_s_band_adapts_once_its_served_days_are_realised(env, client):
    """The adaptive band end to end: four weeks served by a model, their prices arrived; the next
    morning's band is adjusted from those stored misses, which the asset's metadata says."""
    with connect(env.warehouse, read_only=True) as conn:
        (model_version,) = conn.execute("SELECT version FROM ml.model_versions WHERE kind = 'model' AND gate_decision = 'promoted' "
                                        "ORDER BY CAST(version AS INTEGER) DESC LIMIT 1").fetchall()[0]
    before = str(registry.alias_version(client, registry.CHAMPION).version)
    client.set_registered_model_alias(MODEL_NAME, registry.CHAMPION, model_version)
    try:
        batch = run_job(env.defs, PREDICT_JOB, env.instance, partition_range=("2024-12-03", "2024-12-31"))
        morning = run_job(env.defs, PREDICT_JOB, env.instance, partition_key="2025-01-02")
    finally:
        client.set_registered_model_alias(MODEL_NAME, registry.CHAMPION, before)
    first = batch.asset_materializations_for_node("predictions")[-1].metadata
    assert first["adaptive_band"].value.startswith("partly adjusted"), first["adaptive_band"].value  # the first 2 weeks: raw
    meta = morning.asset_materializations_for_node("predictions")[-1].metadata
    assert meta["adaptive_band"].value.startswith("adjusted: 1/1 day(s)"), meta["adaptive_band"].value
    assert meta["band_adjustment (last day)"].value.startswith("lower side")
    rows = read_predictions(env.warehouse, date(2025, 1, 2)).filter(pl.col("model_version") == model_version)
    assert rows.height == 24 and rows.filter((pl.col("p10") > pl.col("p50")) | (pl.col("p50") > pl.col("p90"))).is_empty()


def test_a_champion_of_the_earlier_calendar_is_served_with_its_own_after_the_setting_changes(env, client):
    """ENERGY_PLATFORM_COUNTRY changed on a trained home: the next features run recomputes every
    day in the new calendar, and the champion trained with Colombia's is served from those rows
    with Colombia's holiday columns (a warning says so): the forecast it made before, not one that
    reads 2024-12-08, a Colombian holiday, as a working day."""
    from energy_platform.warehouse.features import read_features

    with connect(env.warehouse, read_only=True) as conn:
        (model_version,) = conn.execute("SELECT version FROM ml.model_versions WHERE kind = 'model' AND gate_decision = 'promoted' "
                                        "ORDER BY CAST(version AS INTEGER) DESC LIMIT 1").fetchall()[0]
    day = date(2024, 12, 8)
    us = make_env(env.settings.home, ENERGY_PLATFORM_COUNTRY="US")
    before = str(registry.alias_version(client, registry.CHAMPION).version)
    client.set_registered_model_alias(MODEL_NAME, registry.CHAMPION, model_version)
    try:
        run_job(env.defs, PREDICT_JOB, env.instance, partition_key=day.isoformat())
        served = read_predictions(env.warehouse, day).filter(pl.col("model_version") == model_version).sort("hour")
        stored = read_features(env.warehouse).height
        run_job(us.defs, FEATURES_JOB, us.instance)
        rows = read_features(us.warehouse)
        assert rows.height == stored and rows.filter(pl.col("target_date") == day)["holiday"].item() == 0.0  # every day, in US's
        result = run_job(us.defs, PREDICT_JOB, us.instance, partition_key=day.isoformat())
    finally:
        client.set_registered_model_alias(MODEL_NAME, registry.CHAMPION, before)
        run_job(env.defs, FEATURES_JOB, env.instance)  # the module's calendar back
    again = read_predictions(us.warehouse, day).filter(pl.col("model_version") == model_version).sort("hour")
    assert again["p50"].to_list() == pytest.approx(served["p50"].to_list(), abs=1e-9)
    logs = [e.user_message for e in us.instance.all_logs(result.run_id)]
    assert any("features.daily holds the US holiday calendar" in m and "trained with CO" in m for m in logs)


def test_a_champion_whose_artifacts_are_gone_gives_way_to_persistence(env, client):
    """Helper F (session 19): the champion's artifact folder gone (a disk restored without it, a
    manual clean-up), every morning's predictions failed with MLflow's raw error and the desk got no
    forecast. The baseline is promoted, as for a champion of another horizon, with the reason in
    the champion history; the operator restores the folder and rolls back."""
    import shutil
    from pathlib import Path

    with connect(env.warehouse, read_only=True) as conn:
        (model_version,) = conn.execute("SELECT version FROM ml.model_versions WHERE kind = 'model' AND gate_decision = 'promoted' "
                                        "ORDER BY CAST(version AS INTEGER) DESC LIMIT 1").fetchall()[0]
    before = str(registry.alias_version(client, registry.CHAMPION).version)
    client.set_registered_model_alias(MODEL_NAME, registry.CHAMPION, model_version)
    stored = Path(client.get_model_version_download_uri(MODEL_NAME, model_version).removeprefix("file://"))
    aside = stored.with_name(stored.name + ".aside")
    stored.rename(aside)
    try:
        result = run_job(env.defs, PREDICT_JOB, env.instance, partition_key="2024-12-20")
        champion = registry.alias_version(client, registry.CHAMPION)
    finally:
        shutil.rmtree(stored, ignore_errors=True)
        aside.rename(stored)
        client.set_registered_model_alias(MODEL_NAME, registry.CHAMPION, before)
    assert champion.tags["kind"] == "baseline"
    meta = result.asset_materializations_for_node("predictions")[-1].metadata
    assert meta["model_kind"].value == "baseline" and meta["model_version"].value == str(champion.version)
    rows = read_predictions(env.warehouse, date(2024, 12, 20)).filter(pl.col("dagster_run_id") == result.run_id)
    assert rows.height == 24 and rows["model_version"].unique().to_list() == [str(champion.version)]
    with connect(env.warehouse, read_only=True) as conn:
        version, reason = conn.execute("SELECT version, reason FROM ml.champion_history ORDER BY changed_at DESC LIMIT 1").fetchall()[0]
    assert version == str(champion.version) and f"champion v{model_version} does not load" in reason, reason


def test_a_champion_that_loads_but_forecasts_nonsense_gives_way_to_persistence(env, client):
    """Helper O (session 20): a gated champion whose band comes out upside down (or that cannot
    forecast at all) failed every morning's predictions until a new challenger replaced it: up to a
    week without a forecast. Persistence serves now, with the reason in the champion history."""
    from energy_platform_tests.test_registry_gate import ChosenModel

    before = str(registry.alias_version(client, registry.CHAMPION).version)
    uri = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(env.settings.mlflow_tracking_uri)
    try:
        with mlflow.start_run(experiment_id=mlflow.set_experiment(EXPERIMENT_NAME).experiment_id):
            info = mlflow.pyfunc.log_model(name="model", python_model=ChosenModel(low=1.2, high=1.3), pip_requirements=["mlflow"])
        tags = {"kind": "model", "history_days": "30", "horizon_days": "2", "data_end": "2024-12-18",
                "gate_decision": "promoted", "gate_reason": "test"}
        upside_down = mlflow.register_model(info.model_uri, MODEL_NAME, tags=tags).version
    finally:
        mlflow.set_tracking_uri(uri)
    client.set_registered_model_alias(MODEL_NAME, registry.CHAMPION, upside_down)
    try:
        result = run_job(env.defs, PREDICT_JOB, env.instance, partition_key="2024-12-20")
        champion = registry.alias_version(client, registry.CHAMPION)
    finally:
        client.set_registered_model_alias(MODEL_NAME, registry.CHAMPION, before)
    assert champion.tags["kind"] == "baseline"
    rows = read_predictions(env.warehouse, date(2024, 12, 20)).filter(pl.col("dagster_run_id") == result.run_id)
    assert rows.height == 24 and rows["model_version"].unique().to_list() == [str(champion.version)]
    with connect(env.warehouse, read_only=True) as conn:
        version, previous, reason = conn.execute(
            "SELECT version, previous_version, reason FROM ml.champion_history ORDER BY changed_at DESC LIMIT 1").fetchall()[0]
    assert (version, previous) == (str(champion.version), str(upside_down))
    assert f"champion v{upside_down}: it forecast nonsense (" in reason and "band" in reason, reason
