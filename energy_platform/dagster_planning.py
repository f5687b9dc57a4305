"""One fix to Dagster 1.13's run planning: an unpartitioned check or asset is planned once.

When a run covers a partition range, Dagster plans every check and asset of the run for the
run's partitions, even the ones that have no partitions (`DagsterRun.get_resolved_partitions_
subset_for_events` returns the run's subset when the entity's `partitions_def` is None). Our
whole-table checks and the monthly hydrology and ONI assets are unpartitioned: the ten-year
backfill planned 120 evaluations of each of 21 checks and 120 materializations of each monthly
asset, each then answered by one event of its own (`defs/check_results.py`), ~40 ms apiece in
SQLite: 50 of the 158 s of a two-day replay. With this fix such an entity gets one planned
record, answered by its one result.

Applied by `orchestration.run_job`, the path of the CLI, demo, replay and tests. Runs that
Dagster's own processes create (the UI's Materialize, the daemon's schedules) are planned by
unpatched Dagster: `check_results.for_every_planned_partition` still answers what they plan.
"""

from __future__ import annotations

from dagster._core.storage.dagster_run import DagsterRun

DAGSTERS_OWN = DagsterRun.get_resolved_partitions_subset_for_events


def _resolved(self: DagsterRun, partitions_def):
    return None if partitions_def is None else DAGSTERS_OWN(self, partitions_def)


def plan_unpartitioned_entities_once() -> None:
    DagsterRun.get_resolved_partitions_subset_for_events = _resolved
