"""The analysts' file as analysts open it: with the DuckDB CLI from PyPI (`duckdb-cli`, dev extra).

The CLI is a separate binary with its own storage reader, so this is the test that catches a
duckdb upgrade writing a format the CLI (or any 1.x client) refuses; the Python client in the
other tests would read it happily.
"""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from energy_platform.warehouse.analytics import (
    COLUMN_DOCS_QUERY,
    EXAMPLE_QUERIES,
    TABLE_DOCS_QUERY,
    TABLES,
    publish_analytics,
)
from energy_platform_tests.test_analytics import API, seed_warehouse

README = Path(__file__).resolve().parent.parent / "README.md"
CLI = Path(sys.executable).with_name("duckdb")  # the duckdb-cli console script in this venv


def _cli(path: Path, sql: str) -> tuple[int, list[dict], str]:
    if not CLI.exists():
        pytest.fail(f"{CLI} is missing: install the dev extra (make install) for duckdb-cli")
    proc = subprocess.run([str(CLI), "-readonly", "-csv", str(path), "-c", sql],
                          check=False, capture_output=True, text=True, timeout=60)
    return proc.returncode, list(csv.DictReader(io.StringIO(proc.stdout))), proc.stderr


@pytest.fixture(scope="module")
def analytics(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("home")
    publish_analytics(seed_warehouse(home), home / "analytics.duckdb")
    return home / "analytics.duckdb"


def test_cli_opens_the_file_read_only_and_queries_a_view(analytics):
    rc, rows, err = _cli(analytics, "SELECT count(*) AS n, count(actual) AS realised FROM forecast_vs_actual")
    assert rc == 0, err
    with duckdb.connect(str(analytics), read_only=True) as conn:
        expected = conn.execute("SELECT count(*), count(actual) FROM forecast_vs_actual").fetchone()
    assert (int(rows[0]["n"]), int(rows[0]["realised"])) == expected and expected[1] > 0
    rc, _, err = _cli(analytics, "DELETE FROM forecasts")
    assert rc != 0 and "read-only" in err.lower(), err


def test_cli_runs_every_readme_example(analytics):
    for title, sql in EXAMPLE_QUERIES:
        rc, rows, err = _cli(analytics, sql)
        assert rc == 0 and rows, f"{title}: {err}"


def test_every_published_column_and_table_has_a_comment_the_readme_query_shows(analytics):
    docs = README.read_text()
    assert COLUMN_DOCS_QUERY in docs and TABLE_DOCS_QUERY in docs
    rc, rows, err = _cli(analytics, COLUMN_DOCS_QUERY)
    assert rc == 0, err
    undocumented = [f"{r['table_name']}.{r['column_name']}" for r in rows if not r["comment"]]
    assert not undocumented, undocumented
    shown = {(r["table_name"], r["column_name"]) for r in rows}
    for t in TABLES:  # every declared comment reaches a real column, and vice versa
        with duckdb.connect(str(analytics), read_only=True) as conn:
            actual = {c for (c,) in conn.execute(
                "SELECT column_name FROM duckdb_columns() WHERE table_name = ?", [t.name]).fetchall()}
        assert set(t.columns) == actual, t.name
        assert {(t.name, c) for c in actual} <= shown
    rc, rows, err = _cli(analytics, TABLE_DOCS_QUERY)
    assert rc == 0, err
    comments = {r["name"]: r["comment"] for r in rows}
    assert all(comments.get(name) for name in [*API, "metadata"]), comments



def test_an_undocumented_column_fails_the_publish_naming_it():
    from energy_platform.warehouse.analytics import _require_comments

    with duckdb.connect() as conn:
        conn.execute("CREATE TABLE prices_hourly (date DATE, price DOUBLE, surprise INTEGER)")
        with pytest.raises(RuntimeError, match=r"without a COMMENT: prices_hourly\.surprise; add them to TABLES"):
            _require_comments(conn, {"prices_hourly": {"date": "Day.", "price": "Price."}})
