"""Distribution drift between a reference window and the latest days, computed with Evidently.

One function, `evaluate_drift`, turns two Polars frames into a `DriftResult` (severity, share of
drifted columns, per-column scores, the HTML report's path). Three loaders build its inputs from
the warehouse: the feature table, the served forecasts and the raw hourly prices.

The statistical method is fixed, not left to Evidently's row-count switch (KS below 1,000 rows,
Wasserstein above), so a check means the same thing whatever the window size. The default is
the **normed Wasserstein distance** (earth mover's distance divided by the reference standard
deviation), because of what these series are:

- Bolsa prices are spiky and heavy tailed (scarcity hours, El Niño years). Wasserstein measures
  *how far* the distribution moved in units of the reference spread, and a handful of spike hours
  moves it only in proportion to their mass; it does not saturate like KS or PSI on a few
  extreme bins, and needs no binning choice for long tails.
- It is not a p-value. Hourly prices are strongly autocorrelated (24 hours of a day move
  together) so any hypothesis test that assumes independent rows (KS, chi-square) rejects on
  almost every window of 672 rows; a distance does not grow with the row count.
- Its threshold reads as "the current window moved by this many reference standard deviations".

Default threshold 0.5, not Evidently's 0.1: a 28-day window holds about 28 independent
observations (28 feature rows; 672 hours that are 28 days of correlated hours). Measured on
same-distribution samples (n=28 vs 365), the normed distance has median ~0.2 and 99th percentile
~0.5 (normal) to ~0.6 (log-normal), so 0.1 would flag almost every column of an unchanged
process. 0.5 flags a shift of half a reference standard deviation, which a person would act on.
Both method and threshold are parameters (`psi`, `jensenshannon`, `ks`, ... also work; for a
p-value method the threshold is the p-value below which a column drifts).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from energy_platform.warehouse.db import connect

DEFAULT_METHOD = "wasserstein"
DEFAULT_THRESHOLD = 0.5
DEFAULT_CAT_METHOD = "jensenshannon"
DEFAULT_MIN_ROWS = 20
FEATURE_EXCLUDED = ("target_date", "cutoff_date", "horizon_days")

SEVERITIES = ("pass", "warn", "error", "not_enough_data")


@dataclass
class DriftResult:
    """What one drift evaluation found; `drift_share` is None when there was too little data."""

    severity: str
    drift_share: float | None
    n_columns: int
    drifted_columns: dict[str, float]
    report_path: str | None
    report_error: str | None
    reference_rows: int
    current_rows: int
    method: str = DEFAULT_METHOD
    threshold: float = DEFAULT_THRESHOLD
    column_scores: dict[str, float] = field(default_factory=dict)
    skipped_columns: dict[str, str] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.severity == "pass"

    def summary(self) -> str:
        if self.severity == "not_enough_data":
            return (
                f"not enough data: {self.reference_rows} reference rows, {self.current_rows} "
                f"current rows, {self.n_columns} usable columns"
            )
        top = sorted(self.drifted_columns.items(), key=lambda kv: -kv[1])[:5]
        listed = ", ".join(f"{c} ({s:.2f})" for c, s in top)
        return (
            f"{len(self.drifted_columns)}/{self.n_columns} columns drifted "
            f"(share {self.drift_share:.2f}, {self.method} >= {self.threshold:g})"
            + (f": {listed}" if listed else "")
        )


def _is_numeric(dtype: pl.DataType) -> bool:
    return dtype.is_numeric() or dtype == pl.Boolean


def _usable(frame: pl.DataFrame, column: str) -> int:
    values = frame.get_column(column)
    if values.dtype.is_float():
        return int((values.is_not_null() & values.is_not_nan()).sum())
    return int(values.is_not_null().sum())


def evaluate_drift(
    reference: pl.DataFrame,
    current: pl.DataFrame,
    columns: list[str],
    *,
    warn_share: float,
    error_share: float,
    report_path: Path | None,
    method: str = DEFAULT_METHOD,
    threshold: float = DEFAULT_THRESHOLD,
    min_rows: int = DEFAULT_MIN_ROWS,
    cat_method: str = DEFAULT_CAT_METHOD,
    cat_threshold: float = 0.1,
) -> DriftResult:
    """Compare `current` with `reference` column by column; grade the share of drifted columns.

    Numeric columns are declared numerical and tested with `method`/`threshold`; any other
    column is declared categorical (as text) and tested with `cat_method`/`cat_threshold`.
    Severity: 'error' when the drifted share is above `error_share`, 'warn' when above
    `warn_share`, else 'pass' (strictly above, so `warn_share=0` means "any drifted column").
    'not_enough_data' when either frame has fewer than `min_rows` rows, or no column has
    `min_rows` non-null values on both sides; callers should report that as a warning.
    Columns with too few non-null values are skipped and listed in `skipped_columns`.
    The HTML report is written to `report_path` if given; if that fails, the result is still
    returned with `report_error` set.
    """
    if not 0.0 <= warn_share <= error_share <= 1.0:
        raise ValueError(f"need 0 <= warn_share <= error_share <= 1, got {warn_share}, {error_share}")
    if not columns:
        raise ValueError("no columns to compare")
    missing = [c for c in columns if c not in reference.columns or c not in current.columns]
    if missing:
        raise ValueError(f"columns missing from the reference or current frame: {missing}")

    base = dict(
        reference_rows=reference.height,
        current_rows=current.height,
        method=method,
        threshold=threshold,
    )
    skipped: dict[str, str] = {}
    usable: list[str] = []
    if reference.height >= min_rows and current.height >= min_rows:
        for column in columns:
            n_ref, n_cur = _usable(reference, column), _usable(current, column)
            if min(n_ref, n_cur) < min_rows:
                skipped[column] = f"{n_ref} reference / {n_cur} current non-null values < {min_rows}"
            else:
                usable.append(column)
    if not usable:
        return DriftResult(
            severity="not_enough_data",
            drift_share=None,
            n_columns=0,
            drifted_columns={},
            report_path=None,
            report_error=None,
            skipped_columns=skipped,
            **base,
        )

    numerical = [c for c in usable if _is_numeric(reference.schema[c]) and _is_numeric(current.schema[c])]
    categorical = [c for c in usable if c not in numerical]
    scores, drifted_flags, snapshot = _run_evidently(
        reference, current, numerical, categorical, method, threshold, cat_method, cat_threshold
    )
    drifted = {c: scores[c] for c in usable if drifted_flags[c]}
    share = len(drifted) / len(usable)
    if share > error_share:
        severity = "error"
    elif share > warn_share:
        severity = "warn"
    else:
        severity = "pass"

    written, error = None, None
    if report_path is not None:
        written, error = _write_html(snapshot, Path(report_path))
    return DriftResult(
        severity=severity,
        drift_share=share,
        n_columns=len(usable),
        drifted_columns=drifted,
        report_path=written,
        report_error=error,
        column_scores=scores,
        skipped_columns=skipped,
        **base,
    )


def _to_pandas(frame: pl.DataFrame, numerical: list[str], categorical: list[str]):
    exprs = [pl.col(c).cast(pl.Float64).fill_nan(None) for c in numerical]
    exprs += [pl.col(c).cast(pl.String) for c in categorical]
    return frame.select(exprs).to_pandas()


def _run_evidently(reference, current, numerical, categorical, method, threshold, cat_method, cat_threshold):
    from evidently import DataDefinition, Dataset, Report
    from evidently.legacy.tests.base_test import TestStatus
    from evidently.metrics import ValueDrift

    # One ValueDrift per column and nothing else: Evidently's DriftedColumnsCount would test every
    # column a second time (a third of a report's cost) for a count the check computes from these
    # same per-column decisions and puts in its metadata, the warehouse and the dashboard.
    definition = DataDefinition(numerical_columns=numerical, categorical_columns=categorical)
    per_column = {c: (method, threshold) for c in numerical} | {c: (cat_method, cat_threshold) for c in categorical}
    value_metrics = [ValueDrift(column=c, method=m, threshold=t) for c, (m, t) in per_column.items()]
    report = Report(value_metrics, include_tests=True)
    # Evidently's dataset-level correlation table divides by each column's spread: a column constant
    # over a window (a band clipped at the floor, a test's flat price) warns "invalid value encountered
    # in divide". Those correlations feed neither a score nor a flag, so the warning says nothing here.
    with np.errstate(divide="ignore", invalid="ignore"):
        snapshot = report.run(
            current_data=Dataset.from_pandas(_to_pandas(current, numerical, categorical), data_definition=definition),
            reference_data=Dataset.from_pandas(_to_pandas(reference, numerical, categorical), data_definition=definition),
        )
    scores: dict[str, float] = {}
    flags: dict[str, bool] = {}
    results = snapshot.metric_results
    for metric in value_metrics:
        result = results[metric.metric_id]
        column = metric.column
        scores[column] = float(result.value)
        # Evidently's own decision (distance >= threshold, or p-value < threshold).
        flags[column] = any(t.status == TestStatus.FAIL for t in result.tests)
    return scores, flags, snapshot


def _write_html(snapshot, path: Path) -> tuple[str | None, str | None]:
    """Write the report next to its final name, then rename: a reader never sees half a file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        snapshot.save_html(str(tmp))  # save_html silently ignores a Path: it must be a str
        if not tmp.exists() or tmp.stat().st_size == 0:
            raise OSError(f"Evidently wrote nothing to {tmp}")
        os.replace(tmp, path)
        return str(path), None
    except Exception as exc:  # the drift result matters more than its HTML
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        return None, f"could not write drift report {path}: {type(exc).__name__}: {exc}"


# --------------------------------------------------------------------------- warehouse inputs


def _windows(current_end: date, days: int, reference_start: date, reference_end: date) -> date:
    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}")
    if reference_end < reference_start:
        raise ValueError(f"empty reference range {reference_start}..{reference_end}")
    current_start = current_end - timedelta(days=days - 1)
    if reference_end >= current_start:
        raise ValueError(
            f"reference range {reference_start}..{reference_end} overlaps the current window "
            f"{current_start}..{current_end}"
        )
    return current_start


def date_range(frame: pl.DataFrame, column: str | None = None) -> tuple[date, date] | None:
    """(first, last) date of a frame returned by the loaders below; None when it is empty."""
    column = column or ("target_date" if "target_date" in frame.columns else "date")
    if frame.height == 0:
        return None
    return frame.get_column(column).min(), frame.get_column(column).max()


def _table_exists(conn, schema: str, table: str) -> bool:
    return bool(
        conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
            [schema, table],
        ).fetchall()[0][0]
    )


def _latest(conn, sql: str) -> date:
    value = conn.execute(sql).fetchall()[0][0]
    if value is None:
        raise ValueError(f"no data to take the current window from ({sql})")
    return value


def feature_drift_inputs(
    warehouse_path: str | Path,
    reference_start: date,
    reference_end: date,
    current_end: date | None = None,
    days: int = 28,
) -> tuple[pl.DataFrame, pl.DataFrame, list[str]]:
    """Rows of `features.daily`: the `days` target days up to `current_end` (default: the latest
    stored) against the target days of [reference_start, reference_end].

    Every numeric column is a feature except target_date, cutoff_date, horizon_days and the
    targets (`target_h*`). Frames keep `target_date` for display; it is not in the column list.
    """
    with connect(warehouse_path, read_only=True) as conn:
        if not _table_exists(conn, "features", "daily"):
            raise ValueError(f"{warehouse_path} has no features.daily table yet")
        if current_end is None:
            current_end = _latest(conn, "SELECT max(target_date) FROM features.daily")
        current_start = _windows(current_end, days, reference_start, reference_end)
        query = "SELECT * FROM features.daily WHERE target_date BETWEEN ? AND ? ORDER BY target_date"
        reference = conn.sql(query, params=[reference_start, reference_end]).pl()
        current = conn.sql(query, params=[current_start, current_end]).pl()
    columns = [
        c
        for c, dtype in reference.schema.items()
        if _is_numeric(dtype) and c not in FEATURE_EXCLUDED and not c.startswith("target_h")
    ]
    return reference, current, columns


PREDICTION_COLUMNS = ["forecast", "p10", "p90", "band_80", "forecast_shape", "daily_mean", "daily_spread"]

_PREDICTIONS_SQL = """
WITH served AS (
    SELECT target_date, model_version
    FROM ml.predictions
    WHERE target_date BETWEEN ? AND ? AND (?::VARCHAR IS NULL OR model_version = ?::VARCHAR)
    GROUP BY target_date, model_version
    QUALIFY row_number() OVER (
        PARTITION BY target_date ORDER BY max(created_at) DESC, model_version DESC) = 1
)
SELECT p.target_date, p.hour, p.model_version, p.forecast, p.p10, p.p90,
       p.p90 - p.p10 AS band_80,
       p.forecast - avg(p.forecast) OVER d AS forecast_shape,
       avg(p.forecast) OVER d AS daily_mean,
       max(p.forecast) OVER d - min(p.forecast) OVER d AS daily_spread
FROM ml.predictions p JOIN served USING (target_date, model_version)
WINDOW d AS (PARTITION BY p.target_date)
ORDER BY p.target_date, p.hour
"""


def prediction_drift_inputs(
    warehouse_path: str | Path,
    reference_start: date,
    reference_end: date,
    current_end: date | None = None,
    days: int = 28,
    *,
    model_version: str | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame, list[str]]:
    """Hourly forecasts of `ml.predictions`: the last `days` target days vs the reference range.

    One forecast per target day: `model_version` if given, else the most recently created one
    (the forecast that was served). Columns: forecast, p10, p90, the 80% band width, and the
    hourly profile (`forecast_shape` = forecast minus its day's mean) with the day's mean and
    spread. The hour itself is not a column: every day has 24, so its distribution never moves;
    the daily shape is what carries the hour-of-day information.
    """
    with connect(warehouse_path, read_only=True) as conn:
        if current_end is None:
            current_end = _latest(conn, "SELECT max(target_date) FROM ml.predictions")
        current_start = _windows(current_end, days, reference_start, reference_end)
        reference = conn.sql(
            _PREDICTIONS_SQL, params=[reference_start, reference_end, model_version, model_version]
        ).pl()
        current = conn.sql(_PREDICTIONS_SQL, params=[current_start, current_end, model_version, model_version]).pl()
    return reference, current, list(PREDICTION_COLUMNS)


PRICE_COLUMNS = ["price", "price_shape", "daily_mean", "daily_max", "daily_spread"]

_PRICES_SQL = """
SELECT date, hour, price,
       price - avg(price) OVER d AS price_shape,
       avg(price) OVER d AS daily_mean,
       max(price) OVER d AS daily_max,
       max(price) OVER d - min(price) OVER d AS daily_spread
FROM raw.prices_hourly
WHERE date BETWEEN ? AND ?
WINDOW d AS (PARTITION BY date)
ORDER BY date, hour
"""


def price_drift_inputs(
    warehouse_path: str | Path,
    reference_start: date,
    reference_end: date,
    current_end: date | None = None,
    days: int = 28,
) -> tuple[pl.DataFrame, pl.DataFrame, list[str]]:
    """Hourly prices of `raw.prices_hourly`: the last `days` days (default: up to the latest day
    with a price) vs the reference range; price, its hourly profile (price minus the day's mean),
    and the day's mean, maximum and spread (max - min) repeated on each hour. Missing hours stay
    null and are ignored by the test.
    """
    with connect(warehouse_path, read_only=True) as conn:
        if current_end is None:
            current_end = _latest(conn, "SELECT max(date) FROM raw.prices_hourly WHERE price IS NOT NULL")
        current_start = _windows(current_end, days, reference_start, reference_end)
        reference = conn.sql(_PRICES_SQL, params=[reference_start, reference_end]).pl()
        current = conn.sql(_PRICES_SQL, params=[current_start, current_end]).pl()
    return reference, current, list(PRICE_COLUMNS)

