"""Lifecycle benchmark: `energy-platform demo` end to end, and one daily predictions partition.

Run: `.venv/bin/python bench/bench_lifecycle.py` (part of `make bench`). A fresh home on disk.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import dagster as dg

from energy_platform.defs import PREDICT_JOB, build_definitions
from energy_platform.orchestration import run_job
from energy_platform.settings import from_env

ROOT = Path(__file__).resolve().parent.parent


def _step_seconds(result: dg.ExecuteInProcessResult, step: str) -> float:
    events = [e for e in result.all_events if e.event_type_value == "STEP_SUCCESS" and e.step_key == step]
    return events[0].event_specific_data.duration_ms / 1000


def main() -> int:
    base = os.environ.get("BENCH_DIR") or str(ROOT / ".energy_platform" / "bench")
    Path(base).mkdir(parents=True, exist_ok=True)
    lines = ["| measurement | seconds | note |", "|---|---|---|"]
    with tempfile.TemporaryDirectory(dir=base) as home:
        env = {**os.environ, "ENERGY_PLATFORM_HOME": home, "DAGSTER_HOME": f"{home}/dagster_home"}
        started = time.perf_counter()
        out = subprocess.run([sys.executable, "-W", "ignore", "-m", "energy_platform.cli", "demo"], env=env,
                             capture_output=True, text=True, check=True)
        demo = time.perf_counter() - started
        lines.append(f"| `energy-platform demo`, ten years, fresh home (ingest, features, train+backtest, gate, 28 prediction days, accuracy, drift checks, publish) | {demo:.1f} | |")
        print(out.stdout.splitlines()[-1] if out.stdout else "")

        settings = from_env({"ENERGY_PLATFORM_HOME": home})
        instance = dg.DagsterInstance.from_config(str(settings.dagster_home))
        defs = build_definitions(settings)
        key = defs.resolve_assets_def("predictions").partitions_def.get_partition_keys()[-1]
        started = time.perf_counter()
        result = run_job(defs, PREDICT_JOB, instance, partition_key=key)
        whole = time.perf_counter() - started
        asset = _step_seconds(result, "predictions")
        lines.append(f"| one daily `predictions` partition ({key}): asset step | {asset:.2f} | whole run incl. the prediction drift check {whole:.1f} s |")
    table = "\n".join(lines)
    print(table)
    (ROOT / "bench" / "results" / "lifecycle.md").write_text(
        f"Measured by `.venv/bin/python bench/bench_lifecycle.py` ({os.cpu_count()} cores), {time.strftime('%Y-%m-%d')}\n\n{table}\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
