"""Sensors that close the loop: retrain on an ERROR check, record every failed run, and free what
a killed run holds.

They reach the warehouse only through `WarehouseResource` (its location comes from the resource's
configuration, checked at set-up like a run's), the registry through `RegistryResource`, and
otherwise read the Dagster instance: no path baked into the definitions.
"""

import json
from datetime import date

import dagster as dg
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

from energy_platform.defs.resources import RegistryResource, WarehouseResource
from energy_platform.tracking.registry import MIN_FRESH_DAYS

COOLDOWN_DAYS = 7  # a drought drifts for weeks: one retraining per week of new data is enough


def _is_error_failure(record) -> bool:
    if record.status != AssetCheckExecutionRecordStatus.FAILED or record.event is None:
        return False
    evaluation = record.event.dagster_event.event_specific_data
    return evaluation.severity == dg.AssetCheckSeverity.ERROR


def build_retrain_sensor(
    train_job, check_keys: list[dg.AssetCheckKey], live: bool, horizon_days: int
) -> dg.SensorDefinition:
    @dg.sensor(
        job=train_job,
        minimum_interval_seconds=300,
        default_status=dg.DefaultSensorStatus.RUNNING if live else dg.DefaultSensorStatus.STOPPED,
        description="One retraining run per new ERROR result of a drift or accuracy check.",
    )
    def retrain_on_check_errors(context: dg.SensorEvaluationContext, registry: RegistryResource, warehouse: WarehouseResource):
        # The cursor holds the newest check-evaluation id already seen (a check that keeps failing
        # without being re-evaluated requests nothing more) and the data day of the last request
        # (the cooldown counts days of data, so a replay behaves like the live platform). The
        # run key makes a request idempotent if a tick is retried; the cursor moves only on success.
        cursor = json.loads(context.cursor) if context.cursor else {"seen": 0, "last_request_day": None}
        latest = context.instance.event_log_storage.get_latest_asset_check_execution_by_key(check_keys)
        new = [r for r in latest.values() if r.id > cursor["seen"] and r.status != AssetCheckExecutionRecordStatus.PLANNED]
        if not new:
            return dg.SkipReason("no new check results")
        cursor["seen"] = max(r.id for r in new)
        errors = [r for r in new if _is_error_failure(r)]
        if not errors:
            context.update_cursor(json.dumps(cursor))
            return dg.SkipReason(f"{len(new)} new check result(s), none failed at ERROR")
        names = sorted(r.key.name for r in errors)
        day = warehouse.latest_price_day()
        last = cursor["last_request_day"] and date.fromisoformat(cursor["last_request_day"])
        if last and day and (day - last).days < COOLDOWN_DAYS:
            context.update_cursor(json.dumps(cursor))
            return dg.SkipReason(f"ERROR from {', '.join(names)}, but a retraining was requested on data to {last}")
        wait = registry.get().retraining_wait_reason(day, horizon_days, MIN_FRESH_DAYS)
        if wait:
            context.update_cursor(json.dumps(cursor))
            return dg.SkipReason(f"ERROR from {', '.join(names)}, but {wait}")
        cursor["last_request_day"] = day.isoformat() if day else None
        context.update_cursor(json.dumps(cursor))
        run_key = f"retrain-after-check-{cursor['seen']}"
        message = f"retraining requested on data to {day}: ERROR from {', '.join(names)} (run key {run_key})"
        context.log.warning(message)
        warehouse.record_alert("retraining_requested", message, once=True)  # a retried tick: one row
        return dg.RunRequest(
            run_key=run_key,
            tags={"energy_platform/trigger": "check_error", "energy_platform/checks": ",".join(names)},
        )

    return retrain_on_check_errors


def _last_line(error) -> str:
    """The innermost cause's message, on one line: a step's own reason, not Dagster's wrapper."""
    while error is not None and error.cause is not None:
        error = error.cause
    lines = [line.strip() for line in (error.message if error else "").splitlines() if line.strip()]
    return lines[-1] if lines else "no message"


def build_failure_sensor(live: bool) -> dg.SensorDefinition:
    @dg.run_failure_sensor(
        default_status=dg.DefaultSensorStatus.RUNNING if live else dg.DefaultSensorStatus.STOPPED,
        description="Every failed run goes to monitoring.alerts (and the log) where the team sees it.",
    )
    def record_run_failures(context: dg.RunFailureSensorContext, warehouse: WarehouseResource) -> None:
        run = context.dagster_run
        message = context.failure_event.message or "run failed"
        reasons = [f"{event.step_key}: {_last_line(event.step_failure_data.error)}" for event in context.get_step_failure_events()]
        if reasons:  # the run's message named the steps only; the cause was in the Dagster UI alone (helper J)
            message = f"{message} {'; '.join(reasons)}"
        context.log.error(f"run {run.run_id} of {run.job_name} failed: {message}")
        warehouse.record_alert("run_failure", message, dagster_run_id=run.run_id, job_name=run.job_name)

    return record_run_failures


def build_lease_reaper_sensor() -> dg.SensorDefinition:
    @dg.sensor(
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING,  # every mode: a killed run blocks every later run
        description="Fails the runs whose lease expired (their process was killed: a command-line run, or a run "
                    "the UI, a schedule or a sensor launched whose worker died in a restart) and frees their "
                    "warehouse pool slot: otherwise the later runs waited behind it for ever (Dagster's run "
                    "monitoring only frees the slots of runs that have ended, and cannot check the default "
                    "launcher's workers). Runs not yet executing are left to run monitoring's start timeout.",
    )
    def reap_expired_run_leases(context: dg.SensorEvaluationContext):
        from energy_platform.orchestration import reap_dead_in_process_runs

        reaped = reap_dead_in_process_runs(context.instance)
        for run_id in reaped:
            context.log.warning(f"run {run_id}: its lease expired (its process was killed): failed, pool slot freed")
        return dg.SkipReason(f"reaped {len(reaped)} run(s) whose lease expired" if reaped else "no expired run lease")

    return reap_expired_run_leases
