"""Register the persistence baseline as a real version: a pyfunc, scored by the same backtest.

It has its own MLflow run (tagged `kind=baseline`), its walk-forward backtest over the recent
weeks (persistence against the weekly naive, as every challenger is scored) and the forecasts
the gate reproduces from the artifact before it may serve.
"""

from __future__ import annotations

import tempfile
from datetime import timedelta

import numpy as np
import polars as pl

from energy_platform.forecasting.backtest import backtest_recent
from energy_platform.forecasting.baselines import naive_d
from energy_platform.tracking import EXPERIMENT_NAME
from energy_platform.tracking.artifact_check import SERVED_FORECASTS_ARTIFACT, forecast_days
from energy_platform.tracking.pyfunc_model import BASELINE_HISTORY_DAYS, in_memory_persistence, save_persistence_pyfunc
from energy_platform.tracking.training import BACKTEST_ARTIFACT, fingerprint, git_commit, last_complete_day
from energy_platform.tracking.version_card import FLOOR_TAG, KIND_BASELINE, floor_text


def register_baseline(registry, prices: pl.DataFrame, horizon_days: int, floor: float | None, weeks: int = 4,
                      dagster_tags: dict[str, str] | None = None) -> str:
    """Returns the new version number; `dagster_tags`: `dagster_run_id` and `dagster_run_url` of the run
    that registered it (lineage, clickable in the MLflow UI like a trained model's)."""
    client = registry.client
    end = last_complete_day(prices)
    available = (end - prices["date"].min()).days + 1
    weeks = max(1, min(weeks, (available - BASELINE_HISTORY_DAYS) // 7))
    result = backtest_recent(prices, naive_d(horizon_days=horizon_days), weeks, recalibrate_every=7, window_days=7, end=end)
    own = next(m for m in result.metrics if m["model"] == "naive_d")
    # no rMAE when the weekly naive is exact over the backtest (a price flat for weeks; helper M, session 20)
    metrics = {k: own[k] for k in ("mae", "rmae", "smape", "rmse") if own[k] is not None and np.isfinite(own[k])}
    days = sorted(result.forecasts["target_date"].unique().to_list())
    served = forecast_days(in_memory_persistence(horizon_days, floor), prices, days, horizon_days, BASELINE_HISTORY_DAYS)
    if not served.ok:
        raise ValueError(f"persistence baseline cannot forecast its backtest days: {served.problem}")
    first = days[0] - timedelta(days=BASELINE_HISTORY_DAYS)
    example = prices.filter(pl.col("date").is_between(first, days[0] - timedelta(days=horizon_days))).select("ts", "price")
    data_fp = fingerprint(prices, first, end)
    tags = {
        "kind": KIND_BASELINE,
        "model": "naive_d",
        "horizon_days": str(horizon_days),
        "history_days": str(BASELINE_HISTORY_DAYS),
        FLOOR_TAG: floor_text(floor),
        "backtest_start": str(days[0]),
        "backtest_end": str(days[-1]),
        "git_commit": git_commit(),
        "dagster_run_id": "",
        **(dagster_tags or {}),
        "data_fingerprint": data_fp["sha256"],
        **{f"metric.backtest_{k}": f"{float(v):.6g}" for k, v in metrics.items()},
        "metric.backtest_days": str(len(days)),
    }
    experiment = client.get_experiment_by_name(EXPERIMENT_NAME)
    run = client.create_run(experiment.experiment_id, run_name="persistence_baseline",
                            tags={**tags, "mlflow.runName": "persistence_baseline"})
    try:
        for k, v in metrics.items():
            client.log_metric(run.info.run_id, f"backtest_{k}", float(v))
        with tempfile.TemporaryDirectory() as tmp:
            save_persistence_pyfunc(f"{tmp}/model", example, horizon_days, floor)
            client.log_artifacts(run.info.run_id, f"{tmp}/model", "model")
        registry.log_dataframe(run.info.run_id, result.forecasts, BACKTEST_ARTIFACT)
        registry.log_dataframe(run.info.run_id, served.forecasts, SERVED_FORECASTS_ARTIFACT)
        client.set_terminated(run.info.run_id, "FINISHED")
    except BaseException:
        client.set_terminated(run.info.run_id, "FAILED")
        raise
    if not client.search_registered_models(f"name = '{registry.name}'"):
        client.create_registered_model(registry.name)
    version = client.create_model_version(
        registry.name, f"{run.info.artifact_uri}/model", run_id=run.info.run_id,
        tags={**tags, "mlflow_run_id": run.info.run_id},
    )
    return str(version.version)
