"""One prediction day launched from the Dagster UI vs the same run from Python (the CLI's path).

Run: `.venv/bin/python bench/bench_ui.py`. A fresh home gets three months of the embedded prices
and the feature store; a first predictions run promotes the persistence baseline (so the timed runs
only forecast). Then the latest target day is materialized twice in process (as `energy-platform`
does) and three times through `dagster dev`'s GraphQL API, the way the UI's Materialize button
launches it (a run worker process, then the job's executor). Reported: wall time from launch to
SUCCESS as the UI user waits for it, and Dagster's own run duration.
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from energy_platform.defs import FEATURES_JOB, INGEST_JOB, PREDICT_JOB  # noqa: E402
from energy_platform.orchestration import run_job  # noqa: E402
from energy_platform_tests.platform_env import free_port, graphql, launch_run, make_env, wait_for_http  # noqa: E402

UI_REPEATS = 3


def _ui_run(port: int, partition: str) -> tuple[float, float]:
    started = time.perf_counter()
    run_id = launch_run(port, {
        "selector": {"repositoryLocationName": "energy_platform", "repositoryName": "__repository__",
                     "pipelineName": PREDICT_JOB},
        "executionMetadata": {"tags": [{"key": "dagster/partition", "value": partition}]},
    })
    while True:
        run = graphql(port, "query($id: ID!) { runOrError(runId: $id) { ... on Run { status startTime endTime } } }",
                      {"id": run_id})["runOrError"]
        if run["status"] in ("SUCCESS", "FAILURE", "CANCELED"):
            break
        time.sleep(0.25)
    wall = time.perf_counter() - started
    if run["status"] != "SUCCESS":
        raise SystemExit(f"UI run {run_id} ended {run['status']}")
    return wall, run["endTime"] - run["startTime"]


def main() -> None:
    with tempfile.TemporaryDirectory(dir=ROOT) as tmp:
        home = Path(tmp)
        env = make_env(home)
        keys = env.defs.resolve_assets_def("raw_prices").partitions_def.get_partition_keys()
        run_job(env.defs, INGEST_JOB, env.instance, partition_range=(keys[-3], keys[-1]))
        run_job(env.defs, FEATURES_JOB, env.instance)
        days = env.defs.resolve_assets_def("predictions").partitions_def.get_partition_keys()
        run_job(env.defs, PREDICT_JOB, env.instance, partition_key=days[-2])  # promotes the baseline
        cli = []
        for _ in range(2):
            t = time.perf_counter()
            run_job(env.defs, PREDICT_JOB, env.instance, partition_key=days[-1])
            cli.append(time.perf_counter() - t)

        port = free_port()
        log = home / "dagster_dev.log"
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "dagster"), "dev", "-h", "127.0.0.1", "-p", str(port),
             "-w", str(ROOT / "workspace.yaml")],
            cwd=ROOT, stdout=open(log, "w"), stderr=subprocess.STDOUT, start_new_session=True,  # noqa: SIM115
            env={**os.environ, "ENERGY_PLATFORM_HOME": str(home), "DAGSTER_HOME": str(env.settings.dagster_home),
                 "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")},
        )
        try:
            wait_for_http(f"http://127.0.0.1:{port}/server_info", proc, log, 300)
            ui = [_ui_run(port, days[-1]) for _ in range(UI_REPEATS)]
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=60)
    print(f"predictions, one target day ({days[-1]}):")
    print(f"  in process (CLI path): median {statistics.median(cli):.1f} s  runs {', '.join(f'{x:.1f}' for x in cli)}")
    print(f"  from the UI, launch to SUCCESS: median {statistics.median(w for w, _ in ui):.1f} s  "
          f"runs {', '.join(f'{w:.1f}' for w, _ in ui)}")
    print(f"  from the UI, Dagster's run duration: median {statistics.median(d for _, d in ui):.1f} s")


if __name__ == "__main__":
    import argparse

    # --help says what it runs instead of running it (helper S, session 21: it started the benchmark)
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_known_args()
    main()
