"""Warehouse connections: a DuckDB file (the default) or a DuckLake catalog, behind one API.

A warehouse is named by a *location*: a DuckDB file path, or a DuckLake catalog as DuckDB's
ATTACH takes it (`ducklake:postgres:dbname=lake host=… user=…`, optionally followed by
` (DATA_PATH '/where/the/parquet/goes/')`, see `lake_location`). Every function of the warehouse,
monitoring and serving modules takes that one string, so the rest of the code does not care.

A DuckDB file allows one writing process or many readers. The pipeline holds a write connection
only for the few milliseconds of a partition write; if someone else holds the file (an analyst who
opened `warehouse.duckdb` instead of the published `analytics.duckdb`), we retry and then fail
with the lock holder named instead of a bare IO error.

A DuckLake catalog has no file lock: any number of processes on any hosts read and write it, each
transaction a snapshot. Its extensions come from pip wheels (`duckdb-extension-ducklake`,
`duckdb-extension-postgres-scanner`, the `production` extra), loaded by file path: there is no
network for `INSTALL`, and DuckDB's own extension folder is not where pip puts them. Each process
attaches the catalog once (loading and attaching cost ~0.8 s) and hands out a cursor per
`connect`; the schema (constraint-free, `schema.lake_ddl`) is ensured at that attach. DuckLake
itself retries commits whose changes do not collide (two appends); a real conflict (two writers
deleting the same rows) aborts the loser, and `write` re-runs the whole delete-then-insert a
bounded number of times before failing with `WarehouseConflictError`. Asking for a DuckLake and
not getting it (no extension, catalog unreachable) is a one-line `ProfileError`, never a file.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import random
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TypeVar

import duckdb
import polars as pl

from energy_platform.errors import OperatorError, StateError, one_line
from energy_platform.warehouse.schema import ensure_lake_schema, ensure_schema

T = TypeVar("T")
LAKE_PREFIX = "ducklake:"
LAKE_ALIAS = "lake"
WAREHOUSE_ENV = "ENERGY_PLATFORM_WAREHOUSE"
INSTALL_HINT = "pip install -c constraints.txt -e '.[production]'"
# extension name -> the pip package (module) that ships its binary for this duckdb version
EXTENSION_PACKAGES = {
    "ducklake": "duckdb_extension_ducklake",
    "postgres_scanner": "duckdb_extension_postgres_scanner",
}
WRITE_ATTEMPTS = 5  # a conflicting DuckLake write is re-run this many times in all
log = logging.getLogger(__name__)
_DATA_PATH = re.compile(r"^(?P<url>.*?)\s*\(DATA_PATH\s+'(?P<data>(?:[^']|'')*)'\)\s*$", re.S)

# A DuckDB file is a 4 KiB main header, two 4 KiB database headers, then fixed-size blocks.
HEADER_BYTES = 3 * 4096


class WarehouseLockedError(OperatorError):
    """The warehouse file is held by another process for longer than we were willing to wait; the
    message names the file and who should let go (a command prints it in one line, exit 2)."""


class WarehouseConflictError(RuntimeError):
    """A DuckLake write kept conflicting with concurrent writers (after `WRITE_ATTEMPTS` tries)."""


# -- locations ---------------------------------------------------------------------------------
def is_lake(location: str | Path) -> bool:
    return isinstance(location, str) and location.strip().lower().startswith(LAKE_PREFIX)


def lake_location(url: str, data_path: str | None = None) -> str:
    """The one string that names a DuckLake warehouse: the ATTACH URL and, if given, its data path."""
    url = url.strip()
    if not data_path:
        return url
    return f"{url} (DATA_PATH '{data_path.replace(chr(39), chr(39) * 2)}')"


def parse_lake(location: str) -> tuple[str, str | None]:
    """(ATTACH URL, DATA_PATH or None) of a DuckLake location."""
    match = _DATA_PATH.match(location.strip())
    if not match:
        return location.strip(), None
    return match["url"].strip(), match["data"].replace("''", "'")


def describe(location: str | Path) -> str:
    """A location fit for a log line: a libpq `password=…` replaced by ***."""
    return re.sub(r"(password\s*=\s*)\S+", r"\1***", str(location), flags=re.I)


def exists(location: str | Path) -> bool:
    """Whether the warehouse has been created: the file exists; a DuckLake catalog always answers."""
    return True if is_lake(location) else Path(location).exists()


def table_names(conn: duckdb.DuckDBPyConnection, database: str | None = None) -> set[str]:
    """`schema.table` of every table of `database` (the connection's current one by default)."""
    where = "database_name = current_database()" if database is None else "database_name = ?"
    rows = conn.execute(f"SELECT schema_name, table_name FROM duckdb_tables() WHERE {where}",
                        [] if database is None else [database]).fetchall()
    return {f"{schema}.{name}" for schema, name in rows}


def _lake_error(location: str, reason: str) -> StateError:
    from energy_platform.profile import ProfileError

    return ProfileError(f"{WAREHOUSE_ENV}={describe(parse_lake(location)[0])}: {reason}")


def extension_file(name: str) -> Path:
    """The binary of extension `name` for this duckdb, from its pip wheel (no network `INSTALL`)."""
    package = EXTENSION_PACKAGES[name]
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise FileNotFoundError(f"the DuckDB extension '{name}' is not installed (pip package {package.replace('_', '-')}): {INSTALL_HINT}")
    path = Path(spec.origin).parent / "extensions" / f"v{duckdb.__version__}" / f"{name}.duckdb_extension"
    if not path.exists():
        built = sorted(p.name for p in (Path(spec.origin).parent / "extensions").glob("v*"))
        raise FileNotFoundError(f"{package.replace('_', '-')} ships '{name}' for duckdb {', '.join(built) or 'no version'}, "
                                f"not for this duckdb {duckdb.__version__}: {INSTALL_HINT}")
    return path


def _needed_extensions(url: str) -> list[str]:
    catalog = url[len(LAKE_PREFIX):].lstrip().lower()
    if catalog.startswith(("postgres:", "postgresql:")):
        return ["postgres_scanner", "ducklake"]
    if catalog.split(":", 1)[0] in ("sqlite", "mysql", "md", "motherduck"):
        raise ValueError(f"a '{catalog.split(':', 1)[0]}' DuckLake catalog is not one the platform installs the extension "
                         f"for: use ducklake:postgres:… (or ducklake:/path/catalog.ducklake for one host)")
    return ["ducklake"]  # a DuckDB file as the catalog


def attach_lake(conn: duckdb.DuckDBPyConnection, location: str, alias: str = LAKE_ALIAS, read_only: bool = False) -> None:
    """Load the wheels' extensions into `conn` and ATTACH the catalog as `alias`; `ProfileError` if impossible."""
    url, data_path = parse_lake(location)
    try:
        for name in _needed_extensions(url):
            conn.execute(f"LOAD '{extension_file(name)}'")
    except (FileNotFoundError, ValueError, duckdb.Error) as exc:
        raise _lake_error(location, f"cannot load DuckLake: {one_line(exc)}") from exc
    options = ["READ_ONLY"] if read_only else []
    if data_path:
        options.append(f"DATA_PATH '{data_path.replace(chr(39), chr(39) * 2)}'")
    sql = f"ATTACH '{url.replace(chr(39), chr(39) * 2)}' AS {alias}" + (f" ({', '.join(options)})" if options else "")
    for attempt in range(1, WRITE_ATTEMPTS + 1):
        try:
            conn.execute(sql)
            return
        except duckdb.Error as exc:
            # Two processes creating a new lake at once: the loser's CREATE of the catalog tables
            # fails on PostgreSQL's unique index; once the winner committed, attaching finds the lake.
            racing = "Failed to initialize DuckLake" in str(exc) and ("already exists" in str(exc) or "duplicate key" in str(exc))
            if not racing or attempt == WRITE_ATTEMPTS:
                raise _lake_error(location, f"cannot attach the DuckLake catalog: {describe(one_line(exc))}") from exc
            time.sleep(0.2 * attempt * (0.5 + random.random()))


_lakes: dict[tuple[str, int], duckdb.DuckDBPyConnection] = {}
_lakes_lock = threading.Lock()


def _lake(location: str) -> duckdb.DuckDBPyConnection:
    """This process's in-memory DuckDB with the catalog attached and its schema ensured (made once).

    Keyed by pid as well: a forked run worker must not share its parent's PostgreSQL sockets.
    """
    key = (location, os.getpid())
    with _lakes_lock:
        base = _lakes.get(key)
        if base is None:
            base = duckdb.connect(":memory:", config={"autoinstall_known_extensions": False})
            try:
                attach_lake(base, location)
                _retrying(location, lambda: ensure_lake_schema(base, LAKE_ALIAS))
            except BaseException:
                base.close()
                raise
            _lakes[key] = base
    return base


def _forget_lake(location: str) -> None:
    """Drop a cached attach whose catalog connection failed: the next `connect` attaches anew."""
    with _lakes_lock:
        base = _lakes.pop((location, os.getpid()), None)
    if base is not None:
        with suppress(duckdb.Error):
            base.close()


def _is_conflict(exc: BaseException) -> bool:
    return isinstance(exc, duckdb.TransactionException) and "conflict" in str(exc).lower()


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
    A DuckLake catalog is attached (extensions loaded, catalog reached, schema ensured) instead.
    """
    if is_lake(path):
        with connect(path, read_only=True) as conn:
            conn.execute("SELECT 1").fetchall()
        return
    path = Path(path)
    if not path.exists() or path.stat().st_size == 0:
        return
    try:
        conn = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as exc:
        if _is_lock_error(exc) or "different configuration" in str(exc):
            return
        if "newer version of DuckDB" in str(exc):  # not damaged: written by e.g. duckdb 2.x
            raise StateError(
                f"warehouse {path} was written by a newer DuckDB than this install's "
                f"duckdb {duckdb.__version__} ({one_line(exc).split('. ')[0]}): move it aside "
                f"(mv {path} {path}.newer) and rerun to rebuild it from the source"
            ) from exc
        raise _damaged(path, one_line(exc)) from exc
    try:
        conn.execute("SELECT count(*) FROM duckdb_columns()").fetchall()
        block_size, blocks = conn.execute("SELECT block_size, used_blocks FROM pragma_database_size()").fetchone()
    except duckdb.Error as exc:
        raise _damaged(path, one_line(exc)) from exc
    finally:
        conn.close()
    # Used blocks only: DuckDB counts free blocks in total_blocks but truncates free ones at the
    # end of the file, so a healthy file can be smaller than header + total_blocks.
    size, expected = path.stat().st_size, HEADER_BYTES + blocks * block_size
    if size < expected:
        raise _damaged(path, f"{size:,} bytes where its header declares {blocks:,} used blocks ({expected:,} bytes): truncated")


@contextmanager
def connect(
    path: str | Path,
    *,
    read_only: bool = False,
    wait_seconds: float = 10.0,
    poll_seconds: float = 0.2,
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open, yield and always close a connection; write connections get the schema ensured.

    On a DuckLake the connection is a cursor of the process's attach, the catalog its default
    (`raw.prices_hourly` means the lake's); `read_only` is then an intent the code keeps, not a
    lock: readers and writers of a lake never wait for each other.
    """
    if is_lake(path):
        base = _lake(path)
        cursor = base.cursor()
        try:
            cursor.execute(f"USE {LAKE_ALIAS}")
            yield cursor
        except (duckdb.IOException, duckdb.ConnectionException):
            _forget_lake(path)  # e.g. PostgreSQL restarted: attach again next time
            raise
        finally:
            cursor.close()
        return
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
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            try:
                conn.execute("COMMIT")  # a failed commit has nothing left to roll back
            except duckdb.TransactionException as exc:
                if _is_conflict(exc):
                    raise WarehouseConflictError(
                        f"write to {describe(path)} conflicted with a concurrent writer and was rolled back: {one_line(exc)}"
                    ) from exc
                raise
        finally:
            for name in frames or {}:
                conn.unregister(name)


def _retrying(path: str | Path, attempt: Callable[[], T], attempts: int = WRITE_ATTEMPTS) -> T:
    """Run `attempt` again after a write conflict, with jittered backoff; give up after `attempts`."""
    for n in range(1, attempts + 1):
        try:
            return attempt()
        except (WarehouseConflictError, duckdb.TransactionException) as exc:
            if isinstance(exc, duckdb.TransactionException) and not _is_conflict(exc):
                raise
            if n == attempts:
                raise WarehouseConflictError(
                    f"write to {describe(path)} still conflicted with concurrent writers after {attempts} attempts: "
                    f"{one_line(exc)}"
                ) from exc
            wait = 0.2 * 2 ** (n - 1) * (0.5 + random.random())
            log.warning("write to %s conflicted (attempt %d of %d), again in %.1f s: %s", describe(path), n, attempts, wait, one_line(exc))
            time.sleep(wait)
    raise AssertionError("unreachable")


def write(
    path: str | Path, body: Callable[[duckdb.DuckDBPyConnection], T], frames: dict[str, pl.DataFrame] | None = None
) -> T:
    """`body(conn)` in one `write_transaction`, re-run whole if the commit conflicts (DuckLake).

    The idempotent writes (delete the keys a frame replaces, insert it) go through here: a
    re-run sees the winner's rows and replaces them, so the result is as if they had queued.
    """

    def attempt() -> T:
        with write_transaction(path, frames) as conn:
            return body(conn)

    return _retrying(path, attempt)
