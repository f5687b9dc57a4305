"""Operator commands on the registry that also keep the warehouse's mirror of it in step."""

from __future__ import annotations

from energy_platform.settings import get_settings
from energy_platform.tracking.registry import ModelRegistry
from energy_platform.warehouse.model_versions import record_champion_change


def rollback_champion() -> tuple[str, str]:
    settings = get_settings()
    registry = ModelRegistry(settings.mlflow_tracking_uri, settings.mlflow_artifact_root)
    new, old = registry.rollback()
    record_champion_change(settings.warehouse_path, new, old, f"rollback from v{old}")
    registry.mirror(settings.warehouse_path)
    return new, old
