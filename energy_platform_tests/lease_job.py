"""A tiny job that holds the real `duckdb_warehouse` pool, run the way the CLI runs jobs.

`python -m energy_platform_tests.lease_job <home> <seconds>` runs one in-process run through
`orchestration.run_job` (lease, heartbeat, reaper) against the home's instance, whose
`dagster.yaml` is the project's (the pool limit of 1), and prints the run id when done.
`dagster dev -m energy_platform_tests.lease_job` launches it as the UI does, with the platform's
executor.
"""

import sys
import time

import dagster as dg

from energy_platform.orchestration import leased_in_process_executor, run_job
from energy_platform.settings import from_env

JOB = "hold_pool"
WAREHOUSE_POOL = "duckdb_warehouse"  # defs.resources.WAREHOUSE_POOL, without importing every asset


class HoldConfig(dg.Config):
    seconds: float = 0.0


@dg.asset(pool=WAREHOUSE_POOL)
def pool_holder(context: dg.AssetExecutionContext, config: HoldConfig) -> None:
    time.sleep(config.seconds)


DEFS = dg.Definitions(assets=[pool_holder], jobs=[dg.define_asset_job(JOB, selection=[pool_holder])],
                      executor=leased_in_process_executor)


def main(home: str, seconds: str) -> None:
    settings = from_env({"ENERGY_PLATFORM_HOME": home})
    settings.ensure_dirs()
    instance = dg.DagsterInstance.from_config(str(settings.dagster_home))
    config = {"ops": {"pool_holder": {"config": {"seconds": float(seconds)}}}}
    result = run_job(DEFS, JOB, instance, run_config=config)
    print(result.run_id, flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
