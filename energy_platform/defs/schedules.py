"""Schedules: the daily run brings in yesterday's prices (06:00 in the market's time zone,
`ENERGY_PLATFORM_TIMEZONE`: XM's America/Bogota by default)."""


from datetime import timedelta

import dagster as dg


def build_daily_ingest_schedule(job, live: bool, timezone: str) -> dg.ScheduleDefinition:
    @dg.schedule(
        job=job,
        cron_schedule="0 6 * * *",
        execution_timezone=timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING if live else dg.DefaultScheduleStatus.STOPPED,
        description="Every morning: yesterday's prices (the month partition that holds them, incremental).",
    )
    def daily_ingest_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        yesterday = context.scheduled_execution_time.date() - timedelta(days=1)
        return dg.RunRequest(
            run_key=f"ingest-{yesterday.isoformat()}",
            partition_key=yesterday.replace(day=1).isoformat(),
            tags={"energy_platform/data_day": yesterday.isoformat()},
        )

    return daily_ingest_schedule
