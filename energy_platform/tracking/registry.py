"""The registry's aliases and the promotion gate.

`champion` is what serves, `challenger` the latest candidate, `previous` the champion before the
last change (one-step rollback). The gate compares the two *training procedures* on the same
recent window: the champion's configuration is backtested again on the challenger's window, so
neither score comes from days its model was trained on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from energy_platform.tracking import MODEL_NAME

CHAMPION, CHALLENGER, PREVIOUS = "champion", "challenger", "previous"


@dataclass(frozen=True)
class GateDecision:
    promote: bool
    reason: str
    challenger_version: str
    challenger_rmae: float
    champion_version: str | None
    champion_rmae: float | None
    margin: float

    def as_tags(self) -> dict[str, str]:
        return {
            "gate_decision": "promoted" if self.promote else "refused",
            "gate_reason": self.reason,
            "gate_challenger_rmae": f"{self.challenger_rmae:.6f}",
            "gate_champion_rmae": "" if self.champion_rmae is None else f"{self.champion_rmae:.6f}",
            "gate_champion_version": self.champion_version or "",
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
    champion_rmae: float | None,
    margin: float,
) -> GateDecision:
    """Promote only if better than the weekly naive, and better than the champion by `margin`."""
    args = (challenger_version, challenger_rmae, champion_version, champion_rmae, margin)
    if not challenger_rmae < 1.0:
        return GateDecision(False, f"rMAE {challenger_rmae:.3f} is not better than the weekly naive (1.0)", *args)
    if champion_rmae is None:
        return GateDecision(True, f"first champion: rMAE {challenger_rmae:.3f} < 1.0", *args)
    if challenger_rmae < champion_rmae - margin:
        return GateDecision(
            True, f"rMAE {challenger_rmae:.3f} beats champion v{champion_version}'s {champion_rmae:.3f} by more than {margin}", *args
        )
    return GateDecision(
        False, f"rMAE {challenger_rmae:.3f} does not beat champion v{champion_version}'s {champion_rmae:.3f} by {margin}", *args
    )


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
