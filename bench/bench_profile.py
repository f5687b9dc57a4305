"""The Dagster instance on SQLite vs PostgreSQL: the ten-year raw_prices backfill and a daily run.

Run: `.venv/bin/python bench/bench_profile.py` (needs PostgreSQL's binaries and the production
extra). Both variants use the real definitions, the same disk (a folder under the project) and
MLflow's default SQLite; only the Dagster instance differs. PostgreSQL runs from the system's
packages on 127.0.0.1 with its default durability (fsync on), as SQLite has it.
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import dagster as dg
from md_table import markdown_table  # bench/, beside this script

from energy_platform.defs import INGEST_JOB, build_definitions
from energy_platform.local_services import PostgresCluster
from energy_platform.orchestration import run_job
from energy_platform.profile import DAGSTER_PG_ENV
from energy_platform.settings import DEFAULT_TIMEZONE, from_env
from energy_platform.warehouse.db import connect

ROOT = Path(__file__).resolve().parent.parent
DAILY_REPEATS = 3


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _home(base: Path, name: str, pg_url: str | None):
    env = {"ENERGY_PLATFORM_HOME": str(base / name), "ENERGY_PLATFORM_SOURCE": "sample"}
    if pg_url:
        env[DAGSTER_PG_ENV] = pg_url
        os.environ[DAGSTER_PG_ENV] = pg_url  # the generated dagster.yaml reads it
    settings = from_env(env)
    settings.ensure_dirs()
    return settings, dg.DagsterInstance.from_config(str(settings.dagster_home))


def measure(base: Path, label: str, pg_url: str | None) -> dict[str, float]:
    """Backfill of 120 monthly partitions (to 2024-12-30), then the daily run of 2024-12-31, repeated."""
    settings, instance = _home(base, label, pg_url)
    defs = build_definitions(settings)
    keys = defs.resolve_assets_def("raw_prices").partitions_def.get_partition_keys()
    cap = {"resources": {"source": {"config": {"spec": "sample", "as_of": "2024-12-30"}}}}
    out = {"backfill": _timed(lambda: run_job(defs, INGEST_JOB, instance, partition_range=(keys[0], keys[-1]), run_config=cap))}
    daily = []
    for _ in range(DAILY_REPEATS):
        with connect(settings.warehouse_path) as conn:
            conn.execute("DELETE FROM raw.prices_hourly WHERE date = DATE '2024-12-31'")
        daily.append(_timed(lambda: run_job(defs, INGEST_JOB, instance, partition_key="2024-12-01")))
    out["daily"] = statistics.median(daily)

    @dg.asset(partitions_def=dg.MonthlyPartitionsDefinition(start_date="2015-01-01", end_date="2025-01-01", timezone=DEFAULT_TIMEZONE),
              backfill_policy=dg.BackfillPolicy.single_run())
    def noop() -> None:
        return None

    noop_defs = dg.Definitions(assets=[noop], jobs=[dg.define_asset_job("noop_job", selection=[noop])])
    month_keys = noop.partitions_def.get_partition_keys()
    out["noop"] = _timed(lambda: run_job(noop_defs, "noop_job", instance, partition_range=(month_keys[0], month_keys[-1])))
    instance.dispose()
    return out


def main() -> int:
    bench_dir = ROOT / ".energy_platform" / "bench"
    bench_dir.mkdir(parents=True, exist_ok=True)
    base = Path(tempfile.mkdtemp(dir=bench_dir, prefix="profile-"))
    base.chmod(0o711)  # the postgres user enters it to reach its cluster
    load = os.getloadavg()[0]
    try:
        with PostgresCluster(base / "pg", durable=True) as cluster:
            pg_url = cluster.create_database("dagster")
            results = {"SQLite": measure(base, "sqlite", None), "PostgreSQL": measure(base, "postgres", pg_url)}
    finally:
        shutil.rmtree(base, ignore_errors=True)
    table = markdown_table(
        ["Dagster instance", "raw_prices backfill, 120 monthly partitions (s)", "daily run, 1 partition (s, median of 3)",
         "no-op asset, 120 partitions (s)"],
        ([k, f"{v['backfill']:.2f}", f"{v['daily']:.2f}", f"{v['noop']:.2f}"] for k, v in results.items()),
    )
    print(table)
    out = ROOT / "bench" / "results" / "profile.md"
    out.write_text(
        "Measured by `.venv/bin/python bench/bench_profile.py` "
        f"(python {sys.version.split()[0]}, {os.cpu_count()} cores, load average {load:.1f} at start, "
        f"PostgreSQL from {cluster.bindir}, fsync on), {time.strftime('%Y-%m-%d')}\n\n{table}\n"
    )
    print(f"\nwritten to {out}")
    return 0


if __name__ == "__main__":
    import argparse

    # --help says what it runs instead of running it (helper S, session 21: it started the benchmark)
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_known_args()
    sys.exit(main())
