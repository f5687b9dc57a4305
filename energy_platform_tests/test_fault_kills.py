"""`kill -9` at chosen points of real processes, then a rerun: what the other fault tests do not reach.

Each victim is a real Python process that SIGKILLs itself at a chosen point (a wrapped function:
no teardown, no `finally`), started under another host name (a new UTS namespace, as after a
container restart) and, where a pid matters, in a new PID namespace whose pid is one a live
process holds outside it (a pid reused after a restart). Every subprocess has a timeout.

Covered here: a training killed after registering its version and before the challenger alias,
and one killed inside the gate before the champion alias moves (registry and `ml.model_versions`
must agree after the next run, and predictions must be served); the analytics publish killed
between its finished temp file and the atomic replace; a start killed while MLflow builds its
database; two pipelines at once on one home.
Killed backfills, the lease and the kill between `previous` and `champion` are in
test_ingestion_assets.py, test_run_lease.py and test_registry_gate.py.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from energy_platform.warehouse.analytics import TABLES, TMP_PREFIX, publish_analytics
from energy_platform.warehouse.db import connect
from energy_platform_tests.test_analytics import seed_warehouse

ROOT = Path(__file__).resolve().parent.parent
CAN_UNSHARE = os.geteuid() == 0 and shutil.which("unshare") is not None
KILLED = (-signal.SIGKILL, 128 + signal.SIGKILL)  # the victim itself, or the shell that ran it in a PID namespace


def _command(code: str, args: list[str], hostname: str, pid: int | None = None) -> list[str]:
    """`python -c code args` under `hostname`; with `pid`, in a new PID namespace where it gets that pid."""
    cmd = [sys.executable, "-W", "ignore", "-c", code, *args]
    if not CAN_UNSHARE:
        return cmd
    if pid is None:
        return ["unshare", "-u", "sh", "-c", f'hostname {hostname} && exec "$@"', "sh", *cmd]
    # sh is the namespace's init; python, its child, gets ns_last_pid + 1 (and can kill itself).
    return ["unshare", "-u", "-p", "-f", "-m", "--mount-proc", "sh", "-c",
            f'hostname {hostname} && echo {pid - 1} > /proc/sys/kernel/ns_last_pid && "$@"', "sh", *cmd]


def _run_victim(code: str, args: list[str], hostname: str, *, pid: int | None = None, env: dict | None = None,
                timeout: float = 300) -> str:
    """Run a victim to its self-inflicted SIGKILL; return what it printed before dying."""
    done = subprocess.run(_command(code, args, hostname, pid), check=False, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})
    assert done.returncode in KILLED, (done.returncode, done.stdout[-2000:], done.stderr[-3000:])
    return done.stdout


# ---------------------------------------------------------------------------------------------
# The analytics swap
# ---------------------------------------------------------------------------------------------

PUBLISH_VICTIM = textwrap.dedent(
    """
    import os, signal, sys
    from energy_platform.warehouse import analytics

    def replace(src, dst):  # the new file is built, closed and fsynced; the swap has not happened
        print(os.getpid(), src, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)

    analytics.os.replace = replace
    analytics.publish_analytics(sys.argv[1], sys.argv[2])
    """
)


def _consistent_snapshot(path: Path) -> tuple:
    """Open read-only as analysts do; every table holds the rows its metadata row says. Returns
    (published_at, alerts) to tell snapshots apart."""
    with duckdb.connect(str(path), read_only=True) as conn:
        meta = conn.execute("SELECT table_name, kind, row_count, warehouse_rows FROM metadata").fetchall()
        assert len(meta) == len(TABLES), meta
        for name, kind, rows, warehouse_rows in meta:
            assert conn.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0] == rows, name
            assert kind == "view" or warehouse_rows == rows, name
        return (conn.execute("SELECT max(published_at) FROM metadata").fetchone()[0],
                conn.execute("SELECT count(*) FROM alerts").fetchone()[0])


def _temp_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.name.startswith(TMP_PREFIX))


def test_a_publish_killed_at_the_swap_leaves_the_old_file_and_no_temp_file_that_stays(tmp_path):
    """Three kills between the finished temp file and `os.replace`, the second and third with
    the pid a live process holds outside their namespace (a container restart reuses pids): the
    analysts' file stays the old, complete snapshot, stray temp files never pile up, and the
    rerun publishes and leaves none behind."""
    warehouse = seed_warehouse(tmp_path, start=date(2024, 6, 1), forecast_days=30)
    analytics = tmp_path / "analytics.duckdb"
    publish_analytics(warehouse, analytics)
    before, inode = _consistent_snapshot(analytics), analytics.stat().st_ino
    with connect(warehouse) as conn:  # a rerun must publish something new
        conn.execute("INSERT INTO monitoring.alerts VALUES (now()::TIMESTAMP, 'test', NULL, NULL, 'after the kills')")
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        for i, pid in enumerate([None, bystander.pid, bystander.pid]):
            printed = _run_victim(PUBLISH_VICTIM, [str(warehouse), str(analytics)], f"restart-{i}",
                                  pid=pid if CAN_UNSHARE else None, timeout=120)
            victim_pid, temp = printed.split()
            if pid is not None and CAN_UNSHARE:
                assert int(victim_pid) == pid  # the dead publisher's pid is alive out here
            assert Path(temp).exists() and Path(temp).stat().st_size > 0  # killed with a whole new file built
            assert (_consistent_snapshot(analytics), analytics.stat().st_ino) == (before, inode)
            assert _temp_files(tmp_path) == [Path(temp)]  # each publish removed the previous dead one's file
        summary = publish_analytics(warehouse, analytics, wait_seconds=10)
    finally:
        bystander.kill()
        bystander.wait()
    after = _consistent_snapshot(analytics)
    assert after[1] == before[1] + 1 and summary["tables"]["alerts"] == after[1]
    assert _temp_files(tmp_path) == []


# ---------------------------------------------------------------------------------------------
# A training killed between registering its version and moving an alias
# ---------------------------------------------------------------------------------------------

TINY = {"window_days": 240, "backtest_weeks": 2, "recalibrate_every": 7, "max_epochs": 3, "n_members": 1, "blend_naive": False, "lear_weight": 0.0}
TTL = 3.0  # lease of the victims' runs, so the rerun reaps them quickly

TRAIN_VICTIM = textwrap.dedent(
    """
    import json, os, signal, sys
    import dagster as dg
    from mlflow import MlflowClient
    from energy_platform.defs import TRAIN_JOB, build_definitions
    from energy_platform.orchestration import run_job
    from energy_platform.settings import from_env
    from energy_platform.tracking.registry import CHALLENGER, ModelRegistry

    home, point, config = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])

    def die(where):
        print(where, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)

    if point == "registered":  # mlflow.register_model returned; the challenger alias is not set
        set_alias = MlflowClient.set_registered_model_alias
        def wrapped(self, name, alias, version):
            if alias == CHALLENGER:
                die(f"v{version}")
            return set_alias(self, name, alias, version)
        MlflowClient.set_registered_model_alias = wrapped
    else:  # "gated": the gate's decision is tagged on the challenger; no alias has moved
        tag_version = ModelRegistry.tag_version
        def wrapped(self, version, tags):
            tag_version(self, version, tags)
            if "gate_decision" in tags and tags.get("gate_champion_version"):
                die(f"v{version}")
        ModelRegistry.tag_version = wrapped
    settings = from_env({"ENERGY_PLATFORM_HOME": home})
    instance = dg.DagsterInstance.from_config(str(settings.dagster_home))
    run_job(build_definitions(settings), TRAIN_JOB, instance, run_config={"ops": {"forecaster_model": {"config": config}}})
    print("not killed", flush=True)
    """
)


@pytest.fixture(scope="module")
def serving_home(tmp_path_factory) -> Path:
    """Prices to 2024-11-30, the feature store, and the persistence baseline serving two days."""
    from energy_platform.defs import FEATURES_JOB, INGEST_JOB, PREDICT_JOB
    from energy_platform.orchestration import run_job
    from energy_platform_tests.platform_env import make_env

    home = tmp_path_factory.mktemp("serving") / "home"
    env = make_env(home)
    source = {"resources": {"source": {"config": {"spec": "sample", "as_of": "2024-11-30"}}}}
    run_job(env.defs, INGEST_JOB, env.instance, partition_range=("2024-01-01", "2024-11-01"), run_config=source)
    run_job(env.defs, FEATURES_JOB, env.instance)
    run_job(env.defs, PREDICT_JOB, env.instance, partition_range=("2024-12-01", "2024-12-02"))
    return home


def _mirror_agrees_with_registry(env):
    """`ml.model_versions` holds exactly the registry's versions, aliases and gate decisions."""
    from energy_platform.tracking.registry import ModelRegistry

    registry = ModelRegistry(env.settings.mlflow_tracking_uri, env.settings.mlflow_artifacts)
    cards = {c.version: (set(c.aliases), c.gate_decision, c.kind) for c in registry.cards()}
    with connect(env.warehouse, read_only=True) as conn:
        rows = conn.execute("SELECT version, aliases, gate_decision, kind FROM ml.model_versions").fetchall()
    assert {v: ({a for a in (aliases or "").split(",") if a}, g, k) for v, aliases, g, k in rows} == cards
    return registry


def _served_by_the_champion(env, registry, days: list[str]) -> None:
    """Every day has the champion's 24 hours, and no (day, hour, version) twice."""
    champion = registry.champion().version
    with connect(env.warehouse, read_only=True) as conn:
        rows, distinct = conn.execute(
            "SELECT count(*), count(DISTINCT (target_date, hour, model_version)) FROM ml.predictions").fetchone()
        served = conn.execute(
            "SELECT target_date::VARCHAR, count(*) FROM ml.predictions WHERE model_version = ? GROUP BY ALL", [champion]).fetchall()
    assert rows == distinct
    assert {d: 24 for d in days}.items() <= dict(served).items(), served


@pytest.mark.parametrize("point", ["registered", "gated"])
def test_a_training_killed_before_an_alias_move_then_rerun(serving_home, tmp_path, monkeypatch, point):
    """`registered`: killed after its version is registered, before the challenger alias (the
    version is left without alias or decision). `gated`: killed after the gate tagged its decision,
    before the champion alias could move. Either way the baseline keeps serving, and the next
    runs (a training with its gate, or a prediction) leave registry and mirror equal."""
    import json

    from energy_platform.defs import PREDICT_JOB, TRAIN_JOB
    from energy_platform.orchestration import LEASE_ENV, run_job
    from energy_platform_tests.platform_env import make_env

    home = tmp_path / "home"
    shutil.copytree(serving_home, home)  # relocated on start (the home is copied whole)
    monkeypatch.setenv(LEASE_ENV, str(TTL))
    before = make_env(home)
    champion = _mirror_agrees_with_registry(before).champion().version
    killed = _run_victim(TRAIN_VICTIM, [str(home), point, json.dumps(TINY)], "before-restart",
                         env={LEASE_ENV: str(TTL)}, timeout=420).split()[-1]
    env = make_env(home)
    (dead,) = env.instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))
    from energy_platform.tracking.registry import ModelRegistry

    registry = ModelRegistry(env.settings.mlflow_tracking_uri, env.settings.mlflow_artifacts)
    card = registry.card(killed.removeprefix("v"))
    assert registry.champion().version == champion  # nothing half-moved: the old champion serves
    if point == "registered":
        assert card.aliases == () and card.gate_decision is None
    else:
        assert card.aliases == ("challenger",) and card.gate_decision in ("promoted", "refused")
    time.sleep(TTL + 0.5)  # the dead run's lease expires

    if point == "registered":  # the operator reruns what was killed
        result = run_job(env.defs, TRAIN_JOB, env.instance, run_config={"ops": {"forecaster_model": {"config": TINY}}})
        assert result.success
        orphan = registry.client.get_run(card.run_id)
        assert orphan.info.status == "KILLED"  # ended by the next training's start
    result = run_job(env.defs, PREDICT_JOB, env.instance, partition_range=("2024-12-01", "2024-12-02"))  # again
    assert result.success
    assert env.instance.get_run_by_id(dead.run_id).status == dg.DagsterRunStatus.FAILURE  # reaped by its lease
    registry = _mirror_agrees_with_registry(env)
    _served_by_the_champion(env, registry, ["2024-12-01", "2024-12-02"])


# ---------------------------------------------------------------------------------------------
# Two pipelines at once on one home
# ---------------------------------------------------------------------------------------------

PIPELINE = textwrap.dedent(
    """
    import os, sys, time
    import dagster as dg
    from energy_platform.defs import FEATURES_JOB, INGEST_JOB, build_definitions
    from energy_platform.orchestration import run_job
    from energy_platform.settings import from_env

    print("ready", flush=True)
    while not os.path.exists(sys.argv[4]):  # both start on the fresh home at the same moment
        time.sleep(0.01)
    settings = from_env({"ENERGY_PLATFORM_HOME": sys.argv[1]})
    settings.ensure_dirs()
    instance = dg.DagsterInstance.from_config(str(settings.dagster_home))
    defs = build_definitions(settings)
    print("ingest", run_job(defs, INGEST_JOB, instance, partition_range=(sys.argv[2], sys.argv[3])).run_id, flush=True)
    print("features", run_job(defs, FEATURES_JOB, instance).run_id, flush=True)
    """
)


def test_two_pipelines_at_once_on_one_fresh_home(tmp_path):
    """Like two `energy-platform demo` started together (its ingest and features steps on three
    months, the whole demo being minutes of training): both finish, or one fails with a clear
    error; nothing is stored twice; neither waits for ever. Both touch the fresh home at the same
    moment: they raced on creating the Dagster instance's tables (one died on
    "UNIQUE constraint failed: alembic_version")."""
    home = tmp_path / "home"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ENERGY_PLATFORM_RUN_LEASE_SECONDS": "10"}
    env.pop("DAGSTER_HOME", None)
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-W", "ignore", "-c", PIPELINE, str(home), "2024-01-01", "2024-03-01", str(go)],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
             for _ in range(2)]
    outcomes = []
    try:
        for proc in procs:
            assert proc.stdout.readline().strip() == "ready", proc.stderr.read() if proc.poll() is not None else ""
        started = time.monotonic()
        go.touch()
        for proc in procs:
            out, err = proc.communicate(timeout=420)
            outcomes.append((proc.returncode, out, err))
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    print(f"two pipelines at once: {time.monotonic() - started:.1f} s; return codes {[o[0] for o in outcomes]}")
    assert any(code == 0 for code, _, _ in outcomes), [err[-3000:] for _, _, err in outcomes]
    for code, _out, err in outcomes:
        if code != 0:  # a clear failure: a named error on its last line, not a hang
            print(err[-3000:])
            assert "Error" in err.strip().splitlines()[-1], err
    with connect(home / "warehouse.duckdb", read_only=True) as conn:
        rows, hours = conn.execute("SELECT count(*), count(DISTINCT (date, hour)) FROM raw.prices_hourly").fetchone()
        days, targets = conn.execute("SELECT count(*), count(DISTINCT target_date) FROM features.daily").fetchone()
    assert rows == hours == (31 + 29 + 31) * 24
    assert days == targets > 0
    instance = dg.DagsterInstance.from_config(str(home / "dagster_home"))
    assert not instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.NOT_STARTED]))
    assert not instance.event_log_storage.get_concurrency_info("duckdb_warehouse").claimed_slots
    ingests = [r for r in instance.get_run_records() if r.dagster_run.job_name == "ingest_prices"]
    if all(code == 0 for code, _, _ in outcomes):  # they did run at the same time, taking turns on the pool
        assert len(ingests) == 2 and max(r.start_time for r in ingests) < min(r.end_time for r in ingests)


# ---------------------------------------------------------------------------------------------
# A start killed while MLflow builds its database
# ---------------------------------------------------------------------------------------------

MLFLOW_VICTIM = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    import sqlalchemy
    from sqlalchemy import event

    statements = [0]

    @event.listens_for(sqlalchemy.engine.Engine, "after_cursor_execute")
    def count(*args):
        statements[0] += 1
        if statements[0] == 800:  # about half of MLflow's ~1,700 schema statements
            print("killed", flush=True)
            os.kill(os.getpid(), signal.SIGKILL)

    from energy_platform.tracking.setup import prepare_tracking
    prepare_tracking(f"sqlite:///{sys.argv[1]}/mlflow.db", Path(sys.argv[1]) / "mlartifacts")
    """
)


def test_a_start_killed_while_mlflow_builds_its_database_then_rerun(tmp_path):
    """Found by bench_faults.py: a kill in the middle of MLflow's migrations left a half-built
    `mlflow.db` that every later run refused. Now nothing appears under the real name until
    the schema is whole, and the next start builds it afresh."""
    from energy_platform.tracking.registry import ModelRegistry

    assert _run_victim(MLFLOW_VICTIM, [str(tmp_path)], "before-restart", timeout=180).strip() == "killed"
    assert not (tmp_path / "mlflow.db").exists()
    assert [p.name for p in tmp_path.glob("mlflow.db.creating-*") if not p.name.endswith("-journal")]  # the dead creation
    registry = ModelRegistry(f"sqlite:///{tmp_path}/mlflow.db", tmp_path / "mlartifacts")
    assert registry.cards() == []  # the backend answers
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["mlflow.db"]
