"""Run the platform's Dagster jobs in process against the persistent instance.

Used by the CLI (demo, replay) and the benchmark, so they exercise exactly the definitions
the UI and the daemon load, and leave their runs where the UI shows them.

An in-process run that is killed stays STARTED (or NOT_STARTED, STARTING) and keeps its
`duckdb_warehouse` slot for ever, and the CLI has no daemon to notice. So each run holds a
lease: the tag `energy_platform/lease` (unix seconds) that a background thread renews every
`ttl / 6` seconds in the instance itself. A run whose lease is older than the TTL is dead, on
any host and whatever became of its pid: it is reported failed and its pool slots freed. The
same thread reaps other runs while this one waits on the pool, so a rerun started right after
a kill proceeds once the dead lease expires instead of waiting for ever.

Runs the UI, schedules and sensors launch hold the same lease, renewed by their run worker
(`leased_in_process_executor`): a container restart killed their worker, and such a run stayed
STARTED with its pool slot for ever, since Dagster's run monitoring cannot check the default
launcher's workers. The reaper sensor (and any command-line run) fails it once its lease expires.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid

import dagster as dg
from dagster._core.definitions.executor_definition import IN_PROC_CONFIG
from dagster._core.errors import DagsterAssetCheckFailedError
from dagster._core.execution.retries import RetryMode
from dagster._core.execution.step_dependency_config import StepDependencyConfig
from dagster._core.executor.in_process import InProcessExecutor
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from energy_platform.dagster_planning import plan_unpartitioned_entities_once
from energy_platform.errors import RunBlockedError
from energy_platform.settings import LEASE_ENV
from energy_platform.settings import lease_seconds as settings_lease_seconds

PID_TAG = "energy_platform/pid"  # informational: where the run ran
HOST_TAG = "energy_platform/host"
LEASE_TAG = "energy_platform/lease"
TTL_TAG = "energy_platform/lease_ttl"  # the TTL its own heartbeat renews the lease by
LEASE_RUN_TAG = "energy_platform/lease_run"  # the run the lease was made for: a UI re-execution copies its parent's tags
HEARTBEATS_PER_LEASE = 6  # a live run is reaped only after missing this many renewals in a row

UNFINISHED = [
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]

log = logging.getLogger(__name__)


def lease_seconds() -> float:
    """The lease TTL: `ENERGY_PLATFORM_RUN_LEASE_SECONDS`, default 30 s."""
    return settings_lease_seconds(os.environ.get(LEASE_ENV))


def _lease_of(record: dg.RunRecord) -> float | None:
    """Last heartbeat of a run this module started; runs started before leases use their last update."""
    run = record.dagster_run
    tags = run.tags
    if tags.get(LEASE_RUN_TAG, run.run_id if run.parent_run_id is None else None) != run.run_id:
        return None  # a re-execution from the UI, which copied the lease of the CLI run it re-executes
    if LEASE_TAG in tags:
        return float(tags[LEASE_TAG])
    if PID_TAG in tags:
        return record.update_timestamp.timestamp()
    return None  # not yet executing (Dagster's start timeout looks after it) or from before leases


def reap_dead_in_process_runs(instance: dg.DagsterInstance, ttl: float | None = None) -> list[str]:
    """Fail the unfinished runs whose lease expired and free their pool slots; return their ids.

    A run's lease is judged by the longer of its own TTL and `ttl`: a reaper with a shorter one (a
    test's, a bench's) once took a live run renewing every 10 s for dead. Slots are freed before
    the run is failed, and slots still held by finished runs are freed too: a reaper killed between
    the two steps left a failed run holding its slot, which no later reaper looked at."""
    ttl = lease_seconds() if ttl is None else ttl
    reaped = []
    for record in instance.get_run_records(filters=dg.RunsFilter(statuses=UNFINISHED)):
        lease, run = _lease_of(record), record.dagster_run
        limit = max(ttl, float(run.tags.get(TTL_TAG) or 0))
        age = time.time() - lease if lease is not None else None
        if age is None or age <= limit:
            continue
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        instance.report_run_failed(
            run, f"run lease expired {age:.0f} s ago (TTL {limit:.0f} s): its process on "
            f"{run.tags.get(HOST_TAG, '?')} ended without finishing the run (killed or restarted?)"
        )
        reaped.append(run.run_id)
    _free_slots_of_finished_runs(instance)
    return reaped


def _free_slots_of_finished_runs(instance: dg.DagsterInstance) -> None:
    """Claimed slots and pending rows alike: a step assigned a slot it had not yet claimed blocks
    the pool as a claimed one does (helper E, session 19: a daemon run killed between two pool
    steps left its next step assigned; with `make ui` stopped within run monitoring's 60 s, every
    later CLI run waited for ever)."""
    storage = instance.event_log_storage
    holders = set(storage.get_concurrency_run_ids())
    for pool in storage.get_concurrency_keys():
        holders |= {slot.run_id for slot in storage.get_concurrency_info(pool).claimed_slots if slot.run_id}
    for run_id in holders:
        run = instance.get_run_by_id(run_id)
        if run is None or run.is_finished:
            log.warning("freeing the pool slots and claims of finished run %s", run_id)
            storage.free_concurrency_slots_for_run(run_id)


POOL_WAIT_SAY_AFTER_SECONDS = 30.0


def pool_wait_message(instance: dg.DagsterInstance, run_id: str, after: float = POOL_WAIT_SAY_AFTER_SECONDS) -> str | None:
    """Who holds the pool that `run_id` has waited on for more than `after` seconds, or None.

    A CLI run behind a run that will never finish (the daemon's, its process group killed) waited
    in silence (helper E, session 19): a CLI run's holder is reaped when its lease expires, a UI
    or daemon run's only when someone terminates it."""
    storage = instance.event_log_storage
    now = time.time()
    for pool in storage.get_concurrency_keys():
        info = storage.get_concurrency_info(pool)
        waiting = [p for p in info.pending_steps if p.run_id == run_id and p.assigned_timestamp is None
                   and now - p.enqueued_timestamp.timestamp() > after]
        if not waiting:
            continue
        holders = ({c.run_id for c in info.claimed_slots} | {p.run_id for p in info.pending_steps if p.assigned_timestamp}) - {run_id}
        said = []
        for holder in sorted(h for h in holders if h):
            record = instance.get_run_record_by_id(holder)
            run = record.dagster_run if record else None
            if run is None:
                said.append(f"run {holder} (not in this instance)")
            elif _lease_of(record) is not None:
                said.append(f"run {holder} of {run.job_name} ({run.status.value}; reaped once its lease expires "
                            "if its process is gone)")
            else:
                said.append(f"run {holder} of {run.job_name} ({run.status.value}; holds no lease, started before "
                            "its steps or by an older version: if it is not running any more, terminate it in the Dagster UI, "
                            "or mark it failed)")
        return (f"waiting {now - min(p.enqueued_timestamp.timestamp() for p in waiting):.0f} s for pool {pool} "
                f"(limit {info.slot_count}): held by {'; '.join(said) or 'no run (a slot being handed over)'}")
    return None


class _Heartbeat(threading.Thread):
    """Renews one run's lease and reaps expired ones until stopped."""

    def __init__(self, instance: dg.DagsterInstance, run_id: str, ttl: float):
        super().__init__(name=f"lease-{run_id[:8]}", daemon=True)
        self.instance, self.run_id, self.ttl = instance, run_id, ttl
        self.stopped = threading.Event()
        self.next_wait_note = 0.0

    def run(self) -> None:
        # The lease stamped before planning may be older than a TTL when the run record appears (a
        # long plan): renew it as soon as the record exists, before another process's reaper looks.
        while not self.stopped.wait(0.2):
            try:
                if self.instance.has_run(self.run_id):
                    self.instance.add_run_tags(self.run_id, {LEASE_TAG: f"{time.time():.3f}"})
                    break
            except Exception as exc:
                log.warning("run lease heartbeat failed: %s", exc)
        while not self.stopped.wait(self.ttl / HEARTBEATS_PER_LEASE):
            try:
                if self.instance.has_run(self.run_id):
                    self.instance.add_run_tags(self.run_id, {LEASE_TAG: f"{time.time():.3f}"})
                for run_id in reap_dead_in_process_runs(self.instance, self.ttl):
                    log.warning("reaped run %s: its lease expired", run_id)
                waiting = pool_wait_message(self.instance, self.run_id)
                if waiting and time.monotonic() >= self.next_wait_note:
                    log.warning(waiting)
                    self.next_wait_note = time.monotonic() + 300  # again every 5 min while it waits
            except Exception as exc:  # a busy SQLite must not kill the heartbeat; the next beat retries
                log.warning("run lease heartbeat failed: %s", exc)


def lease_tags(run_id: str, ttl: float) -> dict[str, str]:
    """The tags that make `run_id` a leased run of this process, its lease stamped now."""
    return {
        PID_TAG: str(os.getpid()),
        HOST_TAG: socket.gethostname(),
        LEASE_TAG: f"{time.time():.3f}",
        TTL_TAG: f"{ttl:g}",
        LEASE_RUN_TAG: run_id,
    }


class _LeasedInProcessExecutor(InProcessExecutor):
    """Dagster's in-process executor, the run's lease renewed while its steps run (or wait on the pool)."""

    def execute(self, plan_context, execution_plan):
        instance, run_id, ttl = plan_context.instance, plan_context.run_id, lease_seconds()
        instance.add_run_tags(run_id, lease_tags(run_id, ttl))
        heartbeat = _Heartbeat(instance, run_id, ttl)
        heartbeat.start()
        try:
            yield from super().execute(plan_context, execution_plan)
        finally:
            heartbeat.stopped.set()
            heartbeat.join()


@dg.executor(name="in_process_with_lease", config_schema=IN_PROC_CONFIG)
def leased_in_process_executor(init_context: dg.InitExecutorContext) -> InProcessExecutor:
    """The executor of every run the UI, a schedule or a sensor launches (`execute_in_process`, the
    command line's way, brings its own and holds the lease in `run_job`)."""
    config = init_context.executor_config
    return _LeasedInProcessExecutor(
        retries=RetryMode.from_config(config["retries"]),
        step_dependency_config=StepDependencyConfig.from_config(config.get("step_dependency_config")),
    )


def blocked_message(instance: dg.DagsterInstance, run_id: str, job_name: str) -> str:
    """Which blocking checks stopped the run and what each found, from the run's own events."""
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION).records
    found: dict[str, str] = {}
    for record in records:
        ev = record.event_log_entry.dagster_event.event_specific_data
        if ev.blocking and not ev.passed and ev.severity == dg.AssetCheckSeverity.ERROR:
            found.setdefault(f"{ev.asset_key.to_user_string()}.{ev.check_name}", ev.description or "no description")
    checks = "; ".join(f"{name}: {text}" for name, text in found.items()) or "see the run in the Dagster UI"
    return f"run {run_id} of {job_name} stopped by a blocking check ({checks}); nothing downstream was written"


NO_COMPUTE_LOGS = {"module": "dagster._core.storage.noop_compute_log_manager", "class": "NoOpComputeLogManager"}


def command_line_instance(dagster_home: str | os.PathLike) -> dg.DagsterInstance:
    """The home's Dagster instance for a command-line run, without raw stdout/stderr capture: it
    starts `tail` and watcher processes in the terminal's process group, so a Ctrl-C printed their
    two KeyboardInterrupt tracebacks before the command's one line (helper S, session 21). A
    command's output is on its terminal already; its structured logs stay in the run's event log."""
    from dagster._core.instance.ref import InstanceRef

    ref = InstanceRef.from_dir(str(dagster_home), overrides={"compute_logs": NO_COMPUTE_LOGS})
    return dg.DagsterInstance.from_ref(ref)


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
    plan_unpartitioned_entities_once()
    ttl = lease_seconds()
    reap_dead_in_process_runs(instance, ttl)
    run_id = str(uuid.uuid4())
    all_tags = {**(tags or {}), **lease_tags(run_id, ttl)}
    if partition_range:
        all_tags[ASSET_PARTITION_RANGE_START_TAG], all_tags[ASSET_PARTITION_RANGE_END_TAG] = partition_range
    run_config = {"loggers": {"console": {"config": {"log_level": log_level}}}, **(run_config or {})}
    job = defs.resolve_job_def(job_name)
    heartbeat = _Heartbeat(instance, run_id, ttl)
    heartbeat.start()
    try:
        return job.execute_in_process(
            instance=instance, partition_key=partition_key, run_config=run_config, tags=all_tags,
            raise_on_error=True, run_id=run_id,
        )
    except DagsterAssetCheckFailedError as exc:
        raise RunBlockedError(blocked_message(instance, run_id, job_name)) from exc
    finally:
        heartbeat.stopped.set()
        heartbeat.join()
