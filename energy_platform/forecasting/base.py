"""The interface every model shares, and the checked training/prediction arrays they all use.

All data checks live here so a bad window or a gap is refused the same way by every model,
before any fitting starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Protocol, runtime_checkable

import numpy as np
import polars as pl

from energy_platform.forecasting.errors import ForecastInputError
from energy_platform.forecasting.features import (
    HOURS,
    TARGET_COLUMNS,
    DailyPanel,
    FeatureSpec,
    daily_panel,
    feature_matrix,
    feature_names,
    lag_column,
    target_matrix,
)

QUANTILES = (0.1, 0.5, 0.9)


@runtime_checkable
class Forecaster(Protocol):
    """A day-ahead model: fit on a window ending at `train_end`, forecast one target day.

    `fit` uses prices of days [train_end - window_days + 1, train_end] only (the first
    `max_lag` of them serve as lags). `predict` uses data up to `target - horizon_days` only
    and returns 24 rows: `hour`, `forecast`, plus `p10`, `p50`, `p90` when `has_intervals`.
    """

    name: str
    horizon_days: int
    has_intervals: bool
    reads_exogenous: bool  # the file's exogenous series are inputs (their gaps matter to it)

    def fit(self, prices: pl.DataFrame, train_end: date, window_days: int) -> None: ...

    def predict(self, prices: pl.DataFrame, target: date) -> pl.DataFrame: ...


@dataclass
class TrainingSet:
    X: np.ndarray
    Y: np.ndarray
    days: list[date]
    names: list[str]
    exog: list[str]


def min_window_days(spec: FeatureSpec, min_train_days: int) -> int:
    return spec.max_lag + min_train_days


def _check_window(spec: FeatureSpec, window_days: int, min_train_days: int) -> None:
    need = min_window_days(spec, min_train_days)
    if not isinstance(window_days, int) or window_days < need:
        raise ForecastInputError(
            f"window of {window_days} days is too short: this model needs at least {need} "
            f"({spec.max_lag} days of lags + {min_train_days} training days)"
        )


def training_set(
    prices: pl.DataFrame | DailyPanel,
    spec: FeatureSpec,
    train_end: date,
    window_days: int,
    min_train_days: int,
) -> TrainingSet:
    """Features and targets of every day in the window whose lags also lie in the window."""
    panel = prices if isinstance(prices, DailyPanel) else daily_panel(prices)
    _check_window(spec, window_days, min_train_days)
    start = train_end - timedelta(days=window_days - 1)
    if start < panel.start or train_end > panel.end:
        raise ForecastInputError(
            f"training window {start}..{train_end} lies outside the data {panel.start}..{panel.end}"
        )
    first_target = spec.first_target(start)
    days = [first_target + timedelta(days=i) for i in range((train_end - first_target).days + 1)]
    idx = panel.index_of(days)
    window_idx = np.arange(panel.index_of([start])[0], idx[-1] + 1)
    gaps = np.isnan(panel.prices[window_idx]).any(axis=1)
    for m in panel.exog.values():
        gaps |= np.isnan(m[window_idx]).any(axis=1)
    if gaps.any():
        bad = panel.day(window_idx[int(np.flatnonzero(gaps)[0])])
        raise ForecastInputError(
            f"gap in the training history: {int(gaps.sum())} day(s) with missing values in "
            f"{start}..{train_end}, first {bad}"
        )
    X = feature_matrix(panel, spec, idx)
    Y = target_matrix(panel, idx)
    return TrainingSet(X=X, Y=Y, days=days, names=feature_names(spec, list(panel.exog)), exog=list(panel.exog))


def prediction_features(
    prices: pl.DataFrame | DailyPanel, spec: FeatureSpec, target: date, exog: list[str]
) -> np.ndarray:
    """The single feature row of `target`, refusing a row with unknown inputs."""
    panel = prices if isinstance(prices, DailyPanel) else daily_panel(prices)
    if list(panel.exog) != exog:
        raise ForecastInputError(f"exogenous columns {list(panel.exog)} differ from the fitted {exog}")
    X = feature_matrix(panel, spec, panel.index_of([target]))
    n_op = len(spec.operating_columns())  # operating values may be unknown: the model flags them
    if np.isnan(X[:, : X.shape[1] - n_op]).any():
        lag_days = sorted(
            {target - timedelta(days=k) for k in spec.resolved_price_lags()}
            | ({target - timedelta(days=k) for k in spec.resolved_exog_lags()} if exog else set())
        )
        raise ForecastInputError(
            f"missing history to forecast {target} with horizon {spec.horizon_days}: "
            f"needs complete days {', '.join(str(d) for d in lag_days)} within the data "
            f"{panel.start}..{panel.end}"
        )
    return X


def forecast_frame(p50: np.ndarray, p10: np.ndarray | None = None, p90: np.ndarray | None = None) -> pl.DataFrame:
    cols: dict[str, object] = {
        "hour": pl.Series("hour", np.arange(HOURS), dtype=pl.Int32),
        "forecast": np.asarray(p50, dtype=float),
    }
    if p10 is not None and p90 is not None:
        cols.update(p10=np.asarray(p10, dtype=float), p50=np.asarray(p50, dtype=float), p90=np.asarray(p90, dtype=float))
    return pl.DataFrame(cols)


def _feature_columns(frame: pl.DataFrame, spec: FeatureSpec, exog: list[str]) -> list[str]:
    names = feature_names(spec, exog)
    absent = [n for n in names if n not in frame.columns]
    if absent:
        raise ForecastInputError(
            f"the feature rows lack {len(absent)} column(s) this model reads, first {absent[:3]}: "
            "recompute the feature store with the model's spec (features asset, full_recompute)"
        )
    return names


def _required_columns(names: list[str], spec: FeatureSpec) -> list[str]:
    op = set(spec.operating_columns())
    return [n for n in names if n not in op]


def training_set_from_features(
    frame: pl.DataFrame, spec: FeatureSpec, train_end: date, window_days: int, min_train_days: int,
    exog: list[str] | None = None,
) -> TrainingSet:
    """The same training set as `training_set`, read from feature-store rows (`features.daily`).

    The rows are `build_feature_frame`'s, so X is bit for bit what the panel would give; the
    window's target days must all be there with known prices (operating values may be null).
    """
    exog = list(exog or [])
    _check_window(spec, window_days, min_train_days)
    start = train_end - timedelta(days=window_days - 1)
    first_target = spec.first_target(start)
    days = [first_target + timedelta(days=i) for i in range((train_end - first_target).days + 1)]
    names = _feature_columns(frame, spec, exog)
    rows = frame.filter(pl.col("target_date").is_between(first_target, train_end)).sort("target_date")
    have = set(rows["target_date"].to_list())
    absent = [d for d in days if d not in have]
    if absent:
        raise ForecastInputError(
            f"the feature rows lack {len(absent)} target day(s) of the window {first_target}..{train_end}, first {absent[0]} "
            "(features.daily behind the prices? materialize `features`)"
        )
    if rows["target_date"].is_duplicated().any():
        raise ForecastInputError("the feature rows hold a target day twice")
    required = _required_columns(names, spec) + list(TARGET_COLUMNS)
    bad = rows.filter(pl.any_horizontal([pl.col(c).is_null() for c in required]))
    if bad.height:
        raise ForecastInputError(
            f"gap in the training history: {bad.height} target day(s) with missing prices or targets in "
            f"{first_target}..{train_end}, first {bad['target_date'][0]}"
        )
    X = rows.select(names).cast(pl.Float64).fill_null(np.nan).to_numpy()
    Y = rows.select(TARGET_COLUMNS).cast(pl.Float64).to_numpy()
    return TrainingSet(X=X, Y=Y, days=days, names=names, exog=exog)


def prediction_features_from_frame(frame: pl.DataFrame, spec: FeatureSpec, target: date, exog: list[str]) -> np.ndarray:
    """The feature row of `target` from feature-store rows, refusing unknown price inputs."""
    names = _feature_columns(frame, spec, exog)
    row = frame.filter(pl.col("target_date") == target)
    if row.height != 1:
        raise ForecastInputError(f"the feature rows hold {row.height} row(s) for {target}, need exactly 1")
    required = _required_columns(names, spec)
    nulls = [c for c in required if row[c][0] is None]
    if nulls:
        def days(series: str) -> str:
            lags = {parsed[1] for c in nulls if (parsed := lag_column(c)) and parsed[0] == series}
            return ", ".join(str(target - timedelta(days=k)) for k in sorted(lags, reverse=True))

        unknown = [f"days without all 24 prices: {d}" for d in [days("price")] if d]
        unknown += [f"{e} unknown on {d} (a file's day ahead of its prices carries it)" for e in exog if (d := days(e))]
        raise ForecastInputError(
            f"missing history to forecast {target} with horizon {spec.horizon_days}: "
            f"{len(nulls)} unknown input(s) in its feature row, first {nulls[0]}"
            + "".join(f"; {u}" for u in unknown)
        )
    return row.select(names).cast(pl.Float64).fill_null(np.nan).to_numpy()
