"""Whole-table checks in a partitioned run, answered for every partition the run planned them for.

Dagster 1.13 plans one evaluation of each check per partition of a range run (the ten-year
backfill plans 120, even for the unpartitioned hydrology and ONI assets it materializes
alongside), but a check returns one result, recorded without a partition: the UI then lists the
120 planned ones as "Skipped" around it. Runs of our CLI, demo and replay are planned once per
unpartitioned check (`dagster_planning.py`), so this answers nothing there; it answers the runs
that Dagster's own processes plan (the UI's Materialize, the daemon). Our checks on raw tables look at the whole table, so their one answer is
the answer for every partition the run wrote: it is logged once per planned partition (same
outcome, a note saying so), then returned as usual (blocking acts on the returned one).
"""

from __future__ import annotations

import dagster as dg
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

PLANNED_LIMIT = 100_000  # more than any backfill's partitions


def for_every_planned_partition(context: dg.AssetCheckExecutionContext, result: dg.AssetCheckResult) -> dg.AssetCheckResult:
    if not context.run.is_partitioned:
        return result
    spec_key = context.check_specs[0].key  # a single check; a multi-check's results name theirs
    key = dg.AssetCheckKey(result.asset_key or spec_key.asset_key, result.check_name or spec_key.name)
    planned = context.instance.event_log_storage.get_asset_check_execution_history(
        key, limit=PLANNED_LIMIT, status={AssetCheckExecutionRecordStatus.PLANNED}
    )
    partitions = sorted(r.partition for r in planned if r.run_id == context.run.run_id and r.partition is not None)
    for partition in partitions:
        context.op_execution_context.log_event(dg.AssetCheckEvaluation(
            asset_key=key.asset_key, check_name=key.name, passed=result.passed,
            metadata={**(result.metadata or {}), "scope": f"whole table, as of this run ({partitions[0]}..{partitions[-1]})"},
            severity=result.severity, description=result.description, blocking=False, partition=partition,
        ))
    return result
