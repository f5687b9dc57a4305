"""`kill -9` at chosen points of real processes, then a rerun: what the other fault tests do not reach.

Each victim is a real Python process that SIGKILLs itself at a chosen point (a wrapped function:
no teardown, no `finally`), started under another host name (a new UTS namespace, as after a
container restart) and, where a pid matters, in a new PID namespace whose pid is one a live
process holds outside it (a pid reused after a restart). Every subprocess has a timeout.

Covered here: a training killed after registering its version and before the challenger alias,
and one killed inside the gate before the champion alias moves (registry and `ml.model_versions`
must agree after the next run, and predictions must be served); the analytics publish killed
between its finished temp file and the atomic replace; two pipelines at once on one home.
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
    done = subprocess.run(_command(code, args, hostname, pid), capture_output=True, text=True, timeout=timeout,
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
