"""The promotion gate as one function: read the aliases, compare, decide, move the aliases."""

from __future__ import annotations

from datetime import date

import mlflow
import polars as pl
from mlflow import MlflowClient

from energy_platform.tracking import MODEL_NAME, registry
from energy_platform.tracking.comparison import Comparison, compare_on_fresh_days
from energy_platform.tracking.training import BACKTEST_ARTIFACT


class GateInputError(RuntimeError):
    pass


def run_gate(client: MlflowClient, prices: pl.DataFrame, horizon_days: int, margin: float,
             min_days: int = registry.MIN_FRESH_DAYS):
    """Decide on the current challenger; returns (decision, champion version before or None)."""
    challenger = registry.alias_version(client, registry.CHALLENGER)
    if challenger is None:
        raise GateInputError(f"no '{registry.CHALLENGER}' version of {MODEL_NAME}: materialize forecaster_model first")
    champion = registry.alias_version(client, registry.CHAMPION)
    challenger_v, champion_v = str(challenger.version), str(champion.version) if champion else None
    challenger_rmae = float(challenger.tags["metric.backtest_rmae"])
    if champion_v == challenger_v:
        decision = registry.GateDecision(False, f"v{challenger_v} already is the champion", challenger_v,
                                         challenger_rmae, champion_v, None, None, 0, margin)
    else:
        comparison = None
        if champion is not None:
            local = client.download_artifacts(challenger.run_id, BACKTEST_ARTIFACT)
            champion_model = mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}/{champion_v}")
            comparison = compare_on_fresh_days(
                prices, champion_model, date.fromisoformat(champion.tags["data_end"]), horizon_days,
                int(champion.tags["history_days"]), pl.read_parquet(local),
            )
        decision = registry.decide(challenger_v, challenger_rmae, champion_v, comparison, margin, min_days)
    registry.apply(client, decision)
    return decision, champion_v


__all__ = ["Comparison", "GateInputError", "run_gate"]
