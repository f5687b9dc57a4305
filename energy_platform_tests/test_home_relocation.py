"""A home copied elsewhere (and the original deleted) serves and trains from its own files.

MLflow stores absolute `file://` artifact URIs; the start-up check rewrites those of another
home's `mlartifacts` to this home's (tracking/relocation.py). Real tiny training, real copy.
"""

from __future__ import annotations

import shutil
import sqlite3

import mlflow
import pytest
from mlflow import MlflowClient

from energy_platform.defs import FEATURES_JOB, INGEST_JOB, PREDICT_JOB, TRAIN_JOB
from energy_platform.errors import StateError
from energy_platform.orchestration import run_job
from energy_platform.state import check_home
from energy_platform.tracking import MODEL_NAME, registry
from energy_platform.tracking.relocation import URI_COLUMNS
from energy_platform.warehouse.db import connect
from energy_platform_tests.platform_env import make_env

TINY = {"window_days": 240, "backtest_weeks": 2, "recalibrate_every": 7, "max_epochs": 3, "n_members": 1, "blend_naive": False, "lear_weight": 0.0}


def _stored_uris(db) -> list[str]:
    with sqlite3.connect(db) as conn:
        return [v for table, column, extra in URI_COLUMNS
                for (v,) in conn.execute(f"SELECT {column} FROM {table} WHERE {column} IS NOT NULL {extra}")]


@pytest.fixture(scope="module")
def trained_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("original") / "home"
    env = make_env(home)
    source = {"resources": {"source": {"config": {"spec": "sample", "as_of": "2024-11-30"}}}}
    run_job(env.defs, INGEST_JOB, env.instance, partition_range=("2024-01-01", "2024-11-01"), run_config=source)
    run_job(env.defs, FEATURES_JOB, env.instance)
    result = run_job(env.defs, TRAIN_JOB, env.instance, run_config={"ops": {"forecaster_model": {"config": TINY}}})
    version = result.asset_materializations_for_node("forecaster_model")[-1].metadata["model_version"].value
    client = MlflowClient(tracking_uri=env.settings.mlflow_tracking_uri, registry_uri=env.settings.mlflow_tracking_uri)
    client.set_model_version_tag(MODEL_NAME, version, "gate_decision", "promoted")  # whatever the gate said: a
    client.set_registered_model_alias(MODEL_NAME, registry.CHAMPION, version)  # champion as the gate makes one
    return home


def test_a_copied_home_serves_from_its_own_artifacts(trained_home, tmp_path):
    new = tmp_path / "restored"
    shutil.copytree(trained_home, new)
    assert any(str(trained_home) in uri for uri in _stored_uris(new / "mlflow.db"))
    moved = trained_home.with_name("gone")
    trained_home.rename(moved)  # the original home is gone (kept aside to reuse the fixture)
    try:
        env = make_env(new)
        check_home(env.settings)
        uris = _stored_uris(env.settings.mlflow_db_path)
        assert uris and not any(str(trained_home) in u for u in uris), uris
        files = [u for u in uris if u.startswith("file:")]  # MLflow's own Default experiment keeps its ./mlruns
        root = env.settings.mlflow_artifacts.as_uri()
        assert len(files) >= 4 and all(u.startswith(root + "/") or u == root for u in files), files
        check_home(env.settings)  # idempotent: nothing left to rewrite

        run_job(env.defs, PREDICT_JOB, env.instance, partition_key="2024-12-02")
        with connect(env.warehouse, read_only=True) as conn:
            assert conn.execute("SELECT count(*) FROM ml.predictions WHERE target_date = '2024-12-02'").fetchone() == (24,)
        mlflow.set_tracking_uri(env.settings.mlflow_tracking_uri)
        mlflow.set_registry_uri(env.settings.mlflow_tracking_uri)
        assert mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}@champion") is not None

        result = run_job(env.defs, TRAIN_JOB, env.instance, run_config={"ops": {"forecaster_model": {"config": TINY}}})
        run_id = result.asset_materializations_for_node("forecaster_model")[-1].metadata["mlflow_run_id"].value
        client = MlflowClient(tracking_uri=env.settings.mlflow_tracking_uri)
        assert client.get_run(run_id).info.artifact_uri.startswith(env.settings.mlflow_artifacts.as_uri())
        assert not trained_home.exists()  # nothing wrote into the original's place
    finally:
        moved.rename(trained_home)


def test_a_home_with_only_mlflow_db_copied_is_refused(trained_home, tmp_path):
    new = tmp_path / "partial"
    env = make_env(new)  # creates an empty mlartifacts
    shutil.copyfile(trained_home / "mlflow.db", env.settings.mlflow_db_path)
    with pytest.raises(StateError, match=f"keeps its model artifacts in {trained_home / 'mlartifacts'}, and "
                                         f"{env.settings.mlflow_artifacts} is empty") as refused:
        check_home(env.settings)
    assert "\n" not in str(refused.value)
