"""Operator commands on the registry that also keep the warehouse's mirror of it in step."""

from __future__ import annotations

from mlflow import MlflowClient

from energy_platform.settings import get_settings
from energy_platform.tracking import registry
from energy_platform.tracking.setup import prepare_tracking
from energy_platform.warehouse.model_versions import record_champion_change, sync_model_versions


def rollback_champion() -> tuple[str, str]:
    settings = get_settings()
    prepare_tracking(settings.mlflow_tracking_uri, settings.mlflow_artifacts)
    client = MlflowClient(tracking_uri=settings.mlflow_tracking_uri, registry_uri=settings.mlflow_tracking_uri)
    new, old = registry.rollback(client)
    record_champion_change(settings.warehouse_path, new, old, f"rollback from v{old}")
    sync_model_versions(settings.warehouse_path, registry.versions_frame(client))
    return new, old
