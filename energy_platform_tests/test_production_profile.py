"""The production profile on real services: Dagster and MLflow on PostgreSQL, an MLflow tracking server,
the warehouse on DuckLake.

A PostgreSQL cluster from the system's packages on 127.0.0.1 (a free port, a temporary folder)
and an `mlflow server` on it with `--artifacts-destination`; the platform reaches them through
its settings only (`ENERGY_PLATFORM_DAGSTER_PG_URL`, `MLFLOW_TRACKING_URI`,
`ENERGY_PLATFORM_WAREHOUSE` = a DuckLake catalog in the same cluster, Parquet in the temporary folder). Skipped only when
PostgreSQL is not installed (`.ci/run` installs it). Every process started here is stopped and
checked gone.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import dagster as dg
import mlflow
import psycopg2
import pytest
from mlflow import MlflowClient

from energy_platform.defs import FEATURES_JOB, INGEST_JOB, PREDICT_JOB, PUBLISH_JOB, TRAIN_JOB, build_definitions
from energy_platform.local_services import (
    MlflowServer,
    PostgresCluster,
    postgres_bindir,
    stop_group,
)
from energy_platform.orchestration import run_job
from energy_platform.profile import DAGSTER_PG_ENV, ProfileError
from energy_platform.settings import from_env
from energy_platform.tracking import MODEL_NAME
from energy_platform.tracking.links import MONITORING_EXPERIMENT, log_report, prune_report_runs
from energy_platform.warehouse.db import connect, is_lake
from energy_platform_tests.platform_env import free_port, launch_run, make_env, wait_for_http

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(
    postgres_bindir() is None, reason="PostgreSQL is not installed (no initdb/pg_ctl); .ci/run installs Debian's postgresql"
)

TINY = {"window_days": 240, "backtest_weeks": 2, "recalibrate_every": 7, "max_epochs": 5, "n_members": 1, "lear_weight": 0.0}
TRAIN_CONFIG = {"ops": {"forecaster_model": {"config": TINY}}}
MONTHS = ("2024-01-01", "2024-10-01")  # data to 2024-10-31
TARGET_DAY = "2024-11-02"


def _alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


@pytest.fixture(scope="module")
def services(home):
    """PostgreSQL (databases `dagster`, `mlflow`, `mlflow_server`), a tracking server and `dagster dev`
    (webserver + daemon) on the PostgreSQL instance, all started at once (they take a minute under
    load, overlapping the in-process runs) and stopped after."""
    root = Path(tempfile.mkdtemp(prefix="ep-profile-"))  # not under pytest's 0700 tmp: postgres must enter it
    root.chmod(0o711)
    cluster = PostgresCluster(root / "pg", durable=False)
    server, ui, pg_pid = None, None, None
    try:
        cluster.start()
        pg_pid = cluster.pid
        urls = {db: cluster.create_database(db) for db in ("dagster", "mlflow", "mlflow_server", "lake")}
        urls["lake_data"] = str(root / "lake-data")
        os.environ[DAGSTER_PG_ENV] = urls["dagster"]  # what the generated dagster.yaml reads, for the module
        server = MlflowServer(urls["mlflow_server"], root / "served-artifacts", root / "mlflow-server.log").start()
        ui = _start_dagster_dev(home, urls, root / "dagster-dev.log")
        yield {"cluster": cluster, "urls": urls, "server": server, "root": root, "ui": ui}
    finally:
        os.environ.pop(DAGSTER_PG_ENV, None)
        for proc in (ui[0] if ui else None, server.process if server else None):  # both shut down at once
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        if ui is not None:
            stop_group(ui[0].pid, grace=10, process=ui[0])
        if server is not None:
            server.stop()
        cluster.stop()
        left = _leftovers(pg_pid, [server.process if server else None, ui[0] if ui else None])
        shutil.rmtree(root, ignore_errors=True)
        assert not left, f"processes still running after the test: {left}"


def _profile_env(urls: dict) -> dict[str, str]:
    lake = urls["lake"].replace("postgresql+psycopg2://postgres@127.0.0.1:", "").split("/")  # port, db
    return {DAGSTER_PG_ENV: urls["dagster"], "MLFLOW_TRACKING_URI": urls["mlflow"],
            "ENERGY_PLATFORM_WAREHOUSE": f"ducklake:postgres:dbname={lake[1]} host=127.0.0.1 port={lake[0]} user=postgres",
            "ENERGY_PLATFORM_WAREHOUSE_DATA_PATH": urls["lake_data"]}


def _start_dagster_dev(home: Path, urls: dict, log: Path) -> tuple[subprocess.Popen, int]:
    """`make prod-ui`'s processes: the home prepared by the settings, then `dagster dev` on it."""
    settings = from_env({"ENERGY_PLATFORM_HOME": str(home), **_profile_env(urls)})
    settings.ensure_dirs()
    dg.DagsterInstance.from_config(str(settings.dagster_home)).dispose()  # the schema, made before two processes race on it
    port, bindir = free_port(), os.path.dirname(sys.executable)
    env = {**os.environ, "ENERGY_PLATFORM_HOME": str(home), "DAGSTER_HOME": str(settings.dagster_home),
           **_profile_env(urls), "PATH": bindir + os.pathsep + os.environ.get("PATH", "")}
    with log.open("w") as out:
        proc = subprocess.Popen([os.path.join(bindir, "dagster"), "dev", "-h", "127.0.0.1", "-p", str(port), "-w",
                                 str(ROOT / "workspace.yaml")], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    return proc, port


def _leftovers(pg_pid: int | None, groups: list, seconds: float = 15) -> list[str]:
    """What is still running of the cluster and the process groups started (workers exit a moment late)."""
    deadline = time.monotonic() + seconds
    while True:
        left = [f"postgres {pg_pid}"] * _alive(pg_pid)
        left += [f"process group {p.pid} ({p.args[1]})" for p in groups if p is not None and _group_alive(p.pid)]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.5)


def _query(url: str, sql: str) -> list[tuple]:
    dsn = url.replace("postgresql+psycopg2://", "postgresql://")
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetchall()


def _pipeline(env, ingest: bool) -> None:
    if ingest:
        run_job(env.defs, INGEST_JOB, env.instance, partition_range=MONTHS)
        run_job(env.defs, FEATURES_JOB, env.instance)
    run_job(env.defs, TRAIN_JOB, env.instance, run_config=TRAIN_CONFIG)
    run_job(env.defs, PREDICT_JOB, env.instance, partition_key=TARGET_DAY)


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return tmp_path_factory.mktemp("profile_home")


def test_a_profile_asked_for_is_never_a_silent_fallback(tmp_path):
    with pytest.raises(ProfileError, match="psycopg2"):
        from_env({"MLFLOW_TRACKING_URI": "postgresql://u@127.0.0.1/db"})
    with pytest.raises(ProfileError, match="not one the platform runs on"):
        from_env({"MLFLOW_TRACKING_URI": "file:///tmp/mlruns"})
    with pytest.raises(ProfileError, match="psycopg2"):
        from_env({DAGSTER_PG_ENV: "postgres://u@127.0.0.1/db"})
    # a DuckLake is a location, never read as a file name (its errors: test_warehouse_ducklake.py)
    assert is_lake(from_env({"ENERGY_PLATFORM_WAREHOUSE": "ducklake:postgres:dbname=lake host=127.0.0.1 user=postgres"}).warehouse_path)
    assert from_env({"ENERGY_PLATFORM_WAREHOUSE": str(tmp_path / "w.duckdb")}).warehouse_path == tmp_path / "w.duckdb"
    # a home whose instance was generated for PostgreSQL, opened without the variable
    pg = from_env({"ENERGY_PLATFORM_HOME": str(tmp_path), DAGSTER_PG_ENV: "postgresql+psycopg2://u@127.0.0.1:1/db"})
    pg.ensure_dirs()
    with pytest.raises(ProfileError, match=f"{DAGSTER_PG_ENV} is not set"):
        from_env({"ENERGY_PLATFORM_HOME": str(tmp_path)}).ensure_dirs()
    # a run on an instance that is not the PostgreSQL one fails before any step
    with pytest.raises(Exception) as failure:
        run_job(build_definitions(pg), INGEST_JOB, dg.DagsterInstance.ephemeral(), partition_key="2024-01-01")
    assert "stores runs in InMemoryRunStorage" in _causes(failure.value)


@pytest.mark.parametrize("variable", ["MLFLOW_TRACKING_URI", DAGSTER_PG_ENV])
def test_a_service_that_does_not_answer_is_named_at_start(tmp_path, variable):
    """Helper H (session 19): an unreachable MLflow backend was retried for minutes at every drift
    check, then failed the demo with a traceback (exit 1); Dagster's PostgreSQL likewise in 22 s."""
    url = {"MLFLOW_TRACKING_URI": "http://127.0.0.1:1", DAGSTER_PG_ENV: "postgresql+psycopg2://u@127.0.0.1:1/dagster"}[variable]
    started = time.monotonic()
    proc = subprocess.run([str(Path(sys.executable).with_name("energy-platform")), "demo"], capture_output=True, text=True,
                          timeout=120, check=False, env={**os.environ, "ENERGY_PLATFORM_HOME": str(tmp_path), variable: url})
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.count("\n") == 1 and f"{variable}=" in proc.stderr and "nothing answers at 127.0.0.1:1" in proc.stderr, proc.stderr
    assert time.monotonic() - started < 60


def _causes(error: BaseException | None) -> str:
    text = []
    while error is not None:
        text.append(str(error))
        error = error.__cause__
    return " | ".join(text)


def test_pipeline_on_dagster_and_mlflow_in_postgresql(services, home):
    urls = services["urls"]
    env = make_env(home, **_profile_env(urls))
    try:
        assert type(env.instance.run_storage).__name__ == "PostgresRunStorage"
        _pipeline(env, ingest=True)
        published = run_job(env.defs, PUBLISH_JOB, env.instance)  # the analysts' file, FROM the lake
    finally:
        env.instance.dispose()

    runs = dict(_query(urls["dagster"], "SELECT status, count(*) FROM runs GROUP BY status"))
    assert runs == {"SUCCESS": 5}, runs  # ingest, features, train, predict, publish
    (materialized,) = _query(urls["dagster"], "SELECT count(*) FROM event_logs WHERE dagster_event_type = 'ASSET_MATERIALIZATION'")[0]
    assert materialized >= 10 + 3  # ten monthly raw_prices partitions, features, model, champion, prediction
    assert not list(env.settings.dagster_home.rglob("*.db")), "a SQLite store was made beside PostgreSQL"
    assert not env.settings.mlflow_db_path.exists()

    aliases = dict(_query(urls["mlflow"], f"SELECT alias, version FROM registered_model_aliases WHERE name = '{MODEL_NAME}'"))
    assert {"champion", "challenger"} <= set(aliases), aliases
    mlflow.set_tracking_uri(urls["mlflow"])
    mlflow.set_registry_uri(urls["mlflow"])
    assert mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}@champion") is not None
    # The warehouse is the DuckLake: its catalog in PostgreSQL, its rows read back through it, no file.
    assert is_lake(env.warehouse) and not list(home.glob("warehouse.duckdb*"))
    with connect(env.warehouse, read_only=True) as conn:
        assert conn.execute("SELECT count(*) FROM ml.predictions").fetchone()[0] == 24
        prices = conn.execute("SELECT count(*), count(DISTINCT (date, hour)), min(date), max(date) FROM raw.prices_hourly").fetchone()
        assert conn.execute("SELECT count(*) FROM ml.model_versions").fetchone()[0] >= 2  # baseline + the trained one
    assert prices[:2] == (305 * 24, 305 * 24) and str(prices[2]) == "2024-01-01" and str(prices[3]) == "2024-10-31"
    tables = {t for (t,) in _query(urls["lake"], "SELECT table_name FROM ducklake_table WHERE end_snapshot IS NULL")}
    assert {"prices_hourly", "predictions", "daily", "model_versions"} <= tables, tables
    assert list(Path(urls["lake_data"]).rglob("*.parquet")), "no Parquet under the lake's DATA_PATH"
    summary = published.asset_materializations_for_node("analytics_snapshot")[-1].metadata
    with connect(summary["path"].value, read_only=True) as conn:
        assert conn.execute("SELECT count(*) FROM forecasts").fetchone()[0] == 24
        assert conn.execute("SELECT count(*) FROM prices_hourly").fetchone()[0] == 305 * 24


def test_a_run_launched_through_the_daemon_lands_in_postgresql(services, home):
    """What the UI's Materialize button and the schedules do: the run is queued, the daemon's queued
    coordinator launches it in its own process, on the PostgreSQL instance."""
    proc, port = services["ui"]
    wait_for_http(f"http://127.0.0.1:{port}/server_info", proc, services["root"] / "dagster-dev.log", 240)
    run_id = launch_run(port, {"selector": {"repositoryLocationName": "energy_platform", "repositoryName": "__repository__",
                         "jobName": INGEST_JOB},
            "executionMetadata": {"tags": [{"key": "dagster/partition", "value": "2024-11-01"}]}})
    deadline, status = time.monotonic() + 180, None
    while time.monotonic() < deadline and status not in ("SUCCESS", "FAILURE", "CANCELED"):
        time.sleep(1)
        rows = _query(services["urls"]["dagster"], f"SELECT status FROM runs WHERE run_id = '{run_id}'")
        status = rows[0][0] if rows else None
    assert status == "SUCCESS", (services["root"] / "dagster-dev.log").read_text()[-3000:]
    events = {e for (e,) in _query(services["urls"]["dagster"],
                                   f"SELECT DISTINCT dagster_event_type FROM event_logs WHERE run_id = '{run_id}'")}
    assert {"PIPELINE_ENQUEUED", "PIPELINE_STARTING", "ASSET_MATERIALIZATION"} <= events, events
    lake = from_env({"ENERGY_PLATFORM_HOME": str(home), **_profile_env(services["urls"])}).warehouse_path
    with connect(lake, read_only=True) as conn:  # the daemon's run worker wrote into the lake
        assert conn.execute("SELECT count(*) FROM raw.prices_hourly WHERE date >= DATE '2024-11-01'").fetchone()[0] == 30 * 24



def test_tracking_server_keeps_the_artifacts_and_serves_the_champion(services, home):
    urls, server = services["urls"], services["server"]
    server.wait(300)  # started with the module; it takes a minute under load
    local_before = sorted(p for p in (home / "mlartifacts").rglob("*"))
    env = make_env(home, **{**_profile_env(urls), "MLFLOW_TRACKING_URI": server.url})
    try:
        assert env.settings.mlflow_artifact_root is None
        _pipeline(env, ingest=False)  # the warehouse of the previous test, a new registry behind the server
        run_job(env.defs, INGEST_JOB, env.instance, partition_key="2024-10-01")  # its price_drift check writes a report
    finally:
        env.instance.dispose()

    client = MlflowClient(tracking_uri=server.url, registry_uri=server.url)
    experiment = client.get_experiment_by_name("day_ahead_price_forecaster")
    assert experiment.artifact_location.startswith("mlflow-artifacts:"), experiment.artifact_location
    champion = client.get_model_version_by_alias(MODEL_NAME, "champion")
    assert client.get_model_version_by_alias(MODEL_NAME, "challenger") is not None
    served = services["root"] / "served-artifacts"
    assert list(served.rglob("MLmodel")), "no model under the server's --artifacts-destination"
    assert sorted(p for p in (home / "mlartifacts").rglob("*")) == local_before, "the client wrote artifacts locally"

    # The price drift check logged its Evidently report through the server: served, linked by http.
    monitoring = client.get_experiment_by_name(MONITORING_EXPERIMENT)
    assert monitoring is not None and monitoring.artifact_location.startswith("mlflow-artifacts:")
    drift_run = client.search_runs([monitoring.experiment_id], max_results=1)[0]
    assert drift_run.data.tags["check"] == "price_drift"
    assert list(served.rglob("price_drift_*.html")), "no drift report under the server's --artifacts-destination"
    # Retention through the server: an older report of the check goes, its served artifact with it.
    newer = home / "price_drift_newer.html"
    newer.write_text("<html>a newer report</html>")
    log_report(server.url, None, "http://127.0.0.1:5000", newer, run_name="price_drift", tags={"check": "price_drift"})
    assert prune_report_runs(server.url, 30, now_ms=int(time.time() * 1000) + 31 * 86_400_000) >= 1
    assert client.get_run(drift_run.info.run_id).info.lifecycle_stage == "deleted"
    assert [p.name for p in served.rglob("price_drift_*.html")] == ["price_drift_newer.html"]

    os.environ.pop("MLFLOW_TRACKING_URI", None)
    mlflow.set_tracking_uri(server.url)
    mlflow.set_registry_uri(server.url)
    model = mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}@champion")  # downloaded over HTTP
    assert model.metadata.run_id == champion.run_id
