"""MLflow state: by default a SQLite backend and a local artifact root in ENERGY_PLATFORM_HOME.

`MLFLOW_TRACKING_URI` may name PostgreSQL or a tracking server instead (energy_platform.profile);
the file checks below then do not apply.

The database is created once, here, before anything uses it concurrently (MLflow's schema
migration is not safe to race), and the experiment is created with an explicit artifact
location: left to itself MLflow would put artifacts under the current directory.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import mlflow
from mlflow import MlflowClient

from energy_platform.errors import StateError, one_line
from energy_platform.tracking import EXPERIMENT_NAME
from energy_platform.tracking.relocation import relocate_artifacts


class TrackingUnavailableError(RuntimeError):
    """The MLflow backend cannot be opened or written."""


def sqlite_path(tracking_uri: str) -> Path | None:
    """The database file of a `sqlite:///` URI; None for PostgreSQL or a tracking server."""
    if not tracking_uri.startswith("sqlite:///"):
        return None
    return Path(tracking_uri.removeprefix("sqlite:///"))


def check_tracking_db(db_path: Path) -> None:
    """Fail in one line if `mlflow.db` is not a readable MLflow database (a new, empty file is fine).

    Checked with sqlite3 directly: MLflow would answer a garbage file with a SQLAlchemy
    traceback from deep inside whichever step first touched the registry.
    """
    if not db_path.exists() or db_path.stat().st_size == 0:
        return
    try:
        conn = sqlite3.connect(f"{db_path.resolve().as_uri()}?mode=ro", uri=True, timeout=60)
        try:
            conn.execute("SELECT version_num FROM alembic_version").fetchall()
            conn.execute("SELECT count(*) FROM experiments").fetchall()
            (verdict,) = conn.execute("PRAGMA quick_check(1)").fetchone()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        verdict = one_line(exc)
    if verdict != "ok":
        raise StateError(
            f"MLflow database {db_path} is unreadable ({verdict}): restore it from a backup, or move it aside "
            f"(mv {db_path} {db_path}.damaged) to start an empty registry; the next training registers a new champion"
        )


def check_tracking(tracking_uri: str, artifact_root: Path | None = None) -> None:
    """The MLflow half of the start-up check: the database answers, and its artifacts are this home's."""
    db_path = sqlite_path(tracking_uri)
    if db_path is None:
        return
    check_tracking_db(db_path)
    if artifact_root is not None and db_path.exists() and db_path.stat().st_size:
        relocate_artifacts(db_path, artifact_root)


def prepare_tracking(tracking_uri: str, artifact_root: Path | None, experiment: str = EXPERIMENT_NAME) -> str:
    """Create the backend and the experiment if needed; point mlflow at them; return the experiment id.

    `artifact_root` None (a tracking server): the experiment gets no client-side location, so the
    server's `--artifacts-destination` stores the artifacts and clients read them over HTTP.
    """
    check_tracking(tracking_uri, artifact_root)
    mlflow.set_tracking_uri(tracking_uri)
    try:
        location = None
        if artifact_root is not None:
            artifact_root.mkdir(parents=True, exist_ok=True)
            location = artifact_root.resolve().as_uri()
        client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
        found = client.get_experiment_by_name(experiment)
        experiment_id = found.experiment_id if found else client.create_experiment(experiment, artifact_location=location)
    except Exception as exc:  # MLflow wraps SQLAlchemy errors in several types
        raise TrackingUnavailableError(f"MLflow backend {tracking_uri} is unavailable: {one_line(exc)}") from exc
    mlflow.set_registry_uri(tracking_uri)
    return experiment_id
