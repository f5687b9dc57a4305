"""Liveness of in-process runs: a killed run's pool slot comes back on any host, by its lease.

Real processes: the CLI-style run holds the real `duckdb_warehouse` pool (the project's
dagster.yaml), is killed with SIGKILL, and the rerun starts under another host name (a new UTS
namespace, as after a container restart) with a short lease TTL.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg

from energy_platform.defs.resources import WAREHOUSE_POOL
from energy_platform.orchestration import HOST_TAG, LEASE_ENV, LEASE_TAG, PID_TAG, TTL_TAG, reap_dead_in_process_runs
from energy_platform.settings import from_env
from energy_platform_tests import lease_job

TTL = 4.0
ROOT = Path(__file__).resolve().parent.parent


def _home(tmp_path: Path) -> dg.DagsterInstance:
    settings = from_env({"ENERGY_PLATFORM_HOME": str(tmp_path)})
    settings.ensure_dirs()
    return dg.DagsterInstance.from_config(str(settings.dagster_home))


def _start(tmp_path: Path, hostname: str, seconds: float) -> subprocess.Popen:
    """`lease_job` in a subprocess; under `hostname` in its own UTS namespace when we may (root)."""
    cmd = [sys.executable, "-W", "ignore", "-m", "energy_platform_tests.lease_job", str(tmp_path), str(seconds)]
    if os.geteuid() == 0 and shutil.which("unshare"):
        cmd = ["unshare", "-u", "sh", "-c", f'hostname {hostname} && exec "$@"', "sh", *cmd]
    env = {**os.environ, LEASE_ENV: str(TTL), "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def _claimed(instance: dg.DagsterInstance) -> list:
    return instance.event_log_storage.get_concurrency_info(WAREHOUSE_POOL).claimed_slots


def test_a_killed_run_frees_the_pool_for_a_rerun_on_another_host(tmp_path):
    assert lease_job.WAREHOUSE_POOL == WAREHOUSE_POOL
    instance = _home(tmp_path)
    first = _start(tmp_path, "before-restart", 600)
    deadline = time.monotonic() + 90
    while not _claimed(instance):
        assert time.monotonic() < deadline and first.poll() is None, first.stderr.read() if first.poll() is not None else "no slot"
        time.sleep(0.05)
    (slot,) = _claimed(instance)
    time.sleep(2 * TTL)  # a live run outlives its TTL: the heartbeat renews the lease
    held = instance.get_run_by_id(slot.run_id)
    assert held.status == dg.DagsterRunStatus.STARTED and _claimed(instance)
    assert time.time() - float(held.tags[LEASE_TAG]) < TTL
    if os.geteuid() == 0:
        assert held.tags[HOST_TAG] == "before-restart"

    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    killed_at = time.monotonic()
    rerun = _start(tmp_path, "after-restart", 0)
    out, err = rerun.communicate(timeout=TTL + 60)
    elapsed = time.monotonic() - killed_at
    assert rerun.returncode == 0, err
    print(f"rerun after kill -9 and a new host name completed in {elapsed:.1f} s (lease TTL {TTL} s)")
    assert instance.get_run_by_id(out.strip()).status == dg.DagsterRunStatus.SUCCESS
    dead = instance.get_run_by_id(slot.run_id)
    assert dead.status == dg.DagsterRunStatus.FAILURE
    assert not _claimed(instance) and not instance.event_log_storage.get_concurrency_info(WAREHOUSE_POOL).pending_steps


def test_unfinished_runs_with_an_expired_lease_are_failed(tmp_path):
    """NOT_STARTED runs a kill left behind are failed too; fresh leases and foreign runs are kept."""
    instance = _home(tmp_path)
    job = lease_job.DEFS.resolve_job_def(lease_job.JOB)
    now = time.time()
    stale = instance.create_run_for_job(job, tags={LEASE_TAG: f"{now - 3600:.3f}"}).run_id
    fresh = instance.create_run_for_job(job, tags={LEASE_TAG: f"{now:.3f}"}).run_id
    foreign = instance.create_run_for_job(job).run_id  # launched by the UI/daemon: run monitoring's business
    legacy = instance.create_run_for_job(job, tags={PID_TAG: "1", HOST_TAG: "gone"}).run_id  # before leases: last update

    assert reap_dead_in_process_runs(instance, ttl=TTL) == [stale]
    status = {run_id: instance.get_run_by_id(run_id).status for run_id in (stale, fresh, foreign, legacy)}
    assert status[stale] == dg.DagsterRunStatus.FAILURE
    assert status[fresh] == status[foreign] == status[legacy] == dg.DagsterRunStatus.NOT_STARTED
    assert reap_dead_in_process_runs(instance, ttl=TTL) == []  # a failed run is not reaped twice


def test_a_run_s_lease_is_judged_by_its_own_ttl_too(tmp_path):
    """A reaper with a shorter TTL (a test's, a bench's 10 s) took a live run renewing its lease by
    a longer one for dead, failed it and let another writer into the warehouse pool."""
    instance = _home(tmp_path)
    job = lease_job.DEFS.resolve_job_def(lease_job.JOB)
    now = time.time()
    alive = instance.create_run_for_job(job, tags={LEASE_TAG: f"{now - 20:.3f}", TTL_TAG: "60"}).run_id
    dead = instance.create_run_for_job(job, tags={LEASE_TAG: f"{now - 90:.3f}", TTL_TAG: "60"}).run_id
    assert reap_dead_in_process_runs(instance, ttl=TTL) == [dead]
    assert instance.get_run_by_id(alive).status == dg.DagsterRunStatus.NOT_STARTED


def test_a_slot_still_held_by_a_finished_run_is_freed(tmp_path):
    """A reaper killed after failing a dead run but before freeing its slot left the slot claimed
    by a finished run, which no reaper looked at (they scan unfinished runs): every later run of
    the pool waited for ever. Slots of finished runs are freed; a live run's slot is kept."""
    instance = _home(tmp_path)
    job = lease_job.DEFS.resolve_job_def(lease_job.JOB)
    instance.event_log_storage.set_concurrency_slots(WAREHOUSE_POOL, 2)
    failed = instance.create_run_for_job(job, tags={LEASE_TAG: f"{time.time() - 3600:.3f}"})
    live = instance.create_run_for_job(job, tags={LEASE_TAG: f"{time.time():.3f}"})
    for run in (failed, live):
        assert instance.event_log_storage.claim_concurrency_slot(WAREHOUSE_POOL, run.run_id, "pool_holder").is_claimed
    instance.report_run_failed(failed, "killed; its reaper killed too before freeing the slot")
    assert reap_dead_in_process_runs(instance, ttl=TTL) == []
    assert [slot.run_id for slot in _claimed(instance)] == [live.run_id]


def test_a_slot_assigned_to_a_finished_run_s_step_is_freed(tmp_path):
    """Helper E (session 19): a daemon run's worker killed between two pool steps left its next
    step assigned the slot, not claiming it; with `make ui` stopped within run monitoring's 60 s,
    the row stayed and every later CLI run waited behind it for ever. A live run's claim is kept."""
    instance = _home(tmp_path)
    job = lease_job.DEFS.resolve_job_def(lease_job.JOB)
    storage = instance.event_log_storage
    storage.set_concurrency_slots(WAREHOUSE_POOL, 1)
    dead = instance.create_run_for_job(job)  # the daemon's: no lease
    storage.add_pending_step(WAREHOUSE_POOL, dead.run_id, "features_features_drift", should_assign=True)
    instance.report_run_failed(dead, "its worker was killed (SIGKILL)")
    live = instance.create_run_for_job(job, tags={LEASE_TAG: f"{time.time():.3f}"})
    assert not storage.claim_concurrency_slot(WAREHOUSE_POOL, live.run_id, "pool_holder").is_claimed  # behind the dead row
    assert reap_dead_in_process_runs(instance, ttl=TTL) == []
    assert storage.get_concurrency_run_ids() == {live.run_id}
    assert storage.claim_concurrency_slot(WAREHOUSE_POOL, live.run_id, "pool_holder").is_claimed
    assert reap_dead_in_process_runs(instance, ttl=TTL) == [] and [slot.run_id for slot in _claimed(instance)] == [live.run_id]


def test_a_run_waiting_for_the_pool_is_told_who_holds_it(tmp_path):
    """Helper E (session 19): a CLI demo behind a daemon run that will never finish (its process
    group killed) printed nothing for ever. The heartbeat says who holds the pool and what to do."""
    from energy_platform.orchestration import pool_wait_message

    instance = _home(tmp_path)
    job = lease_job.DEFS.resolve_job_def(lease_job.JOB)
    storage = instance.event_log_storage
    storage.set_concurrency_slots(WAREHOUSE_POOL, 1)
    daemons = instance.create_run_for_job(job)
    assert storage.claim_concurrency_slot(WAREHOUSE_POOL, daemons.run_id, "features").is_claimed
    mine = instance.create_run_for_job(job, tags={LEASE_TAG: f"{time.time():.3f}"})
    assert pool_wait_message(instance, mine.run_id) is None  # not waiting yet
    assert not storage.claim_concurrency_slot(WAREHOUSE_POOL, mine.run_id, "raw_prices").is_claimed
    said = pool_wait_message(instance, mine.run_id, after=0)
    assert said.startswith("waiting ") and f" s for pool {WAREHOUSE_POOL} (limit 1): held by run {daemons.run_id}" in said, said
    assert "holds no lease" in said and "terminate it in the Dagster UI" in said
    assert pool_wait_message(instance, mine.run_id, after=60) is None  # said only after a while
    assert pool_wait_message(instance, daemons.run_id, after=0) is None  # the holder is not waiting


def test_the_daemon_s_sensor_frees_the_slot_of_a_killed_command_line_run(tmp_path):
    """Only the next command-line run reaped a killed one: the runs the daemon or the UI launch
    (`make ui`, the live schedules) waited behind its pool slot for ever, since Dagster's run
    monitoring frees only the slots of runs that have ended. The reaper sensor runs in every mode."""
    from energy_platform.defs.sensors import build_lease_reaper_sensor

    instance = _home(tmp_path)
    job = lease_job.DEFS.resolve_job_def(lease_job.JOB)
    dead = instance.create_run_for_job(job, tags={LEASE_TAG: f"{time.time() - 3600:.3f}", TTL_TAG: "30"})
    instance.event_log_storage.claim_concurrency_slot(WAREHOUSE_POOL, dead.run_id, "pool_holder")
    sensor = build_lease_reaper_sensor()
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    with dg.build_sensor_context(instance=instance) as context:
        result = sensor.evaluate_tick(context)
    assert result.skip_message == "reaped 1 run(s) whose lease expired"
    assert instance.get_run_by_id(dead.run_id).status == dg.DagsterRunStatus.FAILURE and not _claimed(instance)


def test_a_ui_re_execution_of_a_command_line_run_is_not_reaped_by_its_copied_lease(tmp_path):
    """Re-executing a failed demo from the UI copies its tags, its stale lease among them: the
    reaper (now a sensor running every 30 s) failed the live re-execution and freed its slot."""
    from energy_platform.orchestration import LEASE_RUN_TAG

    instance = _home(tmp_path)
    job = lease_job.DEFS.resolve_job_def(lease_job.JOB)
    stale = {LEASE_TAG: f"{time.time() - 3600:.3f}", TTL_TAG: "30"}
    parent = instance.create_run_for_job(job, tags=stale)
    child = instance.create_run_for_job(job, tags={**stale, LEASE_RUN_TAG: parent.run_id}, parent_run_id=parent.run_id,
                                        root_run_id=parent.run_id)
    assert reap_dead_in_process_runs(instance, ttl=TTL) == [parent.run_id]
    assert instance.get_run_by_id(child.run_id).status == dg.DagsterRunStatus.NOT_STARTED


def test_the_platform_s_launched_runs_hold_a_lease(tmp_path):
    """Every job the UI, a schedule or a sensor launches runs with the leased executor."""
    from energy_platform.orchestration import leased_in_process_executor
    from energy_platform_tests.platform_env import make_env

    jobs = make_env(tmp_path).defs.get_repository_def().get_all_jobs()
    assert len(jobs) > 3
    for job in jobs:
        assert job.executor_def is leased_in_process_executor, job.name


def test_a_ui_launched_run_whose_worker_died_in_a_restart_gives_its_slot_back(tmp_path):
    """Such a run stayed STARTED with its pool slot for ever: Dagster's run monitoring cannot check
    the default launcher's workers, and the reaper knew only command-line runs' leases. A real
    `dagster dev` launches the run, its whole session is killed (a container restart), and a rerun
    under another host name gets the pool once the lease expires."""
    from energy_platform_tests.platform_env import free_port, graphql, launch_run, wait_for_http

    instance = _home(tmp_path)
    port = free_port()
    cmd = [os.path.join(os.path.dirname(sys.executable), "dagster"), "dev", "-h", "127.0.0.1", "-p", str(port),
           "-m", "energy_platform_tests.lease_job"]
    if os.geteuid() == 0 and shutil.which("unshare"):
        cmd = ["unshare", "-u", "sh", "-c", 'hostname ui-before-restart && exec "$@"', "sh", *cmd]
    log = tmp_path / "dagster_dev.log"
    with open(log, "w") as out:
        ui = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env={
            **os.environ, "ENERGY_PLATFORM_HOME": str(tmp_path), "DAGSTER_HOME": str(instance.root_directory),
            LEASE_ENV: str(TTL), "PYTHONPATH": str(ROOT),
            "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")})
    try:
        wait_for_http(f"http://127.0.0.1:{port}/server_info", ui, log, 180)
        location = graphql(port, "{ workspaceOrError { ... on Workspace { locationEntries { name } } } }")
        run_id = launch_run(port, {
            "selector": {"repositoryLocationName": location["workspaceOrError"]["locationEntries"][0]["name"],
                         "repositoryName": "__repository__", "pipelineName": lease_job.JOB},
            "runConfigData": {"ops": {"pool_holder": {"config": {"seconds": 600}}}}})
        deadline = time.monotonic() + 120
        while [slot.run_id for slot in _claimed(instance)] != [run_id]:
            assert time.monotonic() < deadline and ui.poll() is None, log.read_text()
            time.sleep(0.2)
        time.sleep(2 * TTL)  # the run worker renews the lease
        held = instance.get_run_by_id(run_id)
        assert held.status == dg.DagsterRunStatus.STARTED and time.time() - float(held.tags[LEASE_TAG]) < TTL
        if os.geteuid() == 0:
            assert held.tags[HOST_TAG] == "ui-before-restart"
    finally:
        subprocess.run(["pkill", "-KILL", "-s", str(ui.pid)], check=False)  # the UI, its daemon, code server, run worker
        ui.wait()
    killed_at = time.monotonic()
    time.sleep(1)
    assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.STARTED and _claimed(instance)  # left as it was

    rerun = _start(tmp_path, "after-restart", 0)
    out, err = rerun.communicate(timeout=TTL + 60)
    assert rerun.returncode == 0, err
    print(f"rerun after the UI's session was killed completed in {time.monotonic() - killed_at:.1f} s (lease TTL {TTL} s)")
    assert instance.get_run_by_id(out.strip()).status == dg.DagsterRunStatus.SUCCESS
    dead = instance.get_run_by_id(run_id)
    assert dead.status == dg.DagsterRunStatus.FAILURE and not _claimed(instance)
    message = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.RUN_FAILURE).records[-1].event_log_entry
    assert "run lease expired" in message.dagster_event.message
