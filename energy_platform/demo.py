"""`energy-platform demo`: the whole platform on the active source, step by step."""

from __future__ import annotations

import time

import dagster as dg

from energy_platform.defs import INGEST_JOB, build_definitions
from energy_platform.orchestration import run_job
from energy_platform.settings import get_settings
from energy_platform.warehouse.db import connect


def _step(n: int, total: int, label: str) -> float:
    print(f"[{n}/{total}] {label} ...", flush=True)
    return time.perf_counter()


def run_demo() -> int:
    settings = get_settings()
    instance = dg.DagsterInstance.get()
    defs = build_definitions(settings)
    partitions = defs.resolve_assets_def("raw_prices").partitions_def
    keys = partitions.get_partition_keys()
    total = 1

    t0 = _step(1, total, f"raw_prices: {len(keys)} monthly partitions {keys[0]}..{keys[-1]} in one run from '{settings.source}'")
    result = run_job(defs, INGEST_JOB, instance, partition_range=(keys[0], keys[-1]))
    checks = result.get_asset_check_evaluations()
    failed = [c.check_name for c in checks if not c.passed]
    print(f"      done in {time.perf_counter() - t0:.1f} s; checks: {len(checks) - len(failed)}/{len(checks)} passed"
          + (f", failing: {', '.join(failed)}" if failed else ""))

    with connect(settings.warehouse_path, read_only=True) as conn:
        rows, first, last = conn.execute("SELECT count(*), min(date), max(date) FROM raw.prices_hourly").fetchone()
    print()
    print(f"raw.prices_hourly: {rows:,} rows, {first}..{last}")
    print(f"state:             {settings.home}")
    print(f"  warehouse:       {settings.warehouse_path}")
    print(f"  dagster runs:    {settings.dagster_home}")
    print("next:              make ui   (Dagster UI on http://127.0.0.1:3000)")
    return 0
