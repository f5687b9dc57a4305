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

from energy_platform.errors import StateError, one_line
from energy_platform.warehouse.schema import ensure_schema

# A DuckDB file is a 4 KiB main header, two 4 KiB database headers, then fixed-size blocks.
HEADER_BYTES = 3 * 4096


class WarehouseLockedError(RuntimeError):
    """The warehouse file is held by another process for longer than we were willing to wait."""


def _is_lock_error(exc: Exception) -> bool:
    text = str(exc)
    return "lock" in text.lower() and ("Conflicting" in text or "Could not set lock" in text)


def _damaged(path: Path, reason: str) -> StateError:
    return StateError(
        f"warehouse {path} is damaged ({reason}): restore it from a backup, or move it aside "
        f"(mv {path} {path}.damaged) and rerun to rebuild it from the source"
    )


def check_warehouse(path: str | Path) -> None:
    """Fail at start, in one line, if the warehouse cannot be read whole.

    A truncated file may still open and show its schema (the catalog sits in an early block),
    and the first write would succeed; the failure would come steps later as "Could not read
    enough bytes". So besides opening it and reading the schema, compare the file's size with
    the blocks its own header declares in use. A file held by a writer is in use, hence not checked.
    """
    path = Path(path)
    if not path.exists() or path.stat().st_size == 0:
        return
    try:
        conn = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as exc:
        if _is_lock_error(exc) or "different configuration" in str(exc):
            return
        raise _damaged(path, one_line(exc)) from exc
    try:
        conn.execute("SELECT count(*) FROM duckdb_columns()").fetchall()
        # Free blocks at the tail are cut off at a checkpoint while the header still counts them:
        # only the used ones must be in the file (measured with duckdb 2.0.1: 10 of 12 blocks, 2 free).
        block_size, blocks = conn.execute(
            "SELECT block_size, total_blocks - free_blocks FROM pragma_database_size()"
        ).fetchone()
    except duckdb.Error as exc:
        raise _damaged(path, one_line(exc)) from exc
    finally:
        conn.close()
    size, expected = path.stat().st_size, HEADER_BYTES + blocks * block_size
    if size < expected:
        raise _damaged(path, f"{size:,} bytes where its header declares {expected:,}: truncated")


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
