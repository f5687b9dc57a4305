"""Operator commands on the registry that also keep the warehouse's mirror of it in step."""

from __future__ import annotations

from pathlib import Path

from energy_platform.settings import get_settings
from energy_platform.tracking.registry import ModelRegistry
from energy_platform.warehouse.db import WarehouseLockedError, connect
from energy_platform.warehouse.model_versions import record_champion_change


def rollback_champion() -> tuple[str, str]:
    settings = get_settings()
    return rollback(ModelRegistry(settings.mlflow_tracking_uri, settings.mlflow_artifact_root), settings.warehouse_path,
                    settings.horizon_days)


def rollback(registry: ModelRegistry, warehouse_path: str | Path, horizon_days: int | None = None,
             wait_seconds: float = 10.0) -> tuple[str, str]:
    """The registry's rollback, recorded in the warehouse. The warehouse is taken first: with a run
    writing it, the command used to move the aliases, then fail on the record (exit 2), and the
    operator's retry rolled back again, undoing the first. Now a busy warehouse refuses it whole."""
    try:
        with connect(warehouse_path, wait_seconds=wait_seconds):  # held until the record and the mirror are written
            def record(new: str, old: str) -> None:
                record_champion_change(warehouse_path, new, old, f"rollback from v{old}")
                registry.mirror(warehouse_path)  # released before it, a waiting run took the file and the mirror failed (helper I)

            new, old = registry.rollback(horizon_days, record)
    except WarehouseLockedError as exc:
        raise WarehouseLockedError(f"nothing was rolled back: {exc} Rerun when that run has ended.") from exc
    return new, old
