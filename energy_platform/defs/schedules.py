"""Schedules: the daily run brings in yesterday's prices (06:00 in the market's time zone,
`ENERGY_PLATFORM_TIMEZONE`: XM's America/Bogota by default)."""


from datetime import timedelta

import dagster as dg
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from energy_platform.defs.resources import RegistryResource, WarehouseResource

# A day published up to a week late is still asked for after its month has turned: the run covers
# the months from (yesterday - LATE_DAYS) to today's. Without it, a month's last day that XM had not
# published by the 1st was never fetched again (the next mornings asked for the new month only),
# and the blocking 24-hours check then stopped every later ingestion and forecast.
LATE_DAYS = 7


# XM down at 06:00 for longer than the client's retries (~15 s) cost the day's forecast: the
# schedule asks again every hour until a run of the day has succeeded (or is running).
RETRY_HOURS = range(7, 12)
DATA_DAY_TAG = "energy_platform/data_day"


def build_daily_ingest_schedule(job, live: bool, timezone: str, partitions_def: dg.PartitionsDefinition) -> dg.ScheduleDefinition:
    @dg.schedule(
        job=job,
        cron_schedule=f"0 6,{RETRY_HOURS[0]}-{RETRY_HOURS[-1]} * * *",
        execution_timezone=timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING if live else dg.DefaultScheduleStatus.STOPPED,
        description=f"Every morning: yesterday's prices, incremental, in one run over the month partitions from "
                    f"{LATE_DAYS} days before yesterday to today's (a late month-end day is asked again; on the 1st "
                    "the new month is materialized, so what depends on it is not held back). Asked again every "
                    f"hour to {RETRY_HOURS[-1]}:00 until a run of the day succeeds (XM down at 06:00).",
    )
    def daily_ingest_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
        today = context.scheduled_execution_time.date()
        yesterday = today - timedelta(days=1)
        hour = context.scheduled_execution_time.hour
        if hour != 6:  # a retry: only when no run of the day has succeeded or is under way
            done = context.instance.get_run_records(dg.RunsFilter(
                job_name=job.name, tags={DATA_DAY_TAG: yesterday.isoformat()},
                statuses=[dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING,
                          dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED],
            ), limit=1)
            if done:
                return dg.SkipReason(f"the run of {yesterday} is {done[0].dagster_run.status.value.lower()}: nothing to retry")
        first = (yesterday - timedelta(days=LATE_DAYS)).replace(day=1).isoformat()
        keys = partitions_def.get_partition_keys(current_time=context.scheduled_execution_time)
        months = [k for k in keys if first <= k <= today.replace(day=1).isoformat()]
        if not months:
            # a key is a month's first day, not the source's last one (helper K)
            newest = f"its newest month is {keys[-1][:7]}" if keys else "it has none"
            return dg.SkipReason(f"no month partition from {first} to {today}: {newest}")
        return dg.RunRequest(
            run_key=f"ingest-{yesterday.isoformat()}" + ("" if hour == 6 else f"-retry-{hour:02d}"),
            tags={DATA_DAY_TAG: yesterday.isoformat(),
                  ASSET_PARTITION_RANGE_START_TAG: months[0], ASSET_PARTITION_RANGE_END_TAG: months[-1]},
        )

    return daily_ingest_schedule


def build_weekly_retraining_schedule(job, live: bool, timezone: str, horizon_days: int) -> dg.ScheduleDefinition:
    @dg.schedule(
        job=job,
        cron_schedule="0 7 * * 1",
        execution_timezone=timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING if live else dg.DefaultScheduleStatus.STOPPED,
        description="Every Monday 07:00: train a challenger on the latest window and gate it, unless a version was "
                    "already trained on the newest stored prices (a retraining the drift sensor asked for after "
                    "06:00, or data that stopped arriving).",
    )
    def weekly_retraining(context: dg.ScheduleEvaluationContext, registry: RegistryResource,
                          warehouse: WarehouseResource) -> dg.RunRequest | dg.SkipReason:
        # the newest stored day, not the clock's yesterday: with the data stuck (a source down, an
        # export that stopped) every Monday trained a twin of the champion on the same days (helper K)
        try:
            stored = warehouse.latest_price_day()
        except Exception as exc:  # the file held by a writer: the clock's yesterday rather than a lost week (helper P)
            context.log.warning(f"warehouse not readable ({type(exc).__name__}): comparing with yesterday's data")
            stored = context.scheduled_execution_time.date() - timedelta(days=1)
        done = registry.get().trained_to(stored, horizon_days)
        if done is not None:
            return dg.SkipReason(f"v{done.version} was trained on data to {done.data_end} already "
                                 f"(the newest stored prices: {stored})")
        today = context.scheduled_execution_time.date()
        return dg.RunRequest(run_key=f"weekly-retraining-{today.isoformat()}", tags={"energy_platform/trigger": "weekly"})

    return weekly_retraining
