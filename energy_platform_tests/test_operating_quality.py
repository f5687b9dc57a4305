"""The operating data's quality rules on a real DuckDB file, and which months a run must fetch."""

from datetime import date

import polars as pl

from energy_platform.sources.operating_files import DAILY_SCHEMA, HYDROLOGY_SCHEMA, ONI_SCHEMA
from energy_platform.warehouse import operating_quality as quality
from energy_platform.warehouse.db import connect
from energy_platform.warehouse.operating import first_month_to_fetch, read_operating, replace_rows
from energy_platform.warehouse.prices import replace_prices


def _daily(rows) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=DAILY_SCHEMA, orient="row")


def test_good_daily_rows_pass_and_a_gap_warns(tmp_path):
    path = tmp_path / "w.duckdb"
    replace_rows(path, "operating_daily", _daily([
        (date(2016, 1, 1), 150.0, 151.0, None, 0.1, 0.2),
        (date(2016, 1, 4), 160.0, 161.0, 3.0, None, None),
    ]), "test")
    assert quality.unique_keys(path, "operating_daily").passed
    assert quality.within_plausible_ranges(path, "operating_daily").passed
    assert quality.required_values_present(path, "operating_daily").passed
    gap = quality.missing_periods(path, "operating_daily")
    assert (gap.passed, gap.severity, gap.metadata["missing_days"]) == (False, "warn", 2)
    assert gap.metadata["examples"] == ["2016-01-02", "2016-01-03"]
    assert read_operating(path, "operating_daily").height == 2


def test_impossible_values_are_errors_and_unusual_ones_warnings(tmp_path):
    path = tmp_path / "w.duckdb"
    replace_rows(path, "operating_daily", _daily([(date(2016, 1, 1), 90.0, 151.0, None, None, None)]), "test")
    unusual = quality.within_plausible_ranges(path, "operating_daily")
    assert (unusual.passed, unusual.severity) == (False, "warn")  # 90 GWh/day: possible, not usual
    with connect(path) as conn:  # what no reader would store, written behind its back
        conn.execute("UPDATE raw.operating_daily SET demand_gwh = -1, generation_gwh = 'NaN'")
        conn.execute("INSERT INTO raw.hydrology_monthly VALUES ('2016-01-01', 80, 120, NULL, 'x', now())")
        conn.execute("INSERT INTO raw.enso_oni VALUES ('2016-02-01', 'DJF', 1.5, 'x', now())")
    for kind in ("operating_daily", "hydrology_monthly", "enso_oni"):
        outcome = quality.within_plausible_ranges(path, kind)
        assert (outcome.passed, outcome.severity, outcome.metadata["impossible"]) == (False, "error", 1), kind


def test_empty_tables_pass(tmp_path):
    path = tmp_path / "w.duckdb"
    with connect(path):
        pass
    for kind in ("operating_daily", "hydrology_monthly", "enso_oni"):
        for rule in (quality.unique_keys, quality.within_plausible_ranges, quality.required_values_present, quality.missing_periods,
                     quality.current_at_latest_prices):
            assert rule(path, kind).passed, (rule.__name__, kind)


def test_hydrology_is_fetched_from_the_first_missing_or_partly_observed_month(tmp_path):
    path = tmp_path / "w.duckdb"
    with connect(path):
        pass
    assert first_month_to_fetch(path) == date(2015, 1, 1)

    def months(*rows):
        return pl.DataFrame(rows, schema=HYDROLOGY_SCHEMA, orient="row")

    replace_rows(path, "hydrology_monthly", months(
        *[(date(2015, m, 1), 90.0, 60.0, None) for m in range(1, 13)]
    ), "test")
    # a file's rows say nothing of their days: the recent ones are read again, a month exported
    # mid-month stayed at its month-to-date mean for good (helper J, session 19)
    assert first_month_to_fetch(path) == date(2015, 10, 1)
    replace_rows(path, "hydrology_monthly", months(*[(date(2015, m, 1), 90.0, 60.0, 31) for m in range(1, 13)]), "test")
    assert first_month_to_fetch(path) == date(2016, 1, 1)  # complete: only what comes after
    replace_rows(path, "hydrology_monthly", months((date(2015, 11, 1), 90.0, 60.0, 29)), "test")
    assert first_month_to_fetch(path) == date(2015, 11, 1)  # 29 of 30 days, a recent month: asked again
    with connect(path) as conn:
        conn.execute("DELETE FROM raw.hydrology_monthly WHERE month = '2015-10-01'")
    assert first_month_to_fetch(path) == date(2015, 10, 1)  # missing, two months before the newest: asked again
    # older than that, short or missing is final: no daily re-fetch of every month from it to today
    replace_rows(path, "hydrology_monthly", months((date(2015, 10, 1), 90.0, 60.0, 31), (date(2015, 11, 1), 90.0, 60.0, 30),
                                                  (date(2015, 6, 1), 90.0, 60.0, 29)), "test")
    with connect(path) as conn:
        conn.execute("DELETE FROM raw.hydrology_monthly WHERE month = '2015-03-01'")
    assert first_month_to_fetch(path) == date(2016, 1, 1)
    incomplete = quality.missing_periods(path, "hydrology_monthly")  # the quality check still names them
    assert incomplete.metadata["missing_months"] == 1 and incomplete.metadata["incomplete_months"] == 1


def test_oni_rows_round_trip(tmp_path):
    path = tmp_path / "w.duckdb"
    frame = pl.DataFrame([(date(2015, 12, 1), "NDJ", 2.6)], schema=ONI_SCHEMA, orient="row")
    assert replace_rows(path, "enso_oni", frame, "test") == (1, 1)
    assert replace_rows(path, "enso_oni", frame, "test") == (1, 0)  # read again, unchanged
    assert read_operating(path, "enso_oni").equals(frame)


def _prices_to(path, day: date) -> None:
    hours = pl.datetime_range(pl.datetime(day.year, day.month, day.day), pl.datetime(day.year, day.month, day.day, 23), "1h", eager=True)
    frame = pl.DataFrame({"ts": hours}).with_columns(pl.col("ts").dt.date().alias("date"), pl.col("ts").dt.hour().cast(pl.Int32).alias("hour"),
                                                     pl.lit(200.0).alias("price"))
    replace_prices(path, frame, day, day, "test")


def test_a_source_that_stopped_warns_once_the_forecast_no_longer_reads_it(tmp_path):
    """Prices to 2024-08-31, so the forecast of 09-01 reads the cutoff 08-31: demand must hold
    that day; hydrology's June is unknown from 09-01 (July and August overdue), ONI's June from 10-15."""
    path = tmp_path / "w.duckdb"
    replace_rows(path, "operating_daily", _daily([(date(2024, 8, 30), 200.0, 201.0, None, None, None)]), "test")
    replace_rows(path, "hydrology_monthly", pl.DataFrame([(date(2024, 6, 1), 90.0, 60.0, 30)], schema=HYDROLOGY_SCHEMA, orient="row"), "test")
    replace_rows(path, "enso_oni", pl.DataFrame([(date(2024, 6, 1), "MJJ", 0.2)], schema=ONI_SCHEMA, orient="row"), "test")
    for kind in ("operating_daily", "hydrology_monthly", "enso_oni"):
        assert quality.current_at_latest_prices(path, kind).passed, kind  # no prices stored: nothing to compare
    _prices_to(path, date(2024, 8, 30))
    assert [quality.current_at_latest_prices(path, k).passed for k in ("operating_daily", "hydrology_monthly", "enso_oni")] == [True] * 3
    _prices_to(path, date(2024, 8, 31))
    daily, hydrology, oni = (quality.current_at_latest_prices(path, k) for k in ("operating_daily", "hydrology_monthly", "enso_oni"))
    assert (daily.passed, daily.severity) == (False, "warn") and "2024-08-30" in daily.description
    assert (hydrology.passed, hydrology.metadata["unknown_from"]) == (False, "2024-09-01")
    assert "forecast of 2024-09-01 reads it as missing" in hydrology.description
    assert oni.passed and oni.metadata["unknown_from"] == "2024-10-15"



def test_a_stored_day_of_zero_demand_is_fetched_again(tmp_path):
    """Helper J (session 19): a 0 stored (an older reader, XM's 24 zero hours) failed the blocking
    range check of every later ingestion, holding every forecast back; a mended source was never
    asked for the day again (only days without a value were)."""
    from energy_platform.warehouse.operating import missing_days

    path = tmp_path / "w.duckdb"
    replace_rows(path, "operating_daily", _daily([
        (date(2016, 1, 1), 150.0, 151.0, None, None, None),
        (date(2016, 1, 2), 0.0, 151.0, None, None, None),
        (date(2016, 1, 3), 150.0, 151.0, None, None, None),
    ]), "test")
    assert not quality.within_plausible_ranges(path, "operating_daily").passed
    assert missing_days(path, date(2016, 1, 1), date(2016, 1, 3)) == [date(2016, 1, 2)]
    replace_rows(path, "operating_daily", _daily([(date(2016, 1, 2), 149.0, 151.0, None, None, None)]), "test")
    assert quality.within_plausible_ranges(path, "operating_daily").passed
