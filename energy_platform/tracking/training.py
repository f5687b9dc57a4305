"""Train a candidate, score it honestly, and record it in MLflow as a registered challenger.

The model is fitted from the feature store's rows (`features.daily`, the same rows predictions
are served from); the recent-weeks backtest walks forward over the same features computed from
raw prices and operating data by the same function.

The candidate's score is a walk-forward backtest over the most recent weeks (each day forecast
by a model fitted only on data before it); the model that is registered is then fitted on the
whole window up to the last complete day. Registration comes last, so a failure anywhere
before leaves no version behind, and a failure while aliasing removes the version it created.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta

import mlflow
import numpy as np
import polars as pl
from mlflow import MlflowClient

import energy_platform
from energy_platform.forecasting.backtest import BacktestResult, backtest_recent
from energy_platform.forecasting.errors import ForecastInputError
from energy_platform.forecasting.features import HOURS, daily_panel, exogenous_in_features, exogenous_names, lag_column
from energy_platform.forecasting.model import MLPForecaster
from energy_platform.forecasting.models import make_model
from energy_platform.forecasting.operating_features import OperatingData, format_groups
from energy_platform.forecasting.request_history import history_days
from energy_platform.serving import request_frame
from energy_platform.settings import PROJECT_ROOT
from energy_platform.tracking import MODEL_NAME
from energy_platform.tracking.artifact_check import SERVED_FORECASTS_ARTIFACT, forecast_days
from energy_platform.tracking.pyfunc_model import in_memory_forecaster, log_pyfunc
from energy_platform.tracking.registry import BACKTEST_ARTIFACT, CHALLENGER
from energy_platform.tracking.version_card import KIND_MODEL


@dataclass(frozen=True)
class TrainingParams:
    horizon_days: int = 2
    window_days: int = 1456
    backtest_weeks: int = 4
    recalibrate_every: int = 7
    seed: int = 0
    model_overrides: dict = field(default_factory=dict)  # MLPConfig fields, e.g. max_epochs

    def build(self) -> MLPForecaster:
        return make_model("forecaster", horizon_days=self.horizon_days, seed=self.seed, **self.model_overrides)


@dataclass
class Candidate:
    forecaster: MLPForecaster
    params: TrainingParams
    train_start: date
    train_end: date
    fingerprint: dict
    backtest: BacktestResult
    fit_seconds: float
    exogenous: ExogenousChoice

    def backtest_metrics(self, model: str = "forecaster") -> dict:
        return next(m for m in self.backtest.metrics if m["model"] == model)


def last_complete_day(prices: pl.DataFrame) -> date:
    complete = prices.group_by("date").agg(pl.col("price").is_not_null().sum().alias("n")).filter(pl.col("n") == 24)
    if complete.is_empty():
        raise ForecastInputError("no complete day of 24 prices to train on")
    return complete["date"].max()


def fingerprint(prices: pl.DataFrame, start: date, end: date) -> dict:
    """Content hash, range and size of the exact rows a model was trained on."""
    rows = prices.filter(pl.col("date").is_between(start, end)).sort("ts").select("ts", "price")
    digest = hashlib.sha256(rows.write_csv().encode()).hexdigest()
    return {"sha256": digest, "start": start.isoformat(), "end": end.isoformat(), "rows": rows.height}


def recent_backtest(prices: pl.DataFrame, params: TrainingParams, end: date, weeks: int | None = None,
                    operating: OperatingData | None = None, exogenous: list[str] | None = None) -> BacktestResult:
    """Walk-forward backtest of a training procedure over the `weeks` weeks ending `end`.

    The first refit ends H days before the first test day; with a short history (a new market,
    a replay of 2015) the window is what exists by then. `exogenous`: the columns of `prices` the
    models read (a file's load or wind forecasts, `choose_exogenous`).
    """
    window = _first_backtest_window(prices, params, end, weeks)[1]
    model = params.build()
    panel = daily_panel(prices.select("ts", "price", *(exogenous or [])), operating if model.spec.operating_groups else None)
    need = getattr(model, "min_window_days", lambda n: 1)(len(panel.exog))
    if params.window_days < need:  # the window asked for, not the history, is short (helper S, session 21)
        raise ForecastInputError(f"window_days {params.window_days} is shorter than the {need} days a fit of this model "
                                 "needs: train on a longer window")
    if window < need:  # the backtest's own message named its first window, not the history a file needs
        backtest_days, first = 7 * (weeks or params.backtest_weeks), prices["date"].min()
        raise ForecastInputError(
            f"the history {first}..{end} has {(end - first).days + 1} days; training needs at least "
            f"{need + backtest_days + params.horizon_days - 1} ({need} for the first fit of its {backtest_days}-day "
            f"recent backtest, those {backtest_days} days, {params.horizon_days - 1} between them at horizon {params.horizon_days})"
        )
    return backtest_recent(panel, model, weeks or params.backtest_weeks, recalibrate_every=params.recalibrate_every,
                           window_days=window, end=end)


def _first_backtest_window(prices: pl.DataFrame, params: TrainingParams, end: date, weeks: int | None) -> tuple[date, int]:
    """The first day and length of the recent backtest's first training window."""
    first_test = end - timedelta(days=7 * (weeks or params.backtest_weeks) - 1)
    last_train = first_test - timedelta(days=params.horizon_days)
    window = history_window(params.window_days, prices["date"].min(), last_train)
    return last_train - timedelta(days=window - 1), window


@dataclass(frozen=True)
class ExogenousChoice:
    """The exogenous series a candidate reads, and why the others are left out (for its run)."""

    columns: list[str]
    note: str  # "" when the data has no exogenous series


def choose_exogenous(prices: pl.DataFrame, first_day: date, last_day: date) -> ExogenousChoice:
    """A model reads a file's exogenous series only where it is known at every hour from `first_day`
    (its first training window) to `last_day` + 1, the day ahead of the prices: the forecast of
    day last + H reads the exogenous forecasts of last + 1 (features.py). A series that stops, starts
    late or has no day ahead is stored but not read (a model trained on it could not forecast
    tomorrow), and the run says so."""
    names = exogenous_names(prices)
    if not names:
        return ExogenousChoice([], "")
    ahead = last_day + timedelta(days=1)
    days = pl.date_range(first_day, ahead, "1d", eager=True).alias("date").to_frame()
    span = prices.filter(pl.col("date").is_between(first_day, ahead))
    used, left_out = [], []
    for name in names:
        known = span.group_by("date").agg(pl.col(name).is_not_null().sum().alias("n")).filter(pl.col("n") == HOURS)
        missing = days.join(known, on="date", how="anti")["date"].sort()
        if missing.is_empty():
            used.append(name)
        elif missing.to_list() == [ahead]:
            left_out.append(f"{name} (no day ahead of the prices: {ahead} unknown, which a forecast of tomorrow reads)")
        else:
            left_out.append(f"{name} (unknown on {missing.len()} day(s) of {first_day}..{ahead}, first {missing[0]})")
    note = f"read: {', '.join(used) or 'none'}" + (f"; not read: {'; '.join(left_out)}" if left_out else "")
    return ExogenousChoice(used, note)


def _without_series(features: pl.DataFrame, names: list[str]) -> pl.DataFrame:
    """Feature rows without the lag columns of the exogenous series `names`."""
    return features.select(c for c in features.columns if (lag_column(c) or ("", 0))[0] not in names)


def history_window(window_days: int, first: date, end: date) -> int:
    """The training window ending `end`, cut to the history from `first`: a market with less
    history than the window (a new market, a CSV of a year) trains on what exists; a window too
    short for the model is then refused by its fit."""
    return min(window_days, (end - first).days + 1)


def train_candidate(prices: pl.DataFrame, params: TrainingParams, features: pl.DataFrame | None = None,
                    operating: OperatingData | None = None) -> Candidate:
    """Backtest the procedure on recent weeks, then fit the model on the whole window, from the
    feature-store rows `features` when given (the asset's way), else from `prices`/`operating`."""
    train_end = last_complete_day(prices)
    forecaster = params.build()
    first_day = _first_backtest_window(prices, params, train_end, None)[0]
    exogenous = choose_exogenous(prices, first_day, train_end)
    result = recent_backtest(prices, params, train_end, operating=operating, exogenous=exogenous.columns)
    first = prices["date"].min()
    if features is not None and features.height:  # the store's first row already needs max_lag days before it
        first = max(first, features["target_date"].min() - timedelta(days=forecaster.spec.max_lag))
    window = history_window(params.window_days, first, train_end)
    train_start = train_end - timedelta(days=window - 1)
    started = time.perf_counter()
    if features is not None:  # the model reads the exogenous series the rows carry: those chosen
        unread = [e for e in exogenous_in_features(features.columns, forecaster.spec) if e not in exogenous.columns]
        forecaster.fit(_without_series(features, unread), train_end, window)
    else:
        panel = daily_panel(prices.select("ts", "price", *exogenous.columns),
                            operating if forecaster.spec.operating_groups else None)
        forecaster.fit(panel, train_end, window)
    return Candidate(
        forecaster=forecaster,
        params=params,
        train_start=train_start,
        train_end=train_end,
        fingerprint=fingerprint(prices, train_start, train_end),
        backtest=result,
        fit_seconds=time.perf_counter() - started,
        exogenous=exogenous,
    )


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def left_out_text(forecaster) -> str:
    """The configured operating groups a fit did not read, each with its reason; "none"."""
    left_out = forecaster.last_fit.get("operating_groups_left_out", {})
    return "; ".join(f"{g}: {why}" for g, why in left_out.items()) or "none"


@dataclass(frozen=True)
class RegisteredCandidate:
    version: str
    run_id: str
    model_uri: str
    metrics: dict


def log_and_register(candidate: Candidate, prices: pl.DataFrame, code_version: str,
                     dagster_run_id: str | None = None, operating: OperatingData | None = None,
                     dagster_run_url: str | None = None) -> RegisteredCandidate:
    """Log params, losses, metrics, lineage and the pyfunc to the active MLflow run; register it
    with its whole version card (kind, horizon, data range, metrics, lineage) as tags."""
    run = mlflow.active_run() or mlflow.start_run()
    forecaster = candidate.forecaster
    config = forecaster.config.to_dict()
    mlflow.log_params({
        **{f"model.{k}": v for k, v in config.items()},  # as configured: model.operating_groups is what was asked
        "fit.operating_groups": format_groups(forecaster.spec.operating_groups),  # what the fit read (the rules may drop one)
        "window_days": candidate.params.window_days,
        "backtest_weeks": candidate.params.backtest_weeks,
        "recalibrate_every": candidate.params.recalibrate_every,
    })
    for step, (train_loss, val_loss) in enumerate(forecaster.last_fit.get("epoch_losses", []), start=1):
        mlflow.log_metrics({"train_pinball": train_loss, "val_pinball": val_loss}, step=step)
    own, naive = candidate.backtest_metrics(), candidate.backtest_metrics("naive_w")
    metrics = {
        "val_pinball_scaled": forecaster.last_fit["val_pinball_scaled"],
        "blend_weight": forecaster.last_fit["blend_weight"],  # 1: the net alone; lower: leaning on naive_d
        "night_blend_weight": forecaster.last_fit.get("night_blend_weight", 1.0),  # the same, hours 0..night_blend_hours-1
        "lear_weight": forecaster.last_fit.get("lear_weight", 0.0),  # LEAR's share of the median (fitted for H >= 2)
        "fit_seconds": candidate.fit_seconds,
        **{f"backtest_{k}": float(v) for k, v in own.items() if isinstance(v, (int, float)) and k != "test_days"},
        "backtest_naive_w_mae": float(naive["mae"]),
        "backtest_days": float(own["test_days"]),
    }
    metrics = {k: v for k, v in metrics.items() if v is not None and np.isfinite(v)}
    mlflow.log_metrics(metrics)
    backtest_days = candidate.backtest.forecasts["target_date"]
    tags = {
        "kind": KIND_MODEL,
        "horizon_days": str(candidate.params.horizon_days),
        "git_commit": git_commit(),
        "code_version": code_version,
        "package_version": energy_platform.__version__,
        "data_fingerprint": candidate.fingerprint["sha256"],
        "data_start": candidate.fingerprint["start"],
        "data_end": candidate.fingerprint["end"],
        "data_rows": str(candidate.fingerprint["rows"]),
        "backtest_start": str(backtest_days.min()),
        "backtest_end": str(backtest_days.max()),
        "history_days": str(history_days(forecaster)),
        "operating_groups": format_groups(forecaster.spec.operating_groups),  # those the fit used
        "operating_groups_left_out": left_out_text(forecaster),  # configured ones the fit did not read, and why
        "exogenous": ",".join(forecaster.exogenous) or "none",  # a file's series the model reads (its requests carry them)
        "forecaster_config": json.dumps({**asdict(candidate.params)}, default=str),
    }
    mlflow.set_tags(tags)
    served_model = in_memory_forecaster(forecaster)
    example = request_frame(served_model, prices.filter(
        pl.col("date") > candidate.train_end - timedelta(days=history_days(forecaster) + 1)
    ), operating)  # prices (+ the exogenous and operating columns the model reads, and the day ahead)
    info = log_pyfunc(forecaster, example)
    days = sorted(backtest_days.unique().to_list())
    served = forecast_days(served_model, prices, days, candidate.params.horizon_days, history_days(forecaster), operating)
    if not served.ok:
        raise ForecastInputError(f"the trained model cannot forecast its backtest days: {served.problem}")
    with tempfile.TemporaryDirectory() as tmp:
        # The gate compares champion and challenger on the backtest, and checks that the
        # registered artifact reproduces what this model forecast in memory.
        for name, frame in ((BACKTEST_ARTIFACT, candidate.backtest.forecasts), (SERVED_FORECASTS_ARTIFACT, served.forecasts)):
            frame.write_parquet(f"{tmp}/{name}")
            mlflow.log_artifact(f"{tmp}/{name}")
    dagster_run_id = dagster_run_id or run.data.tags.get("dagster_run_id", "")
    if dagster_run_id:
        mlflow.set_tag("dagster_run_id", dagster_run_id)
    if dagster_run_url:  # the way back from MLflow to the Dagster run, clickable in the MLflow UI
        mlflow.set_tag("dagster_run_url", dagster_run_url)
    version_tags = {
        **tags,
        **{f"metric.{key}": f"{value:.6g}" for key, value in metrics.items()},
        "dagster_run_id": dagster_run_id,
        **({"dagster_run_url": dagster_run_url} if dagster_run_url else {}),
        "mlflow_run_id": run.info.run_id,
    }
    version = mlflow.register_model(info.model_uri, MODEL_NAME, tags=version_tags)
    try:
        MlflowClient().set_registered_model_alias(MODEL_NAME, CHALLENGER, version.version)
    except Exception:
        MlflowClient().delete_model_version(MODEL_NAME, version.version)
        raise
    return RegisteredCandidate(str(version.version), run.info.run_id, f"models:/{MODEL_NAME}/{version.version}", metrics)
