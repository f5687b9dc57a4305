"""Short-lived DuckDB connections that wait politely for a lock, then fail naming it.

DuckDB allows one writing process or many readers. The pipeline holds a write connection only
for the few milliseconds of a partition write; if someone else holds the file (an analyst who
opened `warehouse.duckdb` instead of the published `analytics.duckdb`), we retry and then fail
with the lock holder named instead of a bare IO error.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import polars as pl

from energy_platform.warehouse.schema import ensure_schema


class WarehouseLockedError(RuntimeError):
    """The warehouse file is held by another process for longer than we were willing to wait."""


def _is_lock_error(exc: Exception) -> bool:
    text = str(exc)
    return "lock" in text.lower() and ("Conflicting" in text or "Could not set lock" in text)


@contextmanager
def connect(
    path: str | Path,
    *,
    read_only: bool = False,
    wait_seconds: float = 10.0,
    poll_seconds: float = 0.2,
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open, yield and always close a connection; write connections get the schema ensured."""
    path = Path(path)
    if read_only and not path.exists():
        raise FileNotFoundError(f"warehouse {path} does not exist yet: run the pipeline first")
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            conn = duckdb.connect(str(path), read_only=read_only)
            break
        except duckdb.IOException as exc:
            if not _is_lock_error(exc):
                raise
            if time.monotonic() >= deadline:
                raise WarehouseLockedError(
                    f"{path} is locked by another process for more than {wait_seconds:.0f} s "
                    f"({exc}). Analysts should open analytics.duckdb, not the warehouse."
                ) from exc
            time.sleep(poll_seconds)
    try:
        if not read_only:
            ensure_schema(conn)
        yield conn
    finally:
        conn.close()


@contextmanager
def write_transaction(
    path: str | Path, frames: dict[str, pl.DataFrame] | None = None
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A short write connection in one transaction, with `frames` registered as views.

    Every idempotent write of the warehouse (delete the keys it replaces, insert) goes through
    here: it commits whole or rolls back whole, and a killed process leaves the old rows.
    """
    with connect(path) as conn:
        for name, frame in (frames or {}).items():
            conn.register(name, frame.to_arrow())
        conn.execute("BEGIN TRANSACTION")
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        finally:
            for name in frames or {}:
                conn.unregister(name)
