"""MLflow state in ENERGY_PLATFORM_HOME: a SQLite backend and a local artifact root.

The database is created once, here, before anything uses it concurrently (MLflow's schema
migration is not safe to race), and the experiment is created with an explicit artifact
location: left to itself MLflow would put artifacts under the current directory.
"""

from __future__ import annotations

from pathlib import Path

import mlflow
from mlflow import MlflowClient

from energy_platform.tracking import EXPERIMENT_NAME


class TrackingUnavailableError(RuntimeError):
    """The MLflow backend cannot be opened or written."""


def prepare_tracking(tracking_uri: str, artifact_root: Path, experiment: str = EXPERIMENT_NAME) -> str:
    """Create the backend and the experiment if needed; point mlflow at them; return the experiment id."""
    mlflow.set_tracking_uri(tracking_uri)
    try:
        artifact_root.mkdir(parents=True, exist_ok=True)
        client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
        found = client.get_experiment_by_name(experiment)
        experiment_id = (
            found.experiment_id
            if found
            else client.create_experiment(experiment, artifact_location=artifact_root.resolve().as_uri())
        )
    except Exception as exc:  # MLflow wraps SQLAlchemy errors in several types
        raise TrackingUnavailableError(f"MLflow backend {tracking_uri} is unavailable: {exc}") from exc
    mlflow.set_registry_uri(tracking_uri)
    return experiment_id
