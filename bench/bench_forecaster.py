"""Benchmark of the forecaster against the baselines and the published epftoolbox numbers.

Each run is one `backtest` CLI command (printed, so it can be re-run by hand); its JSON metrics
land in bench/results/<run>.json and the report in bench/results/forecaster.md.

    .venv/bin/python bench/bench_forecaster.py                 # all runs, then the report
    .venv/bin/python bench/bench_forecaster.py --runs co np    # some runs
    .venv/bin/python bench/bench_forecaster.py --report-only   # rebuild the report from JSON

Settings were chosen on validation periods before each test start (see the report), never on
the test periods themselves.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
DATA = ROOT.parent / "shared" / "data" / "epftoolbox"  # the shared data beside the checkout
PY = sys.executable

RUNS: dict[str, dict] = {
    "np": dict(
        title="NP (Nord Pool), epftoolbox protocol",
        args=["--csv", str(DATA / "NP.csv"), "--test-start", "2016-12-27", "--test-end", "2018-12-24",
              "--horizon-days", "1", "--recalibrate-every", "1", "--window-days", "1456",
              "--models", "forecaster,naive_d,naive_w"],
        market="NP", env={"ENERGY_PLATFORM_PRICE_FLOOR": "none"},  # epftoolbox files: no market floor
    ),
    "pjm": dict(
        title="PJM (COMED zone), epftoolbox protocol",
        args=["--csv", str(DATA / "PJM.csv"), "--test-start", "2016-12-27", "--test-end", "2018-12-24",
              "--horizon-days", "1", "--recalibrate-every", "1", "--window-days", "1456",
              "--models", "forecaster,naive_d,naive_w"],
        market="PJM", env={"ENERGY_PLATFORM_PRICE_FLOOR": "none"},  # PJM has negative prices
    ),
    "np_lear": dict(
        title="NP, our LEAR (one 1456-day window, weekly recalibration to save time)",
        args=["--csv", str(DATA / "NP.csv"), "--test-start", "2016-12-27", "--test-end", "2018-12-24",
              "--horizon-days", "1", "--recalibrate-every", "7", "--window-days", "1456", "--models", "lear"],
        market="NP",
    ),
    "pjm_lear": dict(
        title="PJM, our LEAR (one 1456-day window, weekly recalibration to save time)",
        args=["--csv", str(DATA / "PJM.csv"), "--test-start", "2016-12-27", "--test-end", "2018-12-24",
              "--horizon-days", "1", "--recalibrate-every", "7", "--window-days", "1456", "--models", "lear"],
        market="PJM",
    ),
    "co": dict(
        title="Colombia (XM bolsa, embedded data), H=2",
        args=["--source", "sample", "--test-start", "2023-01-01", "--test-end", "2024-12-31",
              "--horizon-days", "2", "--recalibrate-every", "1", "--window-days", "1456",
              "--models", "forecaster,lear,naive_d,naive_w"],
        market=None,
    ),
}


def command(run: str) -> list[str]:
    out = RESULTS / f"{run}_forecasts.parquet"
    return [PY, "-m", "energy_platform.forecasting.backtest_cli", "backtest", *RUNS[run]["args"],
            "--seed", "0", "--json", "--forecasts-out", str(out)]


def shown(cmd: list[str]) -> str:
    rel = [c.replace(str(ROOT) + "/", "") for c in cmd]
    rel[0] = ".venv/bin/python"
    return shlex.join(rel)


def execute(run: str) -> None:
    cmd = command(run)
    print(f"[{run}] {shown(cmd)}", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    env = {**os.environ, **RUNS[run].get("env", {})}
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"[{run}] failed ({proc.returncode}): {proc.stderr.strip()}")
    rows = json.loads(proc.stdout)
    payload = {"run": run, "command": shown(cmd), "wall_seconds": round(time.perf_counter() - t0, 1), "metrics": rows}
    (RESULTS / f"{run}.json").write_text(json.dumps(payload, indent=1))
    print(f"[{run}] done in {payload['wall_seconds']} s", file=sys.stderr)
    for r in rows:
        print(f"  {r['model']:<10} rMAE {r['rmae']:.3f}  MAE {r['mae']:.3f}", file=sys.stderr)


def reference(market: str) -> list[dict]:
    with open(DATA / "reference_metrics.csv") as f:
        rows = [r for r in csv.DictReader(f) if r["market"] == market and r["forecast_file_version"].startswith("current")]
    return rows


def fmt(v: object, nd: int = 3) -> str:
    return f"{v:.{nd}f}" if isinstance(v, float) else ("-" if v is None else str(v))


def report(notes: str = "") -> str:
    lines = ["# Forecaster benchmark", "",
             "Produced by `bench/bench_forecaster.py`; every table below comes from the command shown above it.",
             "Machine: 2 cores; what else ran beside each run is said in the notes (timings are upper bounds).", ""]
    if notes:
        lines += [notes, ""]
    for run, spec in RUNS.items():
        path = RESULTS / f"{run}.json"
        if not path.exists():
            lines += [f"## {spec['title']}", "", "_not run_", ""]
            continue
        data = json.loads(path.read_text())
        lines += [f"## {spec['title']}", "", "```", data["command"], "```", "",
                  f"Wall time {data['wall_seconds']:.0f} s.", "",
                  "| model | rMAE | MAE | sMAPE % | RMSE | pinball | 10-90 coverage | test days | fits | fit s total | fit s / fit |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in data["metrics"]:
            lines.append(
                f"| {r['model']} | {fmt(r['rmae'])} | {fmt(r['mae'])} | {fmt(100 * r['smape'], 2)} | {fmt(r['rmse'])} | "
                f"{fmt(r.get('pinball'))} | {fmt(r.get('coverage_80'))} | {r['test_days']} | {r.get('fits', '-')} | "
                f"{fmt(r['fit_seconds'], 1)} | {fmt(r.get('fit_seconds_per_fit'), 2)} |"
            )
        for r in data["metrics"]:
            if "coverage_80_by_quarter" in r and r["model"] == "forecaster":
                quarters = ", ".join(f"{q} {c:.3f}" for q, c in r["coverage_80_by_quarter"].items())
                lines += ["", f"Forecaster (issue 12 item 3): jaggedness ratio {fmt(r.get('jaggedness_ratio'))}, "
                          f"below-floor share {fmt(r.get('below_floor_share'), 4)}, seed spread {fmt(r.get('seed_spread'), 2)}, "
                          f"10-90 coverage by quarter: {quarters}."]
        if spec["market"]:
            lines += ["", f"Published (Lago et al. 2021, epftoolbox forecasts, same test days), {spec['market']}:", "",
                      "| model | rMAE | MAE | sMAPE % | RMSE |", "|---|---|---|---|---|"]
            for r in reference(spec["market"]):
                lines.append(f"| {r['model']} | {r['rMAE_weekly_naive(paper)']} | {r['MAE']} | {r['sMAPE_pct']} | {r['RMSE']} |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", nargs="*", default=list(RUNS), choices=list(RUNS))
    ap.add_argument("--report-only", action="store_true")
    ap.add_argument("--notes", type=Path, help="Markdown file with notes to put at the top of the report")
    args = ap.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    if not args.report_only:
        for run in args.runs:
            execute(run)
    default_notes = RESULTS / "validation_notes.md"
    notes = args.notes.read_text() if args.notes else (default_notes.read_text() if default_notes.exists() else "")
    text = report(notes)
    (RESULTS / "forecaster.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
