"""Run the platform's Dagster jobs in process against the persistent instance.

Used by the CLI (demo, replay) and the benchmark, so they exercise exactly the definitions
the UI and the daemon load, and leave their runs where the UI shows them.
"""

from __future__ import annotations

import os
import socket

import dagster as dg
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

PID_TAG = "energy_platform/pid"
HOST_TAG = "energy_platform/host"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reap_dead_in_process_runs(instance: dg.DagsterInstance) -> list[str]:
    """Fail the runs of killed CLI processes and free their pool slots.

    An in-process run that is killed stays STARTED and keeps its `duckdb_warehouse` slot for
    ever, so the next run would wait on the pool without end. Only runs this module started on
    this host, whose process is gone, are touched.
    """
    reaped = []
    active = dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING])
    for run in instance.get_runs(filters=active):
        pid, host = run.tags.get(PID_TAG), run.tags.get(HOST_TAG)
        if pid is None or host != socket.gethostname() or _alive(int(pid)):
            continue
        instance.report_run_failed(run, f"process {pid} ended without finishing the run (killed?)")
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        reaped.append(run.run_id)
    return reaped


def run_job(
    defs: dg.Definitions,
    job_name: str,
    instance: dg.DagsterInstance,
    *,
    partition_key: str | None = None,
    partition_range: tuple[str, str] | None = None,
    run_config: dict | None = None,
    tags: dict[str, str] | None = None,
    log_level: str = "WARNING",
) -> dg.ExecuteInProcessResult:
    """One run of `job_name`; a partition range runs as a single run (BackfillPolicy.single_run)."""
    reap_dead_in_process_runs(instance)
    all_tags = {**(tags or {}), PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()}
    if partition_range:
        all_tags[ASSET_PARTITION_RANGE_START_TAG], all_tags[ASSET_PARTITION_RANGE_END_TAG] = partition_range
    run_config = {"loggers": {"console": {"config": {"log_level": log_level}}}, **(run_config or {})}
    job = defs.resolve_job_def(job_name)
    return job.execute_in_process(
        instance=instance, partition_key=partition_key, run_config=run_config, tags=all_tags, raise_on_error=True
    )
