"""The warehouse as a DuckDB file vs on DuckLake (PostgreSQL catalog, Parquet on local disk).

Run: `.venv/bin/python bench/bench_warehouse.py [rounds]` (needs PostgreSQL's binaries and the
production extra). Both variants use the real definitions, the same disk (a folder under the
project), a SQLite Dagster instance and MLflow on SQLite; only `ENERGY_PLATFORM_WAREHOUSE`
differs. PostgreSQL runs from the system's packages on 127.0.0.1 with fsync on. Rounds alternate
file and lake, so a change of machine load hits both. Measured:

- the ten-year load as one write (`ingest_range` 2015-01-01..2024-12-31, 87,672 rows, no Dagster);
- the `raw_prices` backfill, 120 monthly partitions in one run (with its asset checks, price drift
  included), into a fresh warehouse;
- a daily run (the month partition fetching one missing day), median of 3;
- reading the ten years back (`read_prices`, what features and training do).
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import dagster as dg
from md_table import markdown_table  # bench/, beside this script

from energy_platform.defs import INGEST_JOB, build_definitions
from energy_platform.local_services import PostgresCluster
from energy_platform.orchestration import run_job
from energy_platform.settings import from_env
from energy_platform.sources.sample import SampleSource
from energy_platform.warehouse.db import connect, is_lake
from energy_platform.warehouse.ingest import ingest_range
from energy_platform.warehouse.prices import read_prices

ROOT = Path(__file__).resolve().parent.parent
DAILY_REPEATS = 3
SECTION = "## The warehouse: DuckDB file vs DuckLake (bench/bench_warehouse.py)"


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _settings(home: Path, warehouse: dict[str, str]):
    settings = from_env({"ENERGY_PLATFORM_HOME": str(home), "ENERGY_PLATFORM_SOURCE": "sample", **warehouse})
    settings.ensure_dirs()
    return settings


def measure(base: Path, label: str, warehouse_env) -> dict[str, float]:
    out = {}
    # 1. the ten-year load as one write, into an empty warehouse
    bulk = _settings(base / f"{label}-bulk", warehouse_env("bulk"))
    out["load"] = _timed(lambda: ingest_range(bulk.warehouse_path, SampleSource(), date(2015, 1, 1), date(2024, 12, 31)))
    out["read"] = _timed(lambda: read_prices(bulk.warehouse_path))
    assert read_prices(bulk.warehouse_path).height == 87_672
    # 2. the Dagster backfill of 120 monthly partitions, one run, into another empty warehouse
    settings = _settings(base / f"{label}-dagster", warehouse_env("dagster"))
    assert is_lake(settings.warehouse_path) == (label == "DuckLake")
    instance = dg.DagsterInstance.from_config(str(settings.dagster_home))
    defs = build_definitions(settings)
    keys = defs.resolve_assets_def("raw_prices").partitions_def.get_partition_keys()
    cap = {"resources": {"source": {"config": {"spec": "sample", "as_of": "2024-12-30"}}}}
    out["backfill"] = _timed(lambda: run_job(defs, INGEST_JOB, instance, partition_range=(keys[0], keys[-1]), run_config=cap))
    daily = []
    for _ in range(DAILY_REPEATS):
        with connect(settings.warehouse_path) as conn:
            conn.execute("DELETE FROM raw.prices_hourly WHERE date = DATE '2024-12-31'")
        daily.append(_timed(lambda: run_job(defs, INGEST_JOB, instance, partition_key="2024-12-01")))
    out["daily"] = statistics.median(daily)
    with connect(settings.warehouse_path, read_only=True) as conn:
        assert conn.execute("SELECT count(*), count(DISTINCT (date, hour)) FROM raw.prices_hourly").fetchone() == (87_672, 87_672)
    instance.dispose()
    return out


def main() -> int:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    bench_dir = ROOT / ".energy_platform" / "bench"
    bench_dir.mkdir(parents=True, exist_ok=True)
    base = Path(tempfile.mkdtemp(dir=bench_dir, prefix="warehouse-"))
    base.chmod(0o711)  # the postgres user enters it to reach its cluster
    rows = []
    try:
        with PostgresCluster(base / "pg", durable=True) as cluster:
            def lake_env(name: str):
                def env(part: str) -> dict[str, str]:
                    db = f"{name}_{part}"
                    cluster.create_database(db)
                    return {"ENERGY_PLATFORM_WAREHOUSE": f"ducklake:postgres:dbname={db} host=127.0.0.1 port={cluster.port} user=postgres",
                            "ENERGY_PLATFORM_WAREHOUSE_DATA_PATH": str(base / db)}
                return env

            for n in range(1, rounds + 1):
                load = os.getloadavg()[0]
                rows.append((n, load, "DuckDB file", measure(base / f"r{n}", "file", lambda part: {})))
                rows.append((n, load, "DuckLake (PostgreSQL catalog)", measure(base / f"r{n}", "DuckLake", lake_env(f"lake_r{n}"))))
                print(rows[-2], rows[-1], flush=True)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    table = markdown_table(
        ["round (load)", "warehouse", "ten-year load, one write (s)", "read ten years back (s)",
         "raw_prices backfill, 120 monthly partitions, one run (s)", "daily run, 1 partition (s, median of 3)"],
        ([f"{n} ({load:.1f})", k, f"{v['load']:.2f}", f"{v['read']:.2f}", f"{v['backfill']:.2f}", f"{v['daily']:.2f}"]
         for n, load, k, v in rows),
    )
    print(table)
    out = ROOT / "bench" / "results" / "profile.md"  # its own section, after the Dagster instance's
    text = out.read_text() if out.exists() else ""
    head = text.split(SECTION)[0].rstrip()
    out.write_text(
        f"{head}\n\n{SECTION}\n\nMeasured by `.venv/bin/python bench/bench_warehouse.py {rounds}` "
        f"(python {sys.version.split()[0]}, {os.cpu_count()} cores shared with other engineers' jobs, "
        f"PostgreSQL from {cluster.bindir} with fsync on, Dagster instance and MLflow on SQLite in every row), "
        f"{time.strftime('%Y-%m-%d')}; rounds alternate file and lake, the load average at each round's start given.\n\n{table}\n"
    )
    print(f"\nwritten to {out}")
    return 0


if __name__ == "__main__":
    import argparse

    # --help says what it runs instead of running it (helper S, session 21: it started the benchmark)
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_known_args()
    sys.exit(main())
