"""The registry's aliases and the promotion gate.

`champion` is what serves, `challenger` the latest candidate, `previous` the champion before the
last change (one-step rollback). The gate compares the frozen champion with the challenger on
the recent days neither was trained on (tracking/comparison.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from energy_platform.tracking import MODEL_NAME
from energy_platform.tracking.comparison import Comparison

CHAMPION, CHALLENGER, PREVIOUS = "champion", "challenger", "previous"

MIN_FRESH_DAYS = 7  # days after the champion's training data the gate needs to compare on


@dataclass(frozen=True)
class GateDecision:
    promote: bool
    reason: str
    challenger_version: str
    challenger_rmae: float  # its whole recent backtest
    champion_version: str | None
    champion_rmae: float | None  # on the compared days
    challenger_rmae_compared: float | None  # on the same compared days
    compared_days: int
    margin: float

    def as_tags(self) -> dict[str, str]:
        def fmt(x: float | None) -> str:
            return "" if x is None else f"{x:.6f}"

        return {
            "gate_decision": "promoted" if self.promote else "refused",
            "gate_reason": self.reason,
            "gate_challenger_rmae": fmt(self.challenger_rmae),
            "gate_challenger_rmae_compared": fmt(self.challenger_rmae_compared),
            "gate_champion_rmae": fmt(self.champion_rmae),
            "gate_champion_version": self.champion_version or "",
            "gate_compared_days": str(self.compared_days),
            "gate_margin": str(self.margin),
        }


def alias_version(client: MlflowClient, alias: str) -> ModelVersion | None:
    try:
        return client.get_model_version_by_alias(MODEL_NAME, alias)
    except MlflowException:
        return None


def training_params_of(version: ModelVersion) -> dict:
    return json.loads(version.tags["forecaster_config"])


def decide(
    challenger_version: str,
    challenger_rmae: float,
    champion_version: str | None,
    comparison: Comparison | None,
    margin: float,
    min_days: int = MIN_FRESH_DAYS,
) -> GateDecision:
    """Promote only if better than the weekly naive, and than the champion by `margin` on fresh days."""
    c = comparison or Comparison(0, None, None, None)

    def decision(promote: bool, reason: str) -> GateDecision:
        return GateDecision(promote, reason, challenger_version, challenger_rmae, champion_version,
                            c.champion_rmae, c.challenger_rmae, c.days, margin)

    if not challenger_rmae < 1.0:
        return decision(False, f"rMAE {challenger_rmae:.3f} is not better than the weekly naive (1.0)")
    if champion_version is None:
        return decision(True, f"first champion: rMAE {challenger_rmae:.3f} < 1.0")
    if c.days < min_days:
        return decision(False, f"only {c.days} day(s) after champion v{champion_version}'s training data to compare on (need {min_days})")
    if c.challenger_rmae < c.champion_rmae - margin:
        return decision(True, f"rMAE {c.challenger_rmae:.3f} beats champion v{champion_version}'s {c.champion_rmae:.3f} "
                              f"by more than {margin} over {c.days} days")
    return decision(False, f"rMAE {c.challenger_rmae:.3f} does not beat champion v{champion_version}'s "
                           f"{c.champion_rmae:.3f} by {margin} over {c.days} days")


def apply(client: MlflowClient, decision: GateDecision) -> None:
    """Record the decision on the challenger version; move the aliases if it was promoted."""
    for key, value in decision.as_tags().items():
        client.set_model_version_tag(MODEL_NAME, decision.challenger_version, key, value)
    run_id = client.get_model_version(MODEL_NAME, decision.challenger_version).run_id
    if run_id:
        for key, value in decision.as_tags().items():
            client.set_tag(run_id, key, value)
    if decision.promote:
        if decision.champion_version and decision.champion_version != decision.challenger_version:
            client.set_registered_model_alias(MODEL_NAME, PREVIOUS, decision.champion_version)
        client.set_registered_model_alias(MODEL_NAME, CHAMPION, decision.challenger_version)


def rollback(client: MlflowClient) -> tuple[str, str]:
    """Champion goes back to `previous`; the demoted version becomes `previous`. Returns (new, old)."""
    champion, previous = alias_version(client, CHAMPION), alias_version(client, PREVIOUS)
    if previous is None or champion is None:
        raise RuntimeError(f"nothing to roll back to: no '{PREVIOUS}' alias on {MODEL_NAME}")
    client.set_registered_model_alias(MODEL_NAME, CHAMPION, previous.version)
    client.set_registered_model_alias(MODEL_NAME, PREVIOUS, champion.version)
    client.set_model_version_tag(MODEL_NAME, champion.version, "rolled_back", "true")
    return str(previous.version), str(champion.version)


def versions_frame(client: MlflowClient) -> list[dict]:
    """Every registered version with its aliases and tags, newest first (for the warehouse)."""
    try:
        versions = client.search_model_versions(f"name = '{MODEL_NAME}'")
    except MlflowException:
        return []
    aliases: dict[str, list[str]] = {}
    try:
        for alias, version in client.get_registered_model(MODEL_NAME).aliases.items():
            aliases.setdefault(str(version), []).append(alias)
    except MlflowException:
        pass
    rows = []
    for v in sorted(versions, key=lambda v: int(v.version), reverse=True):
        rows.append({"version": str(v.version), "run_id": v.run_id, "created_ms": v.creation_timestamp,
                     "aliases": ",".join(sorted(aliases.get(str(v.version), []))), "tags": dict(v.tags)})
    return rows
