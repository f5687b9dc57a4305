"""`raw_prices` on the live-source path, against a real HTTP server answering like XM."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from energy_platform.defs import INGEST_JOB
from energy_platform.orchestration import run_job
from energy_platform.warehouse.db import connect
from energy_platform_tests.platform_env import make_env
from energy_platform_tests.xm_server import synthetic_prices


def _rows(env) -> int:
    if not env.warehouse.exists():
        return 0
    with connect(env.warehouse, read_only=True) as conn:
        return conn.execute("SELECT count(*) FROM raw.prices_hourly").fetchall()[0][0]


def test_the_running_month_is_fetched_once_then_only_what_is_missing(tmp_path, fake_xm):
    yesterday = datetime.now(ZoneInfo("America/Bogota")).date() - timedelta(days=1)
    month = yesterday.replace(day=1)
    fake_xm.set_prices(synthetic_prices(month - timedelta(days=40), yesterday))
    env = make_env(tmp_path, source="xm", ENERGY_PLATFORM_XM_URL=fake_xm.url, ENERGY_PLATFORM_ONI_URL=fake_xm.text_url())
    keys = env.defs.resolve_assets_def("raw_prices").partitions_def.get_partition_keys()
    # The live source's partitions run to today's month (Dagster's end_offset, Bogota time); the running
    # month, the one holding yesterday, is that one except on the 1st, when it is the one before.
    assert keys[-1] == (yesterday + timedelta(days=1)).replace(day=1).isoformat() and month.isoformat() in keys

    run_job(env.defs, INGEST_JOB, env.instance, partition_key=month.isoformat())
    days = (yesterday - month).days + 1
    assert _rows(env) == 24 * days
    assert sorted(set(fake_xm.requested_days())) == [month + timedelta(days=i) for i in range(days)]

    fake_xm.clear_requests()
    result = run_job(env.defs, INGEST_JOB, env.instance, partition_key=month.isoformat())
    assert fake_xm.requested_days() == []  # nothing re-downloaded
    assert _rows(env) == 24 * days
    fresh = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}["latest_partition_fresh"]
    assert fresh


def test_a_failing_api_writes_nothing_and_names_the_range(tmp_path, fake_xm):
    yesterday = datetime.now(ZoneInfo("America/Bogota")).date() - timedelta(days=1)
    month = yesterday.replace(day=1)
    fake_xm.set_prices(synthetic_prices(month, yesterday))
    fake_xm.fail_next(50, status=503)
    env = make_env(tmp_path, source="xm", ENERGY_PLATFORM_XM_URL=fake_xm.url, ENERGY_PLATFORM_ONI_URL=fake_xm.text_url())
    from energy_platform.sources.xm import XmApiError

    with pytest.raises(XmApiError, match=f"PrecBolsNaci .*{month.isoformat()}"):
        run_job(env.defs, INGEST_JOB, env.instance, partition_key=month.isoformat())
    assert _rows(env) == 0


def test_a_month_s_last_day_published_late_is_fetched_after_the_month_turned(tmp_path, fake_xm, monkeypatch):
    """XM had not published 10-31 by the 06:00 run of 11-01. The next mornings' schedule ticks still
    cover October, so it is fetched once published (they asked for November only: 10-31 was never
    fetched and the blocking 24-hours check stopped every later ingestion)."""
    from datetime import date, time

    import dagster as dg

    from energy_platform.sources import xm

    today = {"day": date(2026, 10, 30)}
    monkeypatch.setattr(xm.XmSource, "last_date", lambda self: today["day"] - timedelta(days=1))
    env = make_env(tmp_path, source="xm", ENERGY_PLATFORM_XM_URL=fake_xm.url, ENERGY_PLATFORM_ONI_URL=fake_xm.text_url())
    schedule = env.defs.resolve_schedule_def("daily_ingest_schedule")

    def morning(day: date) -> int:
        today["day"] = day
        tick = datetime.combine(day, time(6), ZoneInfo("America/Bogota"))
        with dg.build_schedule_context(instance=env.instance, scheduled_execution_time=tick,
                                       repository_def=env.defs.get_repository_def()) as context:
            [request] = schedule.evaluate_tick(context).run_requests
        run_job(env.defs, INGEST_JOB, env.instance, tags=request.tags)
        with connect(env.warehouse, read_only=True) as conn:
            return conn.execute("SELECT count(*) FROM raw.prices_hourly WHERE date = DATE '2026-10-31'").fetchall()[0][0]

    fake_xm.set_prices(synthetic_prices(date(2026, 10, 1), date(2026, 10, 30)))
    assert morning(date(2026, 10, 31)) == 0
    assert morning(date(2026, 11, 1)) == 0  # 10-31 not published yet
    fake_xm.set_prices(synthetic_prices(date(2026, 10, 1), date(2026, 11, 2)))
    assert morning(date(2026, 11, 2)) == 24
    assert _rows(env) == 24 * 32  # October and 11-01, each hour once


def test_a_forecast_the_stored_prices_cannot_make_yet_names_the_source_s_lag(tmp_path, fake_xm):
    """XM has not published yesterday: the live partitions run to yesterday + H, and the forecast of
    that day failed with 'the feature rows hold 0 row(s) ... (materialize features)', which cannot
    help. It now says which day's prices it needs and what the data can forecast."""
    import dagster as dg

    from energy_platform.defs import PREDICT_JOB

    yesterday = datetime.now(ZoneInfo("America/Bogota")).date() - timedelta(days=1)
    stored = yesterday - timedelta(days=1)
    fake_xm.set_prices(synthetic_prices(stored.replace(day=1), stored))
    env = make_env(tmp_path, source="xm", ENERGY_PLATFORM_XM_URL=fake_xm.url, ENERGY_PLATFORM_ONI_URL=fake_xm.text_url())
    run_job(env.defs, INGEST_JOB, env.instance, partition_key=stored.replace(day=1).isoformat())
    target = env.defs.resolve_assets_def("predictions").partitions_def.get_last_partition_key()
    assert target == str(yesterday + timedelta(days=2))
    with pytest.raises(dg.Failure) as info:
        run_job(env.defs, PREDICT_JOB, env.instance, partition_key=target)
    cause = info.value
    assert cause.description == (f"cannot forecast {target}: it needs the prices of {yesterday}, and the latest stored day is "
                                 f"{stored} (the source is behind, or that day is not ingested yet); the data can forecast up to "
                                 f"{stored + timedelta(days=2)}")
