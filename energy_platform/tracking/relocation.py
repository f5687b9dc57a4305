"""Make a copied or restored home write into its own `mlartifacts`, not the original's.

MLflow stores absolute artifact URIs (the experiment's `artifact_location`, each run's
`artifact_uri`, each model version's `source`/`storage_location`, each logged model's
`artifact_location`) and has no relative form for a local store without a server. A home copied
to another folder would keep logging into, and loading from, the original. So on start, if the
home's experiment points at an `mlartifacts` folder of another home, every stored URI under that
root is rewritten to this home's root, in one SQLite transaction, and what changed is logged.
If this home has no artifacts to point at (only `mlflow.db` was copied), we refuse instead.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from urllib.parse import unquote, urlparse

from energy_platform.errors import StateError

log = logging.getLogger(__name__)

# (table, column, extra condition): every place MLflow 3 keeps an absolute artifact URI.
URI_COLUMNS = [
    ("experiments", "artifact_location", ""),
    ("runs", "artifact_uri", ""),
    ("model_versions", "source", ""),
    ("model_versions", "storage_location", ""),
    ("logged_models", "artifact_location", ""),
    ("trace_tags", "value", "AND key = 'mlflow.artifactLocation'"),
]


def _path(uri: str | None) -> Path | None:
    if not uri or not uri.startswith("file:"):
        return None
    return Path(unquote(urlparse(uri).path))


def _foreign_roots(conn: sqlite3.Connection, root: Path) -> set[str]:
    """Experiment locations that are another home's artifact root (same folder name, other place)."""
    found = set()
    for (location,) in conn.execute("SELECT artifact_location FROM experiments"):
        path = _path(location)
        if path is not None and path.name == root.name and path != root:
            found.add(location.rstrip("/"))
    return found


def _columns(conn: sqlite3.Connection) -> list[tuple[str, str, str]]:
    present = {(t, c) for (t,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
               for (_, c, *_rest) in conn.execute(f"PRAGMA table_info({t})")}
    return [spec for spec in URI_COLUMNS if spec[:2] in present]


def relocate_artifacts(db_path: Path, artifact_root: Path) -> int:
    """Point the stored artifact URIs of another home at `artifact_root`; return the rows changed."""
    root = artifact_root.resolve()
    conn = sqlite3.connect(str(db_path), timeout=60, isolation_level=None)
    try:
        olds = _foreign_roots(conn, root)
        if not olds:
            return 0
        if not (root.is_dir() and any(root.iterdir())):
            old = sorted(olds)[0]
            raise StateError(
                f"{db_path} keeps its model artifacts in {_path(old)}, and {root} is empty: copy that folder "
                f"to {root} (a home moves as a whole), or move {db_path} aside to start a new registry"
            )
        new, changed = root.as_uri(), 0
        conn.execute("BEGIN IMMEDIATE")
        try:
            for old in sorted(olds):
                for table, column, extra in _columns(conn):
                    cursor = conn.execute(
                        f"UPDATE {table} SET {column} = ? || substr({column}, ?) "
                        f"WHERE ({column} = ? OR substr({column}, 1, ?) = ?) {extra}",
                        [new, len(old) + 1, old, len(old) + 1, old + "/"],
                    )
                    changed += cursor.rowcount
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        log.warning("home relocated: %d MLflow artifact URIs moved from %s to %s", changed, ", ".join(sorted(olds)), new)
        return changed
    finally:
        conn.close()
