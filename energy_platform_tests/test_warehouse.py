import os
import subprocess
import sys
import time
from datetime import date

import polars as pl
import pytest

from energy_platform.sources import SampleSource
from energy_platform.warehouse import quality
from energy_platform.warehouse.db import WarehouseLockedError, connect
from energy_platform.warehouse.prices import incomplete_days, read_prices, replace_prices


@pytest.fixture
def january():
    return SampleSource().hourly_prices(date(2016, 1, 1), date(2016, 1, 31))


def _count(path) -> int:
    with connect(path, read_only=True) as conn:
        return conn.execute("SELECT count(*) FROM raw.prices_hourly").fetchone()[0]


def test_replace_twice_leaves_one_copy(tmp_path, january):
    path = tmp_path / "w.duckdb"
    assert replace_prices(path, january, date(2016, 1, 1), date(2016, 1, 31), "sample") == 744
    replace_prices(path, january, date(2016, 1, 1), date(2016, 1, 31), "sample")
    assert _count(path) == 744
    stored = read_prices(path)
    assert stored["price"].to_list() == january["price"].to_list()


def test_short_answer_never_deletes_other_days(tmp_path, january):
    path = tmp_path / "w.duckdb"
    replace_prices(path, january, date(2016, 1, 1), date(2016, 1, 31), "sample")
    changed = january.filter(pl.col("date") == date(2016, 1, 10)).with_columns(pl.lit(1.0).alias("price"))
    replace_prices(path, changed, date(2016, 1, 1), date(2016, 1, 31), "sample")
    stored = read_prices(path)
    assert stored.height == 744
    assert stored.filter(pl.col("date") == date(2016, 1, 10))["price"].unique().to_list() == [1.0]


def test_rows_outside_the_range_are_refused(tmp_path, january):
    with pytest.raises(ValueError, match=r"outside the range 2016-01-01\.\.2016-01-15"):
        replace_prices(tmp_path / "w.duckdb", january, date(2016, 1, 1), date(2016, 1, 15), "sample")


def test_incomplete_days_lists_missing_and_partial_days(tmp_path, january):
    path = tmp_path / "w.duckdb"
    holey = january.with_columns(
        pl.when((pl.col("date") == date(2016, 1, 5)) & (pl.col("hour") == 3)).then(None).otherwise(pl.col("price")).alias("price")
    ).filter(pl.col("date") != date(2016, 1, 20))
    replace_prices(path, holey, date(2016, 1, 1), date(2016, 1, 31), "sample")
    assert incomplete_days(path, date(2016, 1, 1), date(2016, 2, 2)) == [
        date(2016, 1, 5), date(2016, 1, 20), date(2016, 2, 1), date(2016, 2, 2)
    ]


def test_quality_checks_on_good_and_bad_data(tmp_path, january):
    path = tmp_path / "w.duckdb"
    replace_prices(path, january, date(2016, 1, 1), date(2016, 1, 31), "sample")
    assert all(
        o.passed for o in (
            quality.every_day_has_24_hours(path),
            quality.no_null_or_nonfinite_price(path),
            quality.prices_within_plausible_bounds(path),
            quality.latest_partition_fresh(path, date(2016, 1, 31)),
        )
    )
    bad = january.filter(~((pl.col("date") == date(2016, 1, 7)) & (pl.col("hour") == 0))).with_columns(
        pl.when(pl.col("ts") == pl.datetime(2016, 1, 3, 4)).then(None)
        .when(pl.col("ts") == pl.datetime(2016, 1, 4, 5)).then(float("nan"))
        .when(pl.col("ts") == pl.datetime(2016, 1, 9, 9)).then(12_000.0)
        .otherwise(pl.col("price")).alias("price")
    )
    replace_prices(path, bad, date(2016, 1, 1), date(2016, 1, 31), "sample")

    complete = quality.every_day_has_24_hours(path)
    assert not complete.passed and complete.severity == "error"
    assert complete.metadata["incomplete_days"] == 2
    assert set(complete.metadata["examples (day: priced hours)"]) == {"2016-01-03", "2016-01-07"}

    nulls = quality.no_null_or_nonfinite_price(path)
    assert not nulls.passed and nulls.metadata["bad_hours"] == 2

    bounds = quality.prices_within_plausible_bounds(path)
    assert not bounds.passed and bounds.severity == "error"  # the null counts as a hard failure
    assert bounds.metadata["out_of_bounds_hours"] == 3
    assert bounds.metadata["negative_null_or_nan_hours"] == 2

    only_high = bad.with_columns(pl.col("price").fill_null(100.0).fill_nan(100.0))
    replace_prices(path, only_high, date(2016, 1, 1), date(2016, 1, 31), "sample")
    warn = quality.prices_within_plausible_bounds(path)
    assert not warn.passed and warn.severity == "warn" and "2016-01-09 09:00:00" in warn.metadata["examples"]
    assert "COP/kWh" in warn.description  # XM's unit by default; another market's is named
    assert "EUR/MWh" in quality.prices_within_plausible_bounds(path, unit="EUR/MWh").description
    # a small unit's bound is printed as it is (helper S, session 21: "0 < p < 0 EUR/kWh" for 0.1)
    assert "outside 0 < p < 0.1 EUR/kWh" in quality.prices_within_plausible_bounds(path, upper=0.1, unit="EUR/kWh").description

    stale = quality.latest_partition_fresh(path, date(2016, 2, 5))
    assert not stale.passed and stale.severity == "error" and stale.metadata["lag_days"] == 5
    late = quality.latest_partition_fresh(path, date(2016, 2, 1))
    assert not late.passed and late.severity == "warn"


def test_a_held_lock_is_retried_then_named(tmp_path, january):
    path = tmp_path / "w.duckdb"
    replace_prices(path, january, date(2016, 1, 1), date(2016, 1, 31), "sample")
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import duckdb,time; c=duckdb.connect({str(path)!r}); print('held', flush=True); time.sleep(30)"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        started = time.monotonic()
        with pytest.raises(WarehouseLockedError) as err, connect(path, wait_seconds=1.0):
            pass
        assert time.monotonic() - started >= 1.0
        assert str(path) in str(err.value) and "analytics.duckdb" in str(err.value)
    finally:
        holder.kill()
        holder.wait()
    assert _count(path) == 744  # nothing corrupted



def test_a_command_meeting_a_held_warehouse_says_so_in_one_line(tmp_path):
    """Helper S (session 21): an analyst's connection held on warehouse.duckdb made `demo` end in a
    72-line traceback, exit 1, though the message (WarehouseLockedError) named the file and the fix."""
    from pathlib import Path

    home = tmp_path / "home"
    home.mkdir()
    path = home / "warehouse.duckdb"
    replace_prices(path, SampleSource().hourly_prices(date(2016, 1, 1), date(2016, 1, 31)), date(2016, 1, 1),
                   date(2016, 1, 31), "sample")
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import duckdb,time; c=duckdb.connect({str(path)!r}); print('held', flush=True); time.sleep(120)"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        entry = Path(sys.executable).with_name("energy-platform")
        proc = subprocess.run([str(entry), "demo"], capture_output=True, text=True, timeout=300, check=False,
                              env={**os.environ, "ENERGY_PLATFORM_HOME": str(home)})
    finally:
        holder.kill()
        holder.wait()
    assert proc.returncode == 2, proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("energy-platform: ") and str(path) in last and "analytics.duckdb" in last, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr


def test_a_warehouse_from_a_newer_duckdb_is_named_as_such_not_damaged(tmp_path):
    """After the duckdb pin (README, "Which DuckDB"), a file written by duckdb 2.x is not damaged:
    the operator is told what wrote it and how to rebuild. The fixture is a real file written by
    duckdb 2.0.1 (one table in schema raw), gzipped (0.7 kB)."""
    import gzip
    from pathlib import Path

    import duckdb

    from energy_platform.errors import StateError
    from energy_platform.warehouse.db import check_warehouse

    if int(duckdb.__version__.split(".")[0]) >= 2:
        pytest.skip(f"duckdb {duckdb.__version__} reads the fixture: run `make install` for the 1.5.5 pin")
    fixture = Path(__file__).parent / "data" / "written_by_duckdb_2.0.1.duckdb.gz"
    path = tmp_path / "w.duckdb"
    path.write_bytes(gzip.decompress(fixture.read_bytes()))
    with pytest.raises(StateError, match=r"written by a newer DuckDB than this install's duckdb 1\.\S+ .*mv "):
        check_warehouse(path)


def test_a_feature_table_of_an_earlier_spec_is_recomputed_whole_not_cut_to_the_refreshed_days(tmp_path):
    """An upgrade that adds a feature column met a stored features.daily without it: the next
    daily refresh (new days plus the last 14) dropped the table and kept only those ~15 days, so
    the next training had no window."""
    from energy_platform.warehouse.features import read_features, refresh_features, write_features

    path = tmp_path / "w.duckdb"
    start, end = date(2023, 1, 1), date(2023, 6, 30)
    replace_prices(path, SampleSource().hourly_prices(start, end), start, end, "sample")
    full = refresh_features(path, 2)
    with connect(path) as conn:  # as an earlier spec wrote it: one feature fewer
        conn.execute("ALTER TABLE features.daily DROP COLUMN holiday")
    older = read_features(path)
    assert "holiday" not in older.columns and older.height == full.height

    partial = full.tail(3)
    with pytest.raises(ValueError, match=r"other columns than these rows \(added \['holiday'\]"):
        write_features(path, partial)  # a write of some days in the new shape
    assert read_features(path).equals(older)  # refused: nothing lost

    written = refresh_features(path, 2)  # the daily, incremental refresh
    after = read_features(path)
    assert written.height == after.height == full.height
    assert after.columns == full.columns and after.equals(full)


def test_history_prepended_or_revised_reaches_the_feature_store(tmp_path):
    """Helper K (session 20): the refresh looked only at the newest stored target day, so a year
    prepended to the warehouse (a file extended back, a month backfilled out of order) never got
    feature rows, training used the last year alone, and a day re-read with full_refresh kept its
    old value in every row that reads it."""
    from energy_platform.warehouse.features import read_features, refresh_features

    path = tmp_path / "w.duckdb"
    source = SampleSource()
    replace_prices(path, source.hourly_prices(date(2023, 1, 1), date(2023, 6, 30)), date(2023, 1, 1), date(2023, 6, 30), "sample")
    first = refresh_features(path, 2)
    older = source.hourly_prices(date(2022, 7, 1), date(2022, 12, 31))
    replace_prices(path, older, date(2022, 7, 1), date(2022, 12, 31), "sample")
    refresh_features(path, 2)
    stored = read_features(path)
    assert stored["target_date"].min() < date(2022, 7, 31) and stored.height > first.height + 150

    revised = source.hourly_prices(date(2022, 10, 1), date(2022, 10, 31)).with_columns(
        pl.when((pl.col("date") == date(2022, 10, 15)) & (pl.col("hour") == 11)).then(999.5).otherwise(pl.col("price")).alias("price"))
    replace_prices(path, revised, date(2022, 10, 1), date(2022, 10, 31), "sample")  # full_refresh of one month
    refresh_features(path, 2)
    rows = read_features(path).filter(pl.col("target_date").is_in([date(2022, 10, 15), date(2022, 10, 17)]))
    assert rows["target_h11"][0] == 999.5 and rows["price_lag2_h11"][1] == 999.5


def test_a_recreated_registry_s_version_never_overwrites_another_run_s_issued_forecasts(tmp_path):
    """Helper O (session 20): the registered model deleted (or mlflow.db replaced), the new registry's
    v1 overwrote the old v1's issued forecasts of the same days; those rows are kept now."""
    from datetime import datetime, timedelta

    from energy_platform.warehouse.predictions import read_predictions, write_predictions

    path = tmp_path / "w.duckdb"
    with connect(path):
        pass

    def day(d: date, run: str, value: float) -> pl.DataFrame:
        ts = [datetime(d.year, d.month, d.day, h) for h in range(24)]
        return pl.DataFrame({"target_date": [d] * 24, "hour": list(range(24)), "ts": ts, "forecast": [value] * 24,
                             "p10": [value - 1] * 24, "p50": [value] * 24, "p90": [value + 1] * 24,
                             "model_version": ["1"] * 24, "mlflow_run_id": [run] * 24,
                             "feature_cutoff": [d - timedelta(days=2)] * 24, "dagster_run_id": ["r"] * 24})

    d1, d2, d3 = date(2024, 1, 1), date(2024, 1, 2), date(2024, 1, 3)
    assert write_predictions(path, pl.concat([day(d1, "old", 10.0), day(d2, "old", 10.0)])) == (48, [])
    assert write_predictions(path, day(d2, "old", 11.0)) == (24, [])  # the same run again: replaced
    assert write_predictions(path, pl.concat([day(d2, "new", 99.0), day(d3, "new", 99.0)])) == (24, [d2])
    stored = read_predictions(path)
    assert stored.height == 72
    assert stored.filter(pl.col("target_date") == d2)["forecast"].unique().to_list() == [11.0]
    assert stored.filter(pl.col("target_date") == d3)["mlflow_run_id"].unique().to_list() == ["new"]


def test_operating_rows_read_again_unchanged_keep_their_ingestion_time(tmp_path):
    """Helper P (session 20): NOAA's whole ONI file, read again every run, re-stamped its rows since
    1950, and the feature store then recomputed every target day on every run."""
    from energy_platform.warehouse.operating import replace_rows

    path = tmp_path / "w.duckdb"
    months = [date(2024, m, 1) for m in (1, 2, 3)]
    oni = pl.DataFrame({"month": months, "season": ["DJF", "JFM", "FMA"], "oni": [1.8, 1.5, None]})
    assert replace_rows(path, "enso_oni", oni, "noaa") == (3, 3)

    def stamps():
        with connect(path, read_only=True) as conn:
            return dict(conn.execute("SELECT month, ingested_at FROM raw.enso_oni").fetchall())

    first = stamps()
    assert replace_rows(path, "enso_oni", oni, "noaa") == (3, 0)  # the same file again, a null included
    assert stamps() == first
    revised = oni.with_columns(pl.when(pl.col("season") == "JFM").then(1.4).otherwise(pl.col("oni")).alias("oni"))
    assert replace_rows(path, "enso_oni", revised, "noaa") == (3, 1)  # the metadata's rows_changed
    again = stamps()
    assert again[months[0]] == first[months[0]] and again[months[1]] > first[months[1]]
