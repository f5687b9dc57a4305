"""A range run leaves no check "Skipped": each whole-table check is planned and answered once, and
a run planned by Dagster's own processes (per partition) gets an answer for every partition."""

import dagster as dg
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus
from dagster._core.storage.dagster_run import DagsterRun

from energy_platform import dagster_planning, orchestration
from energy_platform.defs import INGEST_JOB
from energy_platform.orchestration import run_job
from energy_platform_tests.platform_env import make_env


def _range_run(tmp_path):
    env = make_env(tmp_path)
    keys = env.defs.resolve_assets_def("raw_prices").partitions_def.get_partition_keys()
    result = run_job(env.defs, INGEST_JOB, env.instance, partition_range=(keys[-3], keys[-1]))
    check_keys = list(env.defs.resolve_job_def(INGEST_JOB).asset_layer.asset_graph.asset_check_keys)
    assert len(check_keys) >= 9
    passed = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    history = {key: env.instance.event_log_storage.get_asset_check_execution_history(key, limit=500) for key in check_keys}
    return env, keys[-3:], passed, history


def _status(passed: bool) -> AssetCheckExecutionRecordStatus:
    return AssetCheckExecutionRecordStatus.SUCCEEDED if passed else AssetCheckExecutionRecordStatus.FAILED


def test_a_three_month_ingest_plans_and_answers_each_whole_table_check_once(tmp_path):
    env, _, passed, history = _range_run(tmp_path)
    for key, records in history.items():
        assert [(r.partition, r.status) for r in records] == [(None, _status(passed[key.name]))], key
    # the monthly operating assets are planned once too, not once per month of the run
    run_id = env.instance.get_runs(limit=1)[0].run_id
    planned = env.instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED).records
    assert sum(r.event_log_entry.dagster_event.asset_key == dg.AssetKey("raw_hydrology") for r in planned) == 1


def test_a_run_planned_per_partition_by_dagster_gets_an_answer_for_each(tmp_path, monkeypatch):
    # how the UI and the daemon plan a range run: Dagster's own planning, unpatched
    monkeypatch.setattr(orchestration, "plan_unpartitioned_entities_once", lambda: None)
    monkeypatch.setattr(DagsterRun, "get_resolved_partitions_subset_for_events", dagster_planning.DAGSTERS_OWN)
    _, keys, passed, history = _range_run(tmp_path)
    for key, records in history.items():
        statuses = {r.partition: r.status for r in records}
        assert AssetCheckExecutionRecordStatus.PLANNED not in statuses.values(), (key, statuses)
        assert {statuses[k] for k in keys} == {_status(passed[key.name])}, key
