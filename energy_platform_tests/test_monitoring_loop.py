"""The feedback loop on a real instance: drift checks fail, the sensor requests one retraining."""

import json
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import dagster as dg
import pytest
from dagster._core.utils import make_new_run_id

from energy_platform.defs import INGEST_JOB, PREDICT_JOB
from energy_platform.orchestration import run_job
from energy_platform.tracking import EXPERIMENT_NAME, MODEL_NAME
from energy_platform.tracking.registry import CHAMPION
from energy_platform.warehouse.db import connect
from energy_platform_tests.platform_env import make_env


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    env = make_env(tmp_path_factory.mktemp("loop"))
    run_job(env.defs, INGEST_JOB, env.instance, partition_range=("2024-01-01", "2024-12-01"))
    return env


def _tick(env, cursor):
    sensor = env.defs.resolve_sensor_def("retrain_on_check_errors")
    resources = {"registry": env.defs.resources["registry"], "warehouse": env.defs.resources["warehouse"]}
    with dg.build_sensor_context(instance=env.instance, cursor=cursor, definitions=env.defs, resources=resources) as context:
        return sensor.evaluate_tick(context)


def _price_drift(result):
    return next(c for c in result.get_asset_check_evaluations() if c.check_name == "price_drift")


def test_price_drift_passes_on_its_own_regime_then_errors_and_requests_one_retraining(env):
    cursor = _tick(env, None).cursor  # whatever the ingest produced so far
    with connect(env.warehouse) as conn:  # a drought: the last four weeks at three times the price
        conn.execute("UPDATE raw.prices_hourly SET price = price * 3 WHERE date > DATE '2024-12-03'")
    result = run_job(env.defs, INGEST_JOB, env.instance, partition_key="2024-06-01")
    check = _price_drift(result)
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    assert check.metadata["drift_share"].value > 0.6
    # The report is an MLflow artifact linked by http (the Dagster UI opens it), the file kept too.
    report, mlflow_run = check.metadata["report"].value, check.metadata["mlflow_run"].value
    assert report.startswith("http://127.0.0.1:5000/#/experiments/") and "/artifactPath/drift_report/price_drift_" in report
    assert report.startswith(mlflow_run) and check.metadata["all_drift_reports"].value.endswith("/runs")
    run_id = mlflow_run.rsplit("/", 1)[1]
    client = env.defs.resources["registry"].get().client
    tags = client.get_run(run_id).data.tags
    assert tags["severity"] == "error"
    assert tags["dagster_run_url"] == f"http://127.0.0.1:3000/runs/{tags['dagster_run_id']}"  # and back to Dagster
    assert [a.path for a in client.list_artifacts(run_id, "drift_report")] == [report.split("/artifactPath/")[1]]
    assert check.metadata["report_file"].value.endswith(".html")
    # older reports are deleted after 30 days (test_report_retention.py): none is that old here
    assert check.metadata["reports_keep_days"].value == 30 and check.metadata["reports_deleted"].value == 0
    assert check.metadata["report_runs_deleted"].value == 0
    with connect(env.warehouse, read_only=True) as conn:  # the warehouse row (and the analysts' table) keeps the link
        stored = conn.execute("SELECT report_url FROM monitoring.drift_checks WHERE check_name = 'price_drift' "
                              "ORDER BY checked_at DESC LIMIT 1").fetchone()[0]
    assert stored == report

    first = _tick(env, cursor)
    assert len(first.run_requests) == 1
    request = first.run_requests[0]
    assert request.job_name in (None, "train_and_gate") and "price_drift" in request.tags["energy_platform/checks"]
    again = _tick(env, first.cursor)  # the same failing result: nothing more
    assert not again.run_requests and "no new check results" in again.skip_message
    retried = _tick(env, cursor)  # a tick retried from the old cursor asks for the same run key
    assert retried.run_requests[0].run_key == request.run_key

    run_job(env.defs, INGEST_JOB, env.instance, partition_key="2024-06-01")  # fails again, same data day
    cooled = _tick(env, first.cursor)
    assert not cooled.run_requests and "was requested on data to 2024-12-31" in cooled.skip_message
    assert json.loads(cooled.cursor)["seen"] > json.loads(first.cursor)["seen"]

    with connect(env.warehouse, read_only=True) as conn:
        rows = conn.execute(
            "SELECT severity, report_path FROM monitoring.drift_checks WHERE check_name = 'price_drift' ORDER BY checked_at"
        ).fetchall()
        alerts = conn.execute("SELECT kind, message FROM monitoring.alerts").fetchall()
    assert rows[-1][0] == "error" and rows[-1][1].endswith(".html")
    # One alert for the one request: the retried tick's alert is deduplicated like its run.
    assert alerts == [("retraining_requested", alerts[0][1])] and request.run_key in alerts[0][1]


def test_no_retraining_while_the_champion_is_too_recent_to_be_compared_with(env):
    """A weekly retraining just promoted a champion: a sensor run now could only be refused by the gate."""
    assert _price_drift(run_job(env.defs, INGEST_JOB, env.instance, partition_key="2024-06-01")).severity == dg.AssetCheckSeverity.ERROR
    fresh = json.dumps({"seen": 0, "last_request_day": None})  # no request of the sensor's own in the way
    # A champion in the registry (the sensor reads it there) trained to 2024-12-24, data to 12-31.
    # With H = 2 the gate could compare on target days 12-27..12-31 only (cutoff after 12-24): 5 < 7.
    reg = env.defs.resources["registry"].get()
    client = reg.client
    if not client.search_registered_models(f"name = '{MODEL_NAME}'"):
        client.create_registered_model(MODEL_NAME)
    run = client.create_run(client.get_experiment_by_name(EXPERIMENT_NAME).experiment_id)
    version = client.create_model_version(MODEL_NAME, f"{run.info.artifact_uri}/model", run_id=run.info.run_id,
                                          tags={"kind": "model", "data_end": "2024-12-24"}).version
    reg.set_alias(CHAMPION, str(version))
    try:
        held = _tick(env, fresh)
        assert not held.run_requests
        assert f"champion v{version} was trained on data to 2024-12-24: only 5 day(s)" in held.skip_message
        client.set_model_version_tag(MODEL_NAME, version, "data_end", "2024-12-22")  # two days older: 7 days
        assert len(_tick(env, fresh).run_requests) == 1
    finally:
        client.delete_registered_model_alias(MODEL_NAME, CHAMPION)
        client.delete_model_version(MODEL_NAME, version)


def test_a_failed_run_is_recorded_as_an_alert(env):
    with pytest.raises(Exception, match="cannot forecast 2024-01-05"):  # its history starts before the stored prices
        run_job(env.defs, PREDICT_JOB, env.instance, partition_key="2024-01-05")
    run = env.instance.get_runs(filters=dg.RunsFilter(job_name=PREDICT_JOB, statuses=[dg.DagsterRunStatus.FAILURE]))[0]
    failure = next(e for e in env.instance.all_logs(run.run_id) if e.dagster_event and e.dagster_event.event_type_value == "PIPELINE_FAILURE")
    sensor = env.defs.resolve_sensor_def("record_run_failures")
    context = dg.build_run_status_sensor_context(
        sensor_name="record_run_failures", dagster_instance=env.instance, dagster_run=run, dagster_event=failure.dagster_event,
        resources={"warehouse": env.defs.resources["warehouse"]},
    ).for_run_failure()
    sensor(context)
    with connect(env.warehouse, read_only=True) as conn:
        alert = conn.execute("SELECT kind, job_name, dagster_run_id, message FROM monitoring.alerts WHERE kind = 'run_failure'").fetchall()
    assert [a[:3] for a in alert] == [("run_failure", PREDICT_JOB, run.run_id)]
    assert "predictions: " in alert[0][3] and "cannot forecast 2024-01-05" in alert[0][3], alert  # the step's reason (helper J)


def test_schedules_and_their_default_status(env):
    weekly = env.defs.resolve_schedule_def("weekly_retraining")
    assert weekly.cron_schedule == "0 7 * * 1" and weekly.execution_timezone == "America/Bogota"
    assert weekly.default_status == dg.DefaultScheduleStatus.STOPPED  # offline source
    live = make_env(env.settings.home / "live", source="xm")
    assert live.defs.resolve_schedule_def("weekly_retraining").default_status == dg.DefaultScheduleStatus.RUNNING
    assert live.defs.resolve_sensor_def("retrain_on_check_errors").default_status == dg.DefaultSensorStatus.RUNNING
    daily = live.defs.resolve_schedule_def("daily_ingest_schedule")
    tick = datetime(2026, 11, 27, 6, 0, tzinfo=ZoneInfo("America/Bogota"))
    with dg.build_schedule_context(scheduled_execution_time=tick, repository_def=live.defs.get_repository_def()) as context:
        request = daily.evaluate_tick(context).run_requests[0]
    assert request.run_key == "ingest-2026-11-26"
    assert (request.tags["dagster/asset_partition_range_start"], request.tags["dagster/asset_partition_range_end"]) == ("2026-11-01", "2026-11-01")


def test_the_daily_ingestion_is_asked_again_every_hour_until_a_run_of_the_day_succeeds(env):
    """XM down at 06:00 for longer than the client's retries cost the day's forecast: the 06:00
    run failed and nothing asked again. Now 07:00..11:00 ask again unless a run of the day
    succeeded or is under way."""
    live = make_env(env.settings.home / "live_retry", source="xm")
    daily = live.defs.resolve_schedule_def("daily_ingest_schedule")
    assert daily.cron_schedule == "0 6,7-11 * * *"
    repo = live.defs.get_repository_def()

    def tick(hour: int):
        when = datetime(2026, 11, 27, hour, 0, tzinfo=ZoneInfo("America/Bogota"))
        with dg.build_schedule_context(instance=live.instance, scheduled_execution_time=when, repository_def=repo) as context:
            return daily.evaluate_tick(context)

    def add_run(status: dg.DagsterRunStatus) -> None:
        live.instance.add_run(dg.DagsterRun(job_name=INGEST_JOB, run_id=make_new_run_id(), status=status,
                                            tags={"energy_platform/data_day": "2026-11-26"}))

    assert [r.run_key for r in tick(6).run_requests] == ["ingest-2026-11-26"]
    add_run(dg.DagsterRunStatus.FAILURE)  # XM answered 500s
    assert [r.run_key for r in tick(7).run_requests] == ["ingest-2026-11-26-retry-07"]
    add_run(dg.DagsterRunStatus.SUCCESS)
    later = tick(8)
    assert not later.run_requests and "the run of 2026-11-26 is success: nothing to retry" in later.skip_message


def test_short_replay_shows_the_loop(tmp_path, monkeypatch):
    from energy_platform.replay import run_replay
    from energy_platform.settings import get_settings

    monkeypatch.setenv("ENERGY_PLATFORM_HOME", str(tmp_path))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    get_settings.cache_clear()
    lines: list[str] = []
    try:
        logs = run_replay(date(2015, 7, 3), 4, echo=lines.append, training={"n_members": 1})  # Friday to Monday
    finally:
        get_settings.cache_clear()
    text = "\n".join(lines)
    assert len(logs) == 4
    assert "GATE PROMOTED: first champion" in lines[1]
    assert "weekly retraining: RETRAINED" in text  # 2015-07-06 is a Monday
    assert "GATE" in logs[3].line() and "rolling_rmae" in logs[-1].line()
    with connect(tmp_path / "warehouse.duckdb", read_only=True) as conn:
        accuracy_days = conn.execute("SELECT count(DISTINCT target_date) FROM monitoring.forecast_accuracy").fetchall()[0][0]
        drift_rows = conn.execute("SELECT count(*) FROM monitoring.drift_checks").fetchall()[0][0]
    # + the set-up ingest and features runs, + the features drift check of the two trainings (the set-up
    # one and the weekly one), which bring the feature store up to date first
    assert accuracy_days == 2 and drift_rows == 3 * 4 + 2 + 2
    assert (tmp_path / "analytics.duckdb").exists()


def test_accuracy_partitions_end_at_the_last_day_whose_prices_can_have_arrived(env):
    """Eager automation materializes the newest partition: for accuracy it must be a realised day."""
    accuracy = env.defs.resolve_assets_def("forecast_accuracy").partitions_def.get_partition_keys()
    predictions = env.defs.resolve_assets_def("predictions").partitions_def.get_partition_keys()
    assert (accuracy[-1], predictions[-1]) == ("2024-12-31", "2025-01-02")
    live = make_env(env.settings.home / "live2", source="xm")
    yesterday = (datetime.now(ZoneInfo("America/Bogota")).date() - timedelta(days=1)).isoformat()
    assert live.defs.resolve_assets_def("forecast_accuracy").partitions_def.get_partition_keys()[-1] == yesterday


def test_the_analysts_file_is_republished_after_a_new_forecast_though_most_days_were_never_forecast(tmp_path):
    """`eager()` waited until no partition of predictions or forecast_accuracy (daily, from 2015)
    was missing, and a platform forecasts recent days only: automation never republished the file."""
    env = make_env(tmp_path, source="xm")
    now = datetime(2025, 2, 2, 7, 30, tzinfo=ZoneInfo("America/Bogota"))
    with dg.instance_for_test() as instance:
        def mat(key: str, partition: str | None = None) -> None:
            instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=key, partition=partition))

        for key in ("champion_model", "analytics_snapshot"):
            mat(key)
        first = dg.evaluate_automation_conditions(defs=env.defs, instance=instance, evaluation_time=now)
        mat("predictions", "2025-02-03")  # this morning's forecast
        result = dg.evaluate_automation_conditions(defs=env.defs, instance=instance, evaluation_time=now, cursor=first.cursor)
    [snapshot] = [r for r in result.results if r.key == dg.AssetKey("analytics_snapshot")]
    assert snapshot.true_subset.size == 1


def test_a_day_scored_late_because_its_prices_were_incomplete_is_scored_when_they_complete(tmp_path):
    """XM published 2025-01-30 with an hour missing: its accuracy run failed (prices incomplete) and
    `eager()` only ever asked for the newest day, so the day was never scored once the hour came."""
    env = make_env(tmp_path, source="xm")
    now = datetime(2025, 2, 2, 7, 30, tzinfo=ZoneInfo("America/Bogota"))
    days = [(date(2025, 1, 28) + timedelta(days=i)).isoformat() for i in range(5)]  # 01-28..02-01
    with dg.instance_for_test() as instance:
        def mat(key: str, partition: str | None = None) -> None:
            instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=key, partition=partition))

        for month in ("2025-01-01", "2025-02-01"):
            mat("raw_prices", month)
        for day in days:
            mat("predictions", day)
            if day != "2025-01-30":
                mat("forecast_accuracy", day)
        first = dg.evaluate_automation_conditions(defs=env.defs, instance=instance, evaluation_time=now)
        mat("raw_prices", "2025-01-01")  # the next morning's run stores the late hour of 01-30
        result = dg.evaluate_automation_conditions(defs=env.defs, instance=instance, evaluation_time=now, cursor=first.cursor)
    [accuracy] = [r for r in result.results if r.key == dg.AssetKey("forecast_accuracy")]
    asked = {k.partition_key for k in accuracy.true_subset.expensively_compute_asset_partitions()}
    assert "2025-01-30" in asked and min(asked) >= "2025-01-28", asked  # never the days the platform did not forecast
