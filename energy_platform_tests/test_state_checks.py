"""Damaged state is refused at start, in one line naming the file and the remedy.

Real files in tmp_path: a ten-year warehouse written by the ingestion code, then truncated to
1 MiB (it still opens and shows its schema, which is what let a run get past step 1 before),
or overwritten with garbage; an `mlflow.db` overwritten with garbage.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from energy_platform.defs import INGEST_JOB
from energy_platform.errors import StateError
from energy_platform.orchestration import run_job
from energy_platform.sources.sample import SampleSource
from energy_platform.state import check_state
from energy_platform.warehouse.db import check_warehouse
from energy_platform.warehouse.ingest import ingest_range
from energy_platform_tests.platform_env import make_env

ROOT = Path(__file__).resolve().parent.parent
GARBAGE = b"\x00not a database, just bytes\xff" * 40_000


def _truncated_warehouse(home: Path) -> Path:
    warehouse = home / "warehouse.duckdb"
    ingest_range(warehouse, SampleSource(), date(2015, 1, 1), date(2024, 12, 31))
    check_warehouse(warehouse)  # whole: passes
    assert warehouse.stat().st_size > 2 << 20
    os.truncate(warehouse, 1 << 20)
    with duckdb.connect(str(warehouse), read_only=True) as conn:  # what fooled the platform: it opens
        assert conn.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'prices_hourly'").fetchone() == (1,)
    return warehouse


def _garbage(path: Path) -> Path:
    path.write_bytes(GARBAGE)
    return path


DAMAGE = {
    "truncated warehouse": (_truncated_warehouse, "warehouse {path} is damaged (1,048,576 bytes where its header declares"),
    "garbage warehouse": (lambda home: _garbage(home / "warehouse.duckdb"), "warehouse {path} is damaged (IO Error:"),
    "garbage mlflow.db": (lambda home: _garbage(home / "mlflow.db"), "MLflow database {path} is unreadable (file is not a database)"),
}


def _assert_one_line(message: str, path: Path, start: str) -> None:
    assert "\n" not in message
    assert message.startswith(start.format(path=path)), message
    assert "restore it from a backup" in message and f"mv {path} {path}.damaged" in message


@pytest.mark.parametrize("case", DAMAGE)
def test_damaged_state_is_refused_in_one_line(tmp_path, case):
    damage, start = DAMAGE[case]
    path = damage(tmp_path)
    with pytest.raises(StateError) as refused:
        check_state(tmp_path / "warehouse.duckdb", f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path / "mlartifacts")
    _assert_one_line(str(refused.value), path, start)


@pytest.mark.parametrize("case", DAMAGE)
def test_the_cli_prints_one_line_and_exits_non_zero(tmp_path, case):
    damage, start = DAMAGE[case]
    path = damage(tmp_path)
    before = path.read_bytes()
    env = {**os.environ, "ENERGY_PLATFORM_HOME": str(tmp_path), "PYTHONPATH": str(ROOT)}
    env.pop("DAGSTER_HOME", None)
    done = subprocess.run([sys.executable, "-W", "ignore", "-m", "energy_platform.cli", "demo"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert lines[0].startswith("energy-platform: ")
    _assert_one_line(lines[0].removeprefix("energy-platform: "), path, start)
    assert "[1/6]" not in done.stdout  # nothing ran
    assert path.read_bytes() == before  # and nothing touched the damaged file


def test_a_dagster_run_fails_before_writing_on_a_damaged_home(tmp_path):
    """The same check guards runs launched by the UI or the daemon: the warehouse resource's set-up."""
    env = make_env(tmp_path)
    db = _garbage(env.settings.mlflow_db_path)
    with pytest.raises(Exception) as failure:
        run_job(env.defs, INGEST_JOB, env.instance, partition_key="2016-01-01")
    error, causes = failure.value, []
    while error is not None:
        causes.append(error)
        error = error.__cause__
    states = [c for c in causes if isinstance(c, StateError)]
    assert states, causes
    _assert_one_line(str(states[0]), db, DAMAGE["garbage mlflow.db"][1])
    assert not env.warehouse.exists()  # step 1 wrote nothing
    (run,) = env.instance.get_runs()
    assert run.status == dg.DagsterRunStatus.FAILURE


def test_an_mlflow_write_killed_in_its_commit_is_rolled_back_not_called_damaged(tmp_path):
    """A process killed while committing to `mlflow.db` (a registry write of a killed training or
    gate) leaves a hot journal. Only a read-write open may roll it back; the read-only check took
    the file for damaged ("attempt to write a readonly database") and every command and run refused
    to start, telling the operator to move the registry aside."""
    import sqlite3

    from energy_platform.tracking.setup import check_tracking_db, create_tracking_db

    db = tmp_path / "mlflow.db"
    create_tracking_db(db)
    with sqlite3.connect(db) as conn:
        before = conn.execute("SELECT count(*) FROM experiments").fetchone()[0]
    victim = f"""
import os, signal, sqlite3
c = sqlite3.connect({str(db)!r}, isolation_level=None)
c.execute("PRAGMA cache_size=1")  # the writer's pages spill into the file before its commit
c.execute("BEGIN")
c.execute("UPDATE experiments SET name = name || '-half-written'")
c.execute("CREATE TABLE junk AS WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r WHERE i < 20000) "
          "SELECT i, hex(randomblob(100)) AS b FROM r")
os.kill(os.getpid(), signal.SIGKILL)
"""
    assert subprocess.run([sys.executable, "-c", victim]).returncode == -9
    assert (tmp_path / "mlflow.db-journal").exists()
    check_tracking_db(db)  # raised StateError "is unreadable (attempt to write a readonly database)"
    with sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True) as conn:
        names = [r[0] for r in conn.execute("SELECT name FROM experiments")]
        assert len(names) == before and not any(n.endswith("-half-written") for n in names)
        assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'junk'").fetchone() == (0,)
