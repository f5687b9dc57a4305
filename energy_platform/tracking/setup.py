"""MLflow state: by default a SQLite backend and a local artifact root in ENERGY_PLATFORM_HOME.

`MLFLOW_TRACKING_URI` may name PostgreSQL or a tracking server instead (energy_platform.profile);
the file checks below then do not apply.

The database is created once, here, before anything uses it concurrently (MLflow's schema
migration is not safe to race), and the experiment is created with an explicit artifact
location: left to itself MLflow would put artifacts under the current directory.

A new database is built under a temporary name and linked into place only when its schema is
complete: a process killed during MLflow's ~1,700 migration statements used to leave an
`mlflow.db` at a half-applied schema that every later start refused ("out-of-date database
schema"). A killed creation now leaves only its temporary file, removed by the next creation
(it holds an `flock` on it while alive, which the kernel drops when it dies).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import uuid
from pathlib import Path

import mlflow
from mlflow import MlflowClient

from energy_platform.errors import OperatorError, StateError, one_line
from energy_platform.tracking import EXPERIMENT_NAME
from energy_platform.tracking.relocation import relocate_artifacts


class TrackingUnavailableError(OperatorError):
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
    _roll_back_interrupted_write(db_path)
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


def _roll_back_interrupted_write(db_path: Path) -> None:
    """Let SQLite undo the transaction of a process killed in its commit, which left a hot journal.

    Only a read-write connection may roll a hot journal back: read-only, SQLite answers "attempt to
    write a readonly database", which the check took for a damaged file, and nothing that starts
    with the check (every command, every run's resources) could ever repair it. A journal of a live
    writer is not hot (it holds its lock): this read then just waits for its commit."""
    if not db_path.with_name(db_path.name + "-journal").exists():
        return
    try:
        conn = sqlite3.connect(db_path, timeout=60)
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchall()
        finally:
            conn.close()
    except sqlite3.Error:
        pass  # the read-only check below names what is wrong


def check_tracking(tracking_uri: str, artifact_root: Path | None = None) -> None:
    """The MLflow half of the start-up check: the database answers, and its artifacts are this home's."""
    db_path = sqlite_path(tracking_uri)
    if db_path is None:
        return
    check_tracking_db(db_path)
    if artifact_root is not None and db_path.exists() and db_path.stat().st_size:
        relocate_artifacts(db_path, artifact_root)


CREATING = ".creating-"  # mlflow.db.creating-<hex>: a database being built


def _remove_dead_creations(db_path: Path) -> None:
    """Remove temporary databases whose creator died (nobody holds their lock), with SQLite's
    journal files; a journal whose database is gone goes too."""
    sidecars = ("-journal", "-wal", "-shm")
    for entry in db_path.parent.glob(f"{db_path.name}{CREATING}*"):
        if entry.name.endswith(sidecars):
            if not entry.with_name(entry.name.rsplit("-", 1)[0]).exists():
                entry.unlink(missing_ok=True)
            continue
        try:
            fd = os.open(entry, os.O_RDONLY)
        except FileNotFoundError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            continue  # its creator is alive
        else:
            for sidecar in sidecars:
                entry.with_name(entry.name + sidecar).unlink(missing_ok=True)
            entry.unlink(missing_ok=True)
        finally:
            os.close(fd)


def create_tracking_db(db_path: Path) -> None:
    """Build MLflow's schema in a temporary file, then link it to `db_path` whole (no clobber:
    a database a concurrent start linked first wins, and is used)."""
    import sqlalchemy
    from mlflow.store.db.utils import _initialize_tables

    db_path.parent.mkdir(parents=True, exist_ok=True)
    _remove_dead_creations(db_path)
    if db_path.exists() and db_path.stat().st_size == 0:
        db_path.unlink()  # an empty file (touched by hand): built whole like a missing one
    tmp = db_path.with_name(f"{db_path.name}{CREATING}{uuid.uuid4().hex[:12]}")
    fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)  # SQLite takes an empty file as a new database
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        engine = sqlalchemy.create_engine(f"sqlite:///{tmp}")
        try:
            _initialize_tables(engine)
        finally:
            engine.dispose()
        with contextlib.suppress(FileExistsError):
            os.link(tmp, db_path)
    finally:
        tmp.unlink(missing_ok=True)
        os.close(fd)


def prepare_tracking(tracking_uri: str, artifact_root: Path | None, experiment: str = EXPERIMENT_NAME) -> str:
    """Create the backend and the experiment if needed; point mlflow at them; return the experiment id.

    `artifact_root` None (a tracking server): the experiment gets no client-side location, so the
    server's `--artifacts-destination` stores the artifacts and clients read them over HTTP.
    """
    check_tracking(tracking_uri, artifact_root)
    db_path = sqlite_path(tracking_uri)
    try:
        if db_path is not None and (not db_path.exists() or db_path.stat().st_size == 0):
            create_tracking_db(db_path)
    except Exception as exc:
        raise TrackingUnavailableError(f"MLflow backend {tracking_uri} could not be created: {one_line(exc)}") from exc
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
