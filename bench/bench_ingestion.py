"""Ingestion benchmark: what a backfill of `raw_prices` costs, and how much of it is Dagster's.

Run: `make bench` (or `.venv/bin/python bench/bench_ingestion.py`). Every measurement uses a
fresh ENERGY_PLATFORM_HOME under a temporary folder on the same disk as the project, the real
definitions and a persistent SQLite Dagster instance, exactly as `make demo` does.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import dagster as dg

from energy_platform.defs import INGEST_JOB, build_definitions
from energy_platform.orchestration import run_job
from energy_platform.settings import DEFAULT_TIMEZONE, from_env
from energy_platform.warehouse.db import connect

ROOT = Path(__file__).resolve().parent.parent


def _home(base: Path, name: str):
    settings = from_env({"ENERGY_PLATFORM_HOME": str(base / name), "ENERGY_PLATFORM_SOURCE": "sample"})
    settings.ensure_dirs()
    return settings, dg.DagsterInstance.from_config(str(settings.dagster_home))


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _noop_defs(partitions_def: dg.PartitionsDefinition) -> dg.Definitions:
    @dg.asset(partitions_def=partitions_def, backfill_policy=dg.BackfillPolicy.single_run())
    def noop() -> None:
        return None

    return dg.Definitions(assets=[noop], jobs=[dg.define_asset_job("noop_job", selection=[noop])])


def real_backfill(base: Path, years: int) -> tuple[float, int]:
    settings, instance = _home(base, f"real_{years}y")
    defs = build_definitions(settings)
    keys = defs.resolve_assets_def("raw_prices").partitions_def.get_partition_keys()[: 12 * years]
    seconds = _timed(lambda: run_job(defs, INGEST_JOB, instance, partition_range=(keys[0], keys[-1])))
    with connect(settings.warehouse_path, read_only=True) as conn:
        rows = conn.execute("SELECT count(*) FROM raw.prices_hourly").fetchone()[0]
    return seconds, rows


def noop_backfill(base: Path, partitions_def: dg.PartitionsDefinition, label: str, count: int) -> float:
    _, instance = _home(base, f"noop_{label}")
    defs = _noop_defs(partitions_def)
    keys = partitions_def.get_partition_keys()[:count]
    return _timed(lambda: run_job(defs, "noop_job", instance, partition_range=(keys[0], keys[-1])))


def daily_increment(base: Path) -> tuple[float, float]:
    """Warehouse complete to 2024-12-30; the daily run of 2024-12-31 (its month partition)."""
    settings, instance = _home(base, "daily")
    defs = build_definitions(settings)
    keys = defs.resolve_assets_def("raw_prices").partitions_def.get_partition_keys()
    cap = {"resources": {"source": {"config": {"spec": "sample", "as_of": "2024-12-30"}}}}
    run_job(defs, INGEST_JOB, instance, partition_range=(keys[0], keys[-1]), run_config=cap)
    result = {}

    def once() -> None:
        result["run"] = run_job(defs, INGEST_JOB, instance, partition_key="2024-12-01")

    seconds = _timed(once)
    mat = result["run"].asset_materializations_for_node("raw_prices")[-1]
    assert mat.metadata["fetched_range"].value == "2024-12-31..2024-12-31", mat.metadata["fetched_range"]
    assert mat.metadata["dagster/row_count"].value == 24
    step = [e for e in result["run"].all_events if e.event_type_value == "STEP_SUCCESS" and e.step_key == "raw_prices"]
    asset_seconds = step[0].event_specific_data.duration_ms / 1000 if step else float("nan")
    return seconds, asset_seconds


def main() -> int:
    base_dir = os.environ.get("BENCH_DIR") or str(ROOT / ".energy_platform" / "bench")
    Path(base_dir).mkdir(parents=True, exist_ok=True)
    lines = ["| measurement | wall time (s) | note |", "|---|---|---|"]

    def row(label: str, seconds: float, note: str = "") -> None:
        lines.append(f"| {label} | {seconds:.2f} | {note} |")
        print(lines[-1], flush=True)

    with tempfile.TemporaryDirectory(dir=base_dir) as tmp:
        base = Path(tmp)
        for years in (1, 2, 5, 10):
            seconds, rows = real_backfill(base, years)
            row(f"raw_prices single-run backfill, {years} year(s), {12 * years} monthly partitions", seconds, f"{rows:,} rows")
        monthly = dg.MonthlyPartitionsDefinition(start_date="2015-01-01", end_date="2025-01-01", timezone=DEFAULT_TIMEZONE)
        daily = dg.DailyPartitionsDefinition(start_date="2015-01-01", end_date="2025-01-01", timezone=DEFAULT_TIMEZONE)
        row("no-op asset, 120 monthly partitions (Dagster bookkeeping only)", noop_backfill(base, monthly, "monthly", 120))
        row("no-op asset, 366 daily partitions (one year)", noop_backfill(base, daily, "daily1", 366))
        row("no-op asset, 3,653 daily partitions (ten years)", noop_backfill(base, daily, "daily10", 3653))
        total, asset = daily_increment(base)
        row("daily incremental run (fetches 2024-12-31 only), whole run", total, f"asset step {asset:.2f} s")

    table = "\n".join(lines)
    out = ROOT / "bench" / "results" / "ingestion.md"
    out.write_text(
        "Measured by `.venv/bin/python bench/bench_ingestion.py` "
        f"(python {sys.version.split()[0]}, {os.cpu_count()} cores), {time.strftime('%Y-%m-%d')}\n\n{table}\n"
    )
    print(f"\nwritten to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
