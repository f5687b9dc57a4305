"""The start-up check of a home's state, in one place for the CLI and the Dagster resources.

Corrupt state must fail before anything is written, in one line that names the file and the
remedy (`errors.StateError`), not as a traceback several steps later.
"""

from __future__ import annotations

from pathlib import Path

from energy_platform.errors import SettingError
from energy_platform.profile import DAGSTER_PG_ENV, check_reachable
from energy_platform.settings import Settings
from energy_platform.sources.base import SourceError
from energy_platform.sources.operating import folder_paths
from energy_platform.tracking.setup import check_tracking
from energy_platform.warehouse.db import check_warehouse


def check_state(warehouse: str | Path, tracking_uri: str | None = None, artifact_root: str | Path | None = None) -> None:
    """The warehouse opens whole (a DuckLake location is attached, never looked for as a file);
    MLflow's database answers and keeps its artifacts in this home."""
    check_warehouse(warehouse)
    if tracking_uri:
        check_tracking(tracking_uri, Path(artifact_root) if artifact_root else None)


def check_home(settings: Settings) -> None:
    if settings.source.startswith("csv:") and not Path(settings.source[4:]).is_file():
        raise SettingError(f"ENERGY_PLATFORM_SOURCE={settings.source}: file not found")
    if settings.operating_dir:  # here, not in the settings: a folder briefly empty must not stop the dashboard (helper I)
        try:
            folder_paths(settings.operating_dir, "ENERGY_PLATFORM_OPERATING_DIR")
        except SourceError as exc:
            raise SettingError(str(exc)) from None
    if settings.mlflow_uri and not settings.mlflow_uri.lower().startswith("sqlite"):
        check_reachable(settings.mlflow_uri, "MLFLOW_TRACKING_URI")
    if settings.dagster_pg_url:
        check_reachable(settings.dagster_pg_url, DAGSTER_PG_ENV)
    check_state(settings.warehouse_path, settings.mlflow_tracking_uri, settings.mlflow_artifact_root)
