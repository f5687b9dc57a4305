"""NP through the platform with and without its exogenous series: what reading them is worth.

Writes two copies of epftoolbox's NP.csv into `--out`: one priced to `--last` with the next day as
its day ahead (price emptied, load and wind forecasts kept), one cut to `Date, Price` and to the
same last day. Runs `energy-platform demo` on a fresh home for each, with NP's settings, and prints
the first model's recent-weeks backtest rMAE (walk-forward, weekly refits) and what it read.

    .venv/bin/python bench/exogenous_platform.py --out /tmp/np_exog
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parent.parent
NP_SETTINGS = {"ENERGY_PLATFORM_COUNTRY": "NO", "ENERGY_PLATFORM_PRICE_UNIT": "EUR/MWh",
               "ENERGY_PLATFORM_TIMEZONE": "Europe/Oslo", "ENERGY_PLATFORM_PRICE_FLOOR": "none",
               "ENERGY_PLATFORM_HORIZON_DAYS": "1"}


def write_files(source: Path, out: Path, last: date) -> dict[str, Path]:
    frame = pl.read_csv(source, infer_schema_length=0)
    ts, price = frame.columns[:2]
    ahead = (last + timedelta(days=1)).isoformat()
    up_to = frame.filter(pl.col(ts).str.slice(0, 10) <= ahead)
    files = {"with day ahead": out / "np_day_ahead.csv", "prices only": out / "np_prices.csv"}
    up_to.with_columns(pl.when(pl.col(ts).str.starts_with(ahead)).then(pl.lit("")).otherwise(pl.col(price)).alias(price)
                       ).write_csv(files["with day ahead"])
    up_to.filter(pl.col(ts).str.slice(0, 10) <= last.isoformat()).select(ts, price).write_csv(files["prices only"])
    return files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, default=ROOT.parent / "shared" / "data" / "epftoolbox" / "NP.csv")
    parser.add_argument("--last", type=date.fromisoformat, default=date(2018, 12, 23), help="last priced day")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for label, path in write_files(args.csv, args.out, args.last).items():
        home = args.out / f"home_{path.stem}"
        shutil.rmtree(home, ignore_errors=True)
        env = {**os.environ, **NP_SETTINGS, "ENERGY_PLATFORM_HOME": str(home), "ENERGY_PLATFORM_SOURCE": f"csv:{path}"}
        started = time.perf_counter()
        done = subprocess.run([str(Path(sys.executable).parent / "energy-platform"), "demo"], env=env,
                              capture_output=True, text=True, check=True)
        rmae = re.search(r"backtest rMAE ([0-9.]+)", done.stdout).group(1)
        read = re.search(r"NOTE  exogenous series: (.*)", done.stdout)
        print(f"{label}: backtest rMAE {rmae}; exogenous {read.group(1) if read else 'none in the file'}; "
              f"demo {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
