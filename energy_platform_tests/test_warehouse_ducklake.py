"""The warehouse on DuckLake: a PostgreSQL catalog from the system's packages, Parquet in tmp.

The same warehouse module as the file (warehouse/db.py): a partition re-materialized through
Dagster leaves one copy, concurrent writers of the same days from several processes leave one
copy (conflicts re-run), the analysts' file is published from the lake, and asking for a lake
that cannot be had is one line, never a file. Skipped only without PostgreSQL or the extension
wheels (`.ci/run` installs both).
"""

from __future__ import annotations

import multiprocessing
import shutil
import tempfile
from datetime import date
from pathlib import Path

import duckdb
import pytest

from energy_platform.defs import INGEST_JOB
from energy_platform.local_services import PostgresCluster, postgres_bindir
from energy_platform.orchestration import run_job
from energy_platform.profile import ProfileError
from energy_platform.settings import from_env
from energy_platform.warehouse import db
from energy_platform.warehouse.analytics import publish_analytics
from energy_platform.warehouse.db import WarehouseConflictError, connect, is_lake, lake_location
from energy_platform.warehouse.prices import read_prices
from energy_platform_tests.lake_writer import write_january
from energy_platform_tests.platform_env import make_env


def _wheels() -> bool:
    try:
        db.extension_file("ducklake"), db.extension_file("postgres_scanner")
        return True
    except FileNotFoundError:
        return False


pytestmark = [
    pytest.mark.skipif(postgres_bindir() is None, reason="PostgreSQL is not installed; .ci/run installs Debian's postgresql"),
    pytest.mark.skipif(not _wheels(), reason="the DuckLake wheels are not installed: pip install -c constraints.txt -e '.[production]'"),
]


@pytest.fixture(scope="module")
def cluster():
    root = Path(tempfile.mkdtemp(prefix="ep-lake-"))  # not under pytest's 0700 tmp: postgres must enter it
    root.chmod(0o711)
    cluster = PostgresCluster(root / "pg", durable=False)
    try:
        yield cluster.start()
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


def _lake_env(cluster: PostgresCluster, name: str, data: Path) -> dict[str, str]:
    cluster.create_database(name)
    return {
        "ENERGY_PLATFORM_WAREHOUSE": f"ducklake:postgres:dbname={name} host=127.0.0.1 port={cluster.port} user=postgres",
        "ENERGY_PLATFORM_WAREHOUSE_DATA_PATH": str(data),
    }


def test_a_partition_materialized_twice_on_ducklake_leaves_one_copy(cluster, tmp_path):
    env = make_env(tmp_path / "home", **_lake_env(cluster, "lake_idem", tmp_path / "lake-data"))
    lake = env.warehouse
    assert is_lake(lake) and f"DATA_PATH '{tmp_path / 'lake-data'}/'" in lake
    full = {"ops": {"raw_prices": {"config": {"full_refresh": True}}}}
    for _ in range(2):  # the second run replaces every day of the month, in one lake transaction
        result = run_job(env.defs, INGEST_JOB, env.instance, partition_key="2024-02-01", run_config=full)
        assert result.success
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert checks["no_duplicate_hours"] and checks["every_day_has_24_hours"], checks
    with connect(lake, read_only=True) as conn:
        rows, keys, days = conn.execute(
            "SELECT count(*), count(DISTINCT (date, hour)), count(DISTINCT date) FROM raw.prices_hourly"
        ).fetchone()
        snapshots = conn.execute("SELECT count(*) FROM ducklake_snapshots('lake')").fetchone()[0]
    assert (rows, keys, days) == (29 * 24, 29 * 24, 29)
    assert snapshots >= 3  # the schema, then one snapshot per committed write
    assert not list((tmp_path / "home").glob("*.duckdb")), "a warehouse file was made beside the lake"
    assert list((tmp_path / "lake-data").rglob("*.parquet")) or rows  # small writes may be inlined in the catalog
    assert read_prices(lake, date(2024, 2, 1), date(2024, 2, 1)).height == 24  # the read path on a URL

    summary = publish_analytics(lake, tmp_path / "home" / "analytics.duckdb")  # FROM the lake into a local file
    assert summary["tables"]["prices_hourly"] == 29 * 24
    with duckdb.connect(summary["path"], read_only=True) as conn:  # any DuckDB, no extension needed
        source = conn.execute("SELECT DISTINCT warehouse_path FROM metadata").fetchone()[0]
        assert conn.execute("SELECT count(*) FROM prices_hourly").fetchone()[0] == 29 * 24
    assert source.startswith("ducklake:postgres:dbname=lake_idem")


def test_concurrent_writers_of_the_same_days_leave_one_copy(cluster, tmp_path):
    """Three processes replace the same month at once: DuckLake aborts the losers, db.write re-runs them."""
    location = from_env(_lake_env(cluster, "lake_conc", tmp_path / "data")).warehouse_path
    with multiprocessing.get_context("spawn").Pool(3) as pool:
        assert sorted(pool.starmap(write_january, [(location, i) for i in range(3)])) == [0, 1, 2]
    with connect(location, read_only=True) as conn:
        rows, keys, sources = conn.execute(
            "SELECT count(*), count(DISTINCT (date, hour)), count(DISTINCT source) FROM raw.prices_hourly"
        ).fetchone()
    assert (rows, keys, sources) == (31 * 24, 31 * 24, 1)


def test_conflicts_are_retried_a_bounded_number_of_times_then_named():
    calls = []

    def always_conflicts():
        calls.append(1)
        raise duckdb.TransactionException("Failed to commit DuckLake transaction. Transaction conflict - another one won")

    with pytest.raises(WarehouseConflictError, match=f"after {db.WRITE_ATTEMPTS} attempts"):
        db._retrying("ducklake:postgres:dbname=x password=secret", always_conflicts)
    assert len(calls) == db.WRITE_ATTEMPTS
    with pytest.raises(duckdb.TransactionException):  # not a conflict: not retried
        db._retrying("w.duckdb", lambda: (_ for _ in ()).throw(duckdb.TransactionException("other")))


def test_a_lake_asked_for_and_not_reachable_is_one_line_never_a_file(cluster, tmp_path, monkeypatch):
    unreachable = {"ENERGY_PLATFORM_HOME": str(tmp_path),
                   "ENERGY_PLATFORM_WAREHOUSE": "ducklake:postgres:dbname=nope host=127.0.0.1 port=1 user=postgres password=s3cret",
                   "ENERGY_PLATFORM_WAREHOUSE_DATA_PATH": str(tmp_path / "data")}
    settings = from_env(unreachable)
    with pytest.raises(ProfileError) as error:
        db.check_warehouse(settings.warehouse_path)
    message = str(error.value)
    assert "\n" not in message and "cannot attach the DuckLake catalog" in message and "s3cret" not in message
    assert not list(tmp_path.glob("*.duckdb"))
    # a new lake needs its data path: DuckLake's own words, in one line
    no_data = _lake_env(cluster, "lake_nodata", tmp_path / "unused")
    no_data.pop("ENERGY_PLATFORM_WAREHOUSE_DATA_PATH")
    with pytest.raises(ProfileError, match="data_path is not set"):
        db.check_warehouse(from_env(no_data).warehouse_path)
    with pytest.raises(ProfileError, match="is not a DuckLake catalog"):
        from_env({"ENERGY_PLATFORM_WAREHOUSE_DATA_PATH": str(tmp_path)})
    with pytest.raises(ProfileError, match="nor a DuckLake catalog"):
        from_env({"ENERGY_PLATFORM_WAREHOUSE": "md:warehouse"})
    # the extension wheel missing: refused when the settings are read
    monkeypatch.setitem(db.EXTENSION_PACKAGES, "ducklake", "duckdb_extension_not_installed")
    with pytest.raises(ProfileError, match=r"not installed .*pip install -c constraints.txt"):
        from_env(unreachable)


def test_the_lake_schema_has_the_contract_without_constraints():
    from energy_platform.warehouse.schema import DDL, lake_ddl

    assert any("PRIMARY KEY" in s for s in DDL) and any("CHECK" in s for s in DDL)
    assert not any("PRIMARY KEY" in s or "CHECK (" in s for s in lake_ddl())
    assert lake_location("ducklake:postgres:dbname=a", "/d/it's/") == "ducklake:postgres:dbname=a (DATA_PATH '/d/it''s/')"
    assert db.parse_lake(lake_location("ducklake:postgres:dbname=a", "/d/it's/")) == ("ducklake:postgres:dbname=a", "/d/it's/")


def test_a_fresh_lake_publishes_the_contract_empty(cluster, tmp_path):
    location = from_env(_lake_env(cluster, "lake_fresh", tmp_path / "data")).warehouse_path
    summary = publish_analytics(location, tmp_path / "analytics.duckdb")
    assert summary["tables"]["prices_hourly"] == 0 and summary["tables"]["forecasts"] == 0
    assert read_prices(location).is_empty()
