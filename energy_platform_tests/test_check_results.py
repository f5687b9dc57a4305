"""A range run leaves no check "Skipped": every planned (check, partition) gets the check's answer."""

from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

from energy_platform.defs import INGEST_JOB
from energy_platform.orchestration import run_job
from energy_platform_tests.platform_env import make_env


def test_a_three_month_ingest_answers_every_planned_partition_of_every_check(tmp_path):
    env = make_env(tmp_path)
    keys = env.defs.resolve_assets_def("raw_prices").partitions_def.get_partition_keys()
    result = run_job(env.defs, INGEST_JOB, env.instance, partition_range=(keys[-3], keys[-1]))
    job = env.defs.resolve_job_def(INGEST_JOB)
    check_keys = list(job.asset_layer.asset_graph.asset_check_keys)
    assert len(check_keys) >= 9
    passed = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    for key in check_keys:
        records = env.instance.event_log_storage.get_asset_check_execution_history(key, limit=100)
        statuses = {r.partition: r.status for r in records}
        assert AssetCheckExecutionRecordStatus.PLANNED not in statuses.values(), (key, statuses)
        assert set(keys[-3:]) <= set(statuses), key  # each partition of the run has its answer
        want = AssetCheckExecutionRecordStatus.SUCCEEDED if passed[key.name] else AssetCheckExecutionRecordStatus.FAILED
        assert {statuses[k] for k in keys[-3:]} == {want}, key
