"""Fault benchmark: N random `kill -9` of a pipeline run, each followed by a rerun on the same home.

Run: `PYTHONPATH=. .venv/bin/python bench/bench_faults.py [--kills 5] [--start 2024-03-01 --end 2024-06-30]`.

The pipeline is the demo's, small: ingest the months of [start, end] (the sample as of `end`),
features, a tiny training with its gate, predictions of the last days, publish analytics.duckdb,
each through `orchestration.run_job` in one subprocess on a fresh home. A clean run is timed
first; then each trial starts a fresh home, SIGKILLs the pipeline's process group at a random
moment of its pipeline (uniform over the clean run's span from its first job to its end,
counted from the victim's own first job; a victim that finishes first is redrawn), and reruns it
at once. Printed per trial and in total (target: 0, 0, 0, recovery <= 2 x clean):
rows lost (raw hours missing against the source, prediction hours missing for the champion),
rows duplicated (raw hours, feature days, prediction rows), hangs (a rerun over its timeout),
recovery (rerun seconds / clean run seconds). The rerun waits for the killed run's lease
(`--lease`, the platform's default is 30 s) when the kill left a pool slot held.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TINY = {"window_days": 120, "backtest_weeks": 2, "recalibrate_every": 7, "max_epochs": 3, "n_members": 1, "blend_naive": False, "lear_weight": 0.0}


# -- the pipeline (run in a subprocess) ---------------------------------------------------------

def pipeline(home: str, start: date, end: date, predict_days: int) -> None:
    """The demo's jobs on a small range; prints each phase's start (seconds since process start)."""
    t0 = time.perf_counter()

    def phase(name: str) -> None:
        print(f"phase {name} {time.perf_counter() - t0:.2f}", flush=True)

    phase("import")
    import dagster as dg

    from energy_platform.defs import (
        FEATURES_JOB,
        INGEST_JOB,
        PREDICT_JOB,
        PUBLISH_JOB,
        TRAIN_JOB,
        build_definitions,
    )
    from energy_platform.orchestration import run_job
    from energy_platform.settings import from_env
    from energy_platform.state import check_home

    settings = from_env({"ENERGY_PLATFORM_HOME": home})
    settings.ensure_dirs()
    check_home(settings)
    instance = dg.DagsterInstance.from_config(str(settings.dagster_home))
    defs = build_definitions(settings)
    source = {"resources": {"source": {"config": {"spec": "sample", "as_of": end.isoformat()}}}}
    first_day, last_day = _predict_range(end, predict_days)
    phase("ingest")
    run_job(defs, INGEST_JOB, instance, partition_range=(start.replace(day=1).isoformat(), end.replace(day=1).isoformat()),
            run_config=source)
    phase("features")
    run_job(defs, FEATURES_JOB, instance)
    phase("train")
    run_job(defs, TRAIN_JOB, instance, run_config={"ops": {"forecaster_model": {"config": TINY}}})
    phase("predict")
    run_job(defs, PREDICT_JOB, instance, partition_range=(first_day.isoformat(), last_day.isoformat()))
    phase("publish")
    run_job(defs, PUBLISH_JOB, instance)
    phase("done")


def _predict_range(end: date, days: int) -> tuple[date, date]:
    """The last `days` target days forecastable with data to `end` (horizon 2: up to end + 2)."""
    last = end + timedelta(days=2)
    return last - timedelta(days=days - 1), last


# -- the benchmark ------------------------------------------------------------------------------

def _start(home: Path, args: argparse.Namespace, stderr=subprocess.PIPE) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ENERGY_PLATFORM_RUN_LEASE_SECONDS": str(args.lease)}
    env.pop("DAGSTER_HOME", None)
    cmd = [sys.executable, "-W", "ignore", str(Path(__file__).resolve()), "--pipeline", str(home),
           "--start", args.start.isoformat(), "--end", args.end.isoformat(), "--predict-days", str(args.predict_days)]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=stderr, text=True, start_new_session=True)


def _phases(stdout: str) -> dict[str, float]:
    return {p[1]: float(p[2]) for p in (line.split() for line in stdout.splitlines()) if len(p) == 3 and p[0] == "phase"}


def _run(home: Path, args: argparse.Namespace, timeout: float) -> tuple[float, str, str, int | None]:
    """(seconds, stdout, stderr, return code or None if it hung and was killed)."""
    started = time.perf_counter()
    proc = _start(home, args)
    try:
        out, err = proc.communicate(timeout=timeout)
        code = proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        code = None
    return time.perf_counter() - started, out, err, code


def _kill_at(home: Path, args: argparse.Namespace, delay: float) -> str | None:
    """Start the pipeline and SIGKILL its process group `delay` s after its first job starts;
    return the phase it was in, or None if it finished first (not a kill)."""
    proc = _start(home, args, stderr=subprocess.DEVNULL)
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if line.startswith("phase ingest"):
            break
    time.sleep(delay)
    finished = proc.poll() is not None
    if not finished:
        os.killpg(proc.pid, signal.SIGKILL)
    out = "".join(seen) + proc.stdout.read()
    proc.wait()
    phases = _phases(out)
    if finished or "done" in phases:  # killed while exiting: not a kill of the pipeline
        return None
    return max(phases, key=phases.get)


def _damage(home: Path, args: argparse.Namespace) -> dict:
    """Rows lost and duplicated, prediction days served, registry vs mirror, the analytics file."""
    import duckdb

    from energy_platform.sources.sample import SampleSource
    from energy_platform.tracking.registry import ModelRegistry

    expected = SampleSource(as_of=args.end).hourly_prices(args.start.replace(day=1), args.end)
    first, last = _predict_range(args.end, args.predict_days)
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as conn:
        raw, raw_distinct = conn.execute("SELECT count(*), count(DISTINCT (date, hour)) FROM raw.prices_hourly").fetchone()
        feat, feat_distinct = conn.execute("SELECT count(*), count(DISTINCT target_date) FROM features.daily").fetchone()
        pred, pred_distinct = conn.execute(
            "SELECT count(*), count(DISTINCT (target_date, hour, model_version)) FROM ml.predictions").fetchone()
        mirror = {v: set(filter(None, (a or "").split(","))) for v, a in conn.execute("SELECT version, aliases FROM ml.model_versions").fetchall()}
        champion = next((v for v, a in mirror.items() if "champion" in a), None)
        served = conn.execute(
            "SELECT count(*) FROM ml.predictions WHERE model_version = ? AND target_date BETWEEN ? AND ?",
            [champion, first, last]).fetchone()[0]
    registry = ModelRegistry(f"sqlite:///{home / 'mlflow.db'}")
    cards = {c.version: set(c.aliases) for c in registry.cards()}
    analytics_ok = True
    try:
        with duckdb.connect(str(home / "analytics.duckdb"), read_only=True) as conn:
            for name, rows in conn.execute("SELECT table_name, row_count FROM metadata").fetchall():
                analytics_ok &= conn.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0] == rows
    except duckdb.Error:
        analytics_ok = False
    return {
        "raw_lost": max(expected.height - raw_distinct, 0),
        "prediction_hours_lost": 24 * args.predict_days - served,
        "duplicated": (raw - raw_distinct) + (feat - feat_distinct) + (pred - pred_distinct),
        "mirror_agrees": mirror == cards,
        "analytics_ok": analytics_ok,
        "temp_files": len([p for p in home.iterdir() if p.name.startswith(".publishing-")]),
    }


def bench(args: argparse.Namespace) -> int:
    rng = random.Random(args.seed)
    base = Path(os.environ.get("BENCH_DIR") or ROOT / ".energy_platform" / "bench")
    base.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=base) as tmp:
        clean_s, out, err, code = _run(Path(tmp) / "clean", args, timeout=1800)
        if code != 0:
            print(err[-4000:], file=sys.stderr)
            return 1
        phases = _phases(out)
        clean = _damage(Path(tmp) / "clean", args)
        print(f"clean run: {clean_s:.1f} s, phases {json.dumps(phases)}; {json.dumps(clean)}", flush=True)
        timeout = args.hang_factor * clean_s + args.lease + 30
        trials = []
        for i in range(args.kills):
            home = Path(tmp) / f"trial{i}"
            phase, attempts = None, 0
            while phase is None:  # a run that finished before its kill is no trial: a fresh home, another moment
                attempts += 1
                if attempts > 5:
                    raise RuntimeError("the pipeline keeps finishing before its kill: is it failing?")
                shutil.rmtree(home, ignore_errors=True)
                delay = rng.uniform(0, phases["done"] - phases["ingest"])
                phase = _kill_at(home, args, delay)
            seconds, _, rerun_err, code = _run(home, args, timeout)
            trial = {"kill_after_first_job_s": round(delay, 1), "phase": phase, "rerun_s": round(seconds, 1),
                     "recovery": round(seconds / clean_s, 2), "hang": code is None, "rerun_failed": code not in (0, None)}
            if code == 0:
                trial.update(_damage(home, args))
            else:
                trial["error"] = rerun_err.strip().splitlines()[-1] if rerun_err.strip() else ""
            trials.append(trial)
            print(f"kill {i + 1}/{args.kills}: {json.dumps(trial)}", flush=True)
    ok = [t for t in trials if not t["hang"] and not t["rerun_failed"]]
    summary = {
        "kills": len(trials),
        "rows_lost": sum(t["raw_lost"] + t["prediction_hours_lost"] for t in ok),
        "rows_duplicated": sum(t["duplicated"] for t in ok),
        "hangs": sum(t["hang"] for t in trials),
        "reruns_failed": sum(t["rerun_failed"] for t in trials),
        "mirror_disagreements": sum(not t["mirror_agrees"] for t in ok),
        "analytics_unreadable": sum(not t["analytics_ok"] for t in ok),
        "temp_files_left": sum(t["temp_files"] for t in ok),
        "clean_s": round(clean_s, 1),
        "recovery_max": max((t["recovery"] for t in trials), default=None),
        "recovery_median": sorted(t["recovery"] for t in trials)[len(trials) // 2] if trials else None,
        "phases_killed": sorted(t["phase"] for t in trials),
        "lease_s": args.lease,
    }
    print(json.dumps(summary, indent=1))
    _write_results(args, summary, trials)
    return 0 if (summary["rows_lost"], summary["rows_duplicated"], summary["hangs"], summary["reruns_failed"]) == (0, 0, 0, 0) else 1


def _write_results(args: argparse.Namespace, summary: dict, trials: list[dict]) -> None:
    """bench/results/faults.md: the command, the summary and one row per kill."""
    command = (f"PYTHONPATH=. .venv/bin/python bench/bench_faults.py --kills {args.kills} --start {args.start} "
               f"--end {args.end} --predict-days {args.predict_days} --lease {args.lease:g} --seed {args.seed}")
    rows = ["| # | killed after first job (s) | phase | rerun (s) | recovery (x clean) | rows lost | rows duplicated | mirror = registry | analytics readable |",
            "|---|---|---|---|---|---|---|---|---|"]
    for i, t in enumerate(trials, 1):
        lost = t.get("raw_lost", 0) + t.get("prediction_hours_lost", 0)
        rows.append(f"| {i} | {t['kill_after_first_job_s']} | {t['phase']} | {t['rerun_s']}{' (hang)' if t['hang'] else ''} | "
                    f"{t['recovery']} | {lost} | {t.get('duplicated', '-')} | {t.get('mirror_agrees', '-')} | {t.get('analytics_ok', '-')} |")
    text = (f"Measured by `{command}` ({os.cpu_count()} cores, other work running), {time.strftime('%Y-%m-%d')}\n\n"
            f"```\n{json.dumps(summary, indent=1)}\n```\n\n" + "\n".join(rows) + "\n")
    (ROOT / "bench" / "results" / "faults.md").write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=5, help="random kills, each followed by a rerun")
    parser.add_argument("--start", type=date.fromisoformat, default=date(2024, 3, 1), help="first day of prices")
    parser.add_argument("--end", type=date.fromisoformat, default=date(2024, 6, 30), help="last day of prices (the sample as of)")
    parser.add_argument("--predict-days", type=int, default=3, help="target days predicted, ending end + 2")
    parser.add_argument("--lease", type=float, default=10.0, help="ENERGY_PLATFORM_RUN_LEASE_SECONDS of every run")
    parser.add_argument("--hang-factor", type=float, default=3.0, help="a rerun over this x clean + lease + 30 s is a hang")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pipeline", metavar="HOME", help=argparse.SUPPRESS)  # the subprocess's side
    args = parser.parse_args(argv)
    if args.pipeline:
        pipeline(args.pipeline, args.start, args.end, args.predict_days)
        return 0
    return bench(args)


if __name__ == "__main__":
    sys.exit(main())
