"""`energy-platform demo`: the whole platform on the active source, step by step."""

from __future__ import annotations

import time
from datetime import date, timedelta

import dagster as dg
import polars as pl

from energy_platform.defs import ACCURACY_JOB, FEATURES_JOB, INGEST_JOB, PREDICT_JOB, PUBLISH_JOB, TRAIN_JOB, build_definitions
from energy_platform.defs.ingestion import DAYS_AHEAD, EXOGENOUS_STORED, REVISED
from energy_platform.defs.lifecycle import EXOGENOUS
from energy_platform.orchestration import command_line_instance, run_job
from energy_platform.price_display import price_decimals
from energy_platform.profile import redacted
from energy_platform.settings import Settings, get_settings
from energy_platform.sources.base import SourceError
from energy_platform.warehouse.db import connect, describe
from energy_platform.warehouse.prices import latest_day

RECENT_DAYS = 28  # prediction partitions the demo backfills: what monitoring and the dashboard need


def _step(n: int, total: int, label: str) -> float:
    print(f"[{n}/{total}] {label} ...", flush=True)
    return time.perf_counter()


def _done(started: float, extra: str = "") -> None:
    print(f"      done in {time.perf_counter() - started:.1f} s{'; ' + extra if extra else ''}", flush=True)


def _checks(result: dg.ExecuteInProcessResult) -> str:
    """The run's check tally, then one line per check that did not pass: what the UI shows yellow/red."""
    # one evaluation per check: the per-partition copies (defs/check_results.py) carry a partition
    checks = [c for c in result.get_asset_check_evaluations() if c.partition is None]
    failed = [c for c in checks if not c.passed]
    lines = [f"checks {len(checks) - len(failed)}/{len(checks)} passed"]
    lines += [f"\n      {c.severity.value:<5} {c.asset_key.to_user_string()}.{c.check_name}: {c.description}" for c in failed]
    return "".join(lines)


def _metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict:
    return {k: v.value for k, v in result.asset_materializations_for_node(asset)[-1].metadata.items()}


def _check_source_covers(settings: Settings, stored, all_days: list[str]) -> None:
    """The target-day partitions follow the source's days: a warehouse that holds prices past them
    (a file replaced by an older, shorter export) or a file that holds only its newest days (a
    rolling export) cannot be run on, and Dagster's own check said so in a traceback (helper M)."""
    if stored is None or not all_days:
        return
    horizon = timedelta(days=settings.horizon_days)
    last_day = date.fromisoformat(all_days[-1]) - horizon
    if stored > last_day:
        raise SourceError(f"the warehouse holds prices to {stored}, after the last day of '{settings.source}' ({last_day}): "
                          "a file replaced by a shorter export? Point ENERGY_PLATFORM_SOURCE at the whole file, or use a "
                          "new ENERGY_PLATFORM_HOME")
    first_target = date.fromisoformat(all_days[0])
    with connect(settings.warehouse_path, read_only=True) as conn:
        stored_first = conn.execute("SELECT min(date) FROM raw.prices_hourly").fetchone()[0]
    if stored + horizon < first_target and stored_first < first_target.replace(day=1) - timedelta(days=31):
        raise SourceError(f"'{settings.source}' holds only its newest days (its target days begin {first_target}; the "
                          f"warehouse holds prices {stored_first}..{stored}): a CSV is read as the market's whole history, "
                          "from its first day: export it from the first day, not only the newest days")


def run_demo(training: dict | None = None) -> int:
    """`training`: overrides of forecaster_model's config (the tests' tiny model; default: the production preset)."""
    settings = get_settings()
    instance = command_line_instance(settings.dagster_home)
    defs = build_definitions(settings)
    month_keys = defs.resolve_assets_def("raw_prices").partitions_def.get_partition_keys()
    all_days = defs.resolve_assets_def("predictions").partitions_def.get_partition_keys()
    total = 6

    months = f"{month_keys[0][:7]}..{month_keys[-1][:7]}"
    t = _step(1, total, f"raw_prices: {len(month_keys)} monthly partitions {months} in one run from '{settings.source}'")
    result = run_job(defs, INGEST_JOB, instance, partition_range=(month_keys[0], month_keys[-1]))
    ingested = _metadata(result, "raw_prices")
    exog = (f"\n      NOTE  {EXOGENOUS_STORED}: {ingested[EXOGENOUS_STORED]}; {DAYS_AHEAD}: {ingested[DAYS_AHEAD]}"
            if EXOGENOUS_STORED in ingested else "")
    exog += f"\n      NOTE  {ingested[REVISED]}" if REVISED in ingested else ""
    _done(t, _checks(result) + exog)

    # the days the stored data can forecast: the live source's partitions run to yesterday + H, and
    # XM may not have published yesterday yet (a run of 28 days failed whole on the one it could not)
    stored = latest_day(settings.warehouse_path)
    _check_source_covers(settings, stored, all_days)
    day_keys = [k for k in all_days if stored and k <= str(stored + timedelta(days=settings.horizon_days))][-RECENT_DAYS:]
    if not day_keys:
        raise SourceError(f"nothing to forecast: '{settings.source}' stored no prices" if stored is None else
                          f"nothing to forecast: the prices of '{settings.source}' end {stored}, before the first target "
                          f"day {all_days[0] if all_days else '(none)'}: the history is too short")

    t = _step(2, total, "features: the feature store, one row per target day")
    result = run_job(defs, FEATURES_JOB, instance)
    _done(t, f"{_metadata(result, 'features')['dagster/row_count']} rows written; {_checks(result)}")

    t = _step(3, total, "forecaster_model + champion_model: train, backtest on recent weeks, MLflow, gate")
    result = run_job(defs, TRAIN_JOB, instance, run_config={"ops": {"forecaster_model": {"config": training}}} if training else None)
    trained, gate = _metadata(result, "forecaster_model"), _metadata(result, "champion_model")
    exog = f"\n      NOTE  {EXOGENOUS}: {trained[EXOGENOUS]}" if EXOGENOUS in trained else ""
    _done(t, f"v{trained['model_version']} backtest rMAE {trained['backtest_rmae']:.3f}; gate: {gate['reason']}{exog}")

    t = _step(4, total, f"predictions: {len(day_keys)} target days {day_keys[0]}..{day_keys[-1]} in one run")
    result = run_job(defs, PREDICT_JOB, instance, partition_range=(day_keys[0], day_keys[-1]))
    _done(t, _checks(result))

    realised = [k for k in day_keys if k <= str(stored)]
    t = _step(5, total, f"forecast_accuracy: {len(realised)} forecast days whose prices have arrived, and the drift checks")
    result = run_job(defs, ACCURACY_JOB, instance, partition_range=(realised[0], realised[-1]))
    rolling = [c.description for c in result.get_asset_check_evaluations() if c.check_name == "rolling_rmae" and c.partition is None]
    _done(t, "; ".join([*rolling, _checks(result)]))

    t = _step(6, total, "analytics_snapshot: publish analytics.duckdb for analysts and the dashboard")
    result = run_job(defs, PUBLISH_JOB, instance)
    _done(t, f"{_metadata(result, 'analytics_snapshot')['seconds']} s to build and swap in")

    _summary(settings, day_keys[-1], gate)
    return 0


def _summary(settings: Settings, target: str, gate: dict) -> None:
    with connect(settings.warehouse_path, read_only=True) as conn:
        version, kind, rmae, reason = conn.execute(
            "SELECT version, coalesce(kind, 'model'), backtest_rmae, gate_reason FROM ml.model_versions "
            "WHERE list_contains(string_split(aliases, ','), 'champion')"
        ).fetchall()[0]
        rows, first, last = conn.execute("SELECT count(*), min(date), max(date) FROM raw.prices_hourly").fetchall()[0]
        forecast = conn.sql(
            "SELECT hour, p10, forecast, p90 FROM ml.predictions WHERE target_date = ?::DATE AND model_version = ? ORDER BY hour",
            params=[target, version],
        ).pl()
    forecast = forecast.with_columns(pl.col("p10", "forecast", "p90").round(price_decimals(forecast["forecast"])))
    # no rMAE when the weekly naive was exact over the backtest (prices flat for weeks)
    rmae = "none (the weekly naive was exact)" if rmae is None else f"{rmae:.3f}"
    served = (f"the persistence BASELINE v{version} (tomorrow repeats the latest known day; backtest rMAE {rmae}) "
              f"serves because: {reason}") if kind == "baseline" else (
              f"champion v{version} (backtest rMAE {rmae} against the weekly naive)")
    print()
    horizon = f"{settings.horizon_days} day{'' if settings.horizon_days == 1 else 's'}"
    print(f"Forecast for {target} (data to {last}, horizon {horizon}), {settings.price_unit}, {served}:")
    with pl.Config(tbl_rows=24, tbl_hide_column_data_types=True, tbl_hide_dataframe_shape=True):
        print(forecast)
    print()
    print(f"raw.prices_hourly: {rows:,} rows, {first}..{last}")
    print(f"state:             {settings.home}")
    print(f"  warehouse:       {describe(settings.warehouse_path)}")
    uri = redacted(settings.mlflow_tracking_uri)
    print(f"  mlflow:          {uri}  " + ("(its UI)" if settings.mlflow_artifact_root is None else f"(mlflow ui --backend-store-uri {uri})"))
    print(f"  mlflow runs:     {_experiment_runs(settings)}")
    print(f"  dagster runs:    {settings.dagster_home}" + (f" (in {redacted(settings.dagster_pg_url)})" if settings.dagster_pg_url else ""))
    print(f"  analysts:        {settings.analytics_path}  (duckdb -readonly {settings.analytics_path})")
    if settings.source == "sample":
        print("checks:            WARN/ERROR above are expected on the embedded sample (README \"What a fresh demo")
        print("                   shows in yellow and red\"): real drift at the end of 2024, no predictions history yet")
    else:  # another source's WARN/ERROR are its data's: read them, nothing here explains them away
        print(f"checks:            WARN/ERROR above are {settings.source}'s: see README \"What a fresh demo shows in")
        print("                   yellow and red\" for what each check measures")
    print("next:              make ui         (Dagster UI on http://127.0.0.1:3000)")
    print("                   make dashboard  (Streamlit on http://127.0.0.1:8501)")


def _experiment_runs(settings: Settings) -> str:
    """The training runs in the MLflow UI (MLflow 3 opens an experiment elsewhere by default)."""
    from mlflow import MlflowClient

    from energy_platform.tracking import EXPERIMENT_NAME
    from energy_platform.tracking.links import experiment_runs_url

    experiment = MlflowClient(tracking_uri=settings.mlflow_tracking_uri).get_experiment_by_name(EXPERIMENT_NAME)
    return experiment_runs_url(settings.mlflow_ui_url, experiment.experiment_id) if experiment else settings.mlflow_ui_url
