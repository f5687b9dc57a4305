"""Monitoring benchmark: wall time of one drift check on realistic sizes.

Run: `.venv/bin/python bench/bench_monitoring.py`. Loads the embedded real XM prices into a
fresh warehouse under a temporary folder, builds a `features.daily` table of 80 float columns
(one row per target day, price lags d-1, d-2, d-7 per hour plus daily aggregates), then times
one check = warehouse read + Evidently evaluation + HTML report, for 28 current days against
one year of reference: the feature table (80 columns x 365 rows vs 28) and hourly prices
(5 columns x 8,760 rows vs 672). The first check of a process also pays Evidently's import.
Prints Markdown and writes bench/results/monitoring.md. Target: under 3 s per check.
"""

from __future__ import annotations

import platform
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from energy_platform.monitoring.drift import (  # noqa: E402
    evaluate_drift,
    feature_drift_inputs,
    price_drift_inputs,
)
from energy_platform.warehouse.db import connect  # noqa: E402
from energy_platform.warehouse.prices import replace_prices  # noqa: E402

DATA = ROOT / "energy_platform" / "sources" / "data" / "precio_bolsa_nacional_2015_2024.csv.gz"
CURRENT_END = date(2024, 12, 31)
REFERENCE = (date(2023, 11, 1), date(2024, 10, 31))  # one year, ending before the current window
REPEATS = 5


def build_warehouse(path: Path) -> None:
    prices = (
        pl.read_csv(DATA, try_parse_dates=True)
        .rename({"Date": "ts", "Price": "price"})
        .with_columns(pl.col("ts").cast(pl.Datetime("us")))
        .with_columns(pl.col("ts").dt.date().alias("date"), pl.col("ts").dt.hour().cast(pl.Int32).alias("hour"))
        .filter(pl.col("date") >= date(2023, 1, 1))
    )
    replace_prices(path, prices, prices["date"].min(), prices["date"].max(), source="sample")
    wide = prices.pivot(on="hour", index="date", values="price").sort("date")
    hours = [str(h) for h in range(24)]
    exprs = []
    for lag in (1, 2, 7):
        exprs += [pl.col(h).shift(lag).alias(f"price_d{lag}_h{int(h):02d}") for h in hours]
    daily = pl.mean_horizontal(hours)
    exprs += [
        daily.shift(1).alias("mean_d1"),
        daily.shift(7).alias("mean_d7"),
        pl.max_horizontal(hours).shift(1).alias("max_d1"),
        pl.min_horizontal(hours).shift(1).alias("min_d1"),
        (pl.max_horizontal(hours) - pl.min_horizontal(hours)).shift(1).alias("spread_d1"),
        daily.shift(1).rolling_mean(7).alias("mean_7d"),
        daily.shift(1).rolling_std(7).alias("std_7d"),
        pl.col("date").dt.weekday().cast(pl.Float64).alias("dow"),
    ]
    features = wide.select(
        pl.col("date").alias("target_date"),
        (pl.col("date") - pl.duration(days=1)).alias("cutoff_date"),
        pl.lit(1).alias("horizon_days"),
        *exprs,
        *[pl.col(h).alias(f"target_h{int(h):02d}") for h in hours],
    ).filter(pl.col("target_date") >= date(2023, 2, 1))
    with connect(path) as conn:
        conn.register("feat", features.to_arrow())
        conn.execute("CREATE OR REPLACE TABLE features.daily AS SELECT * FROM feat")
        conn.unregister("feat")


def one_check(loader, warehouse: Path, report: Path | None):
    start = time.perf_counter()
    reference, current, columns = loader(warehouse, *REFERENCE, current_end=CURRENT_END, days=28)
    loaded = time.perf_counter()
    result = evaluate_drift(reference, current, columns, warn_share=0.3, error_share=0.6, report_path=report)
    end = time.perf_counter()
    return end - start, loaded - start, result, reference.height, current.height


def main() -> None:
    rows = []
    with tempfile.TemporaryDirectory(dir=ROOT / "bench") as tmp:
        warehouse = Path(tmp) / "warehouse.duckdb"
        build_warehouse(warehouse)
        first = None
        for name, loader in (("features (80 cols)", feature_drift_inputs), ("hourly prices (5 cols)", price_drift_inputs)):
            times, html_times = [], []
            for i in range(REPEATS):
                seconds, read_s, result, n_ref, n_cur = one_check(loader, warehouse, None)
                if first is None:
                    first = seconds  # includes `import evidently`
                else:
                    times.append(seconds)
                html_s, *_ = one_check(loader, warehouse, Path(tmp) / f"{i}.html")
                html_times.append(html_s)
            size = Path(result.report_path or (Path(tmp) / "0.html")).stat().st_size
            rows.append(
                (name, n_ref, n_cur, result.n_columns, statistics.median(times), statistics.median(html_times),
                 read_s, size, result.severity, result.drift_share)
            )
    lines = [
        "# Monitoring benchmark: one drift check",
        "",
        f"Machine: {platform.machine()}, Python {platform.python_version()}; median of "
        f"{REPEATS} warm runs. Current = 28 days ending {CURRENT_END}, reference = "
        f"{REFERENCE[0]}..{REFERENCE[1]}; normed Wasserstein, threshold 0.5.",
        "",
        "| check | reference rows | current rows | columns | check, no HTML (s) | check + HTML (s) "
        "| warehouse read (s) | HTML size (MB) | severity on real data | drift share |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, n_ref, n_cur, n_cols, warm, html, read_s, size, severity, share in rows:
        lines.append(
            f"| {name} | {n_ref:,} | {n_cur:,} | {n_cols} | {warm:.2f} | {html:.2f} | {read_s:.3f} "
            f"| {size / 1e6:.1f} | {severity} | {share:.2f} |"
        )
    lines += [
        "",
        f"First check in a fresh process (includes importing Evidently): {first:.2f} s.",
        "",
        "Most of a check is Evidently building the per-column plotly widgets inside `ValueDrift`; "
        "the statistics themselves take a few tenths of a second.",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    out = ROOT / "bench" / "results" / "monitoring.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)


if __name__ == "__main__":
    main()
