"""Settings of another market (`ENERGY_PLATFORM_TIMEZONE`), and settings that cannot be read:
the CLI answers those in one line naming the variable, before creating anything."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import polars as pl
import pytest

from energy_platform.errors import SettingError
from energy_platform.settings import from_env
from energy_platform_tests.fixtures import epftoolbox_csv
from energy_platform_tests.platform_env import make_env

ENTRY = Path(sys.executable).with_name("energy-platform")


def _timezones(defs: dg.Definitions) -> dict[str, str]:
    out = {s.name: s.execution_timezone for s in defs.schedules}
    for key in ("raw_prices", "predictions", "forecast_accuracy"):
        out[key] = defs.get_assets_def(key).partitions_def.timezone
    return out


def test_another_market_s_days_and_mornings_are_its_own(tmp_path):
    """NP's file with Europe/Oslo: the partitions' days and both schedules' mornings are Oslo's (the
    daily run at 06:00 Oslo asks for yesterday's month partition); without the setting, XM's Bogota."""
    np_csv = epftoolbox_csv("NP", tmp_path)
    oslo = make_env(tmp_path / "np", source=f"csv:{np_csv}", ENERGY_PLATFORM_TIMEZONE="Europe/Oslo", ENERGY_PLATFORM_COUNTRY="NO")
    assert set(_timezones(oslo.defs).values()) == {"Europe/Oslo"}
    assert set(_timezones(make_env(tmp_path / "co").defs).values()) == {"America/Bogota"}

    repo = oslo.defs.get_repository_def()
    schedule = repo.get_schedule_def("daily_ingest_schedule")
    tick = datetime(2013, 1, 20, 6, 0, tzinfo=ZoneInfo("Europe/Oslo"))  # the shipped NP slice is January 2013
    [request] = schedule.evaluate_tick(dg.build_schedule_context(scheduled_execution_time=tick, repository_def=repo)).run_requests
    months = (request.tags["dagster/asset_partition_range_start"], request.tags["dagster/asset_partition_range_end"])
    assert request.tags["energy_platform/data_day"] == "2013-01-19" and months == ("2013-01-01", "2013-01-01")
    assert months[0] in oslo.defs.get_assets_def("raw_prices").partitions_def.get_partition_keys()


def test_a_file_starting_late_in_a_month_has_no_day_it_could_never_forecast(tmp_path):
    """The first target day is the first with a feature row (its lags all in the data): a file from
    28 January starts on 4 February (was 1 February, three days no backfill could fill)."""
    from energy_platform.sources import SampleSource

    path = tmp_path / "late.csv"
    prices = SampleSource().frame.filter(pl.col("ts").dt.date().is_between(date(2015, 1, 28), date(2015, 3, 10)))
    prices.select(pl.col("ts").dt.strftime("%Y-%m-%d %H:%M:%S").alias("Date"), pl.col("price").alias("Price")).write_csv(path)
    env = make_env(tmp_path / "home", source=f"csv:{path}")
    for asset in ("predictions", "forecast_accuracy"):
        assert env.defs.get_assets_def(asset).partitions_def.get_first_partition_key() == "2015-02-04"
    assert make_env(tmp_path / "co").defs.get_assets_def("predictions").partitions_def.get_first_partition_key() == "2015-02-01"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ENERGY_PLATFORM_TIMEZONE": "Europe/Olso"}, "ENERGY_PLATFORM_TIMEZONE must be an IANA time zone name such as Europe/Oslo, "
                                                      "got 'Europe/Olso'"),
        ({"ENERGY_PLATFORM_TIMEZONE": "Europe/Oslo", "ENERGY_PLATFORM_SOURCE": "xm"}, "XM's market days are America/Bogota's"),
        ({"ENERGY_PLATFORM_PRICE_FLOOR": "zero"}, "ENERGY_PLATFORM_PRICE_FLOOR must be a number or 'none', got 'zero'"),
        ({"ENERGY_PLATFORM_HORIZON_DAYS": "tomorrow"}, "ENERGY_PLATFORM_HORIZON_DAYS must be a whole number of days >= 1, got 'tomorrow'"),
        ({"ENERGY_PLATFORM_HORIZON_DAYS": "0"}, "ENERGY_PLATFORM_HORIZON_DAYS must be a whole number of days >= 1, got '0'"),
        # session 19 (helper H): a word as the lease failed the first run with a traceback after the home was created
        ({"ENERGY_PLATFORM_RUN_LEASE_SECONDS": "abc"}, "ENERGY_PLATFORM_RUN_LEASE_SECONDS must be a number of seconds >= 1, got 'abc'"),
        ({"ENERGY_PLATFORM_RUN_LEASE_SECONDS": "0"}, "ENERGY_PLATFORM_RUN_LEASE_SECONDS must be a number of seconds >= 1, got '0'"),
        ({"ENERGY_PLATFORM_SOURCE": "foo"}, "ENERGY_PLATFORM_SOURCE must be 'sample', 'xm' or 'csv:<path>', got 'foo'"),
    ],
)
def test_a_setting_that_cannot_be_read_is_named_in_one_line_and_nothing_is_created(tmp_path, env, message):
    with pytest.raises(SettingError, match="ENERGY_PLATFORM_"):
        from_env({"ENERGY_PLATFORM_HOME": str(tmp_path / "h"), **env})
    home = tmp_path / "home"
    proc = subprocess.run([str(ENTRY), "demo"], capture_output=True, text=True, timeout=300, check=False,
                          env={**os.environ, "ENERGY_PLATFORM_HOME": str(home), **env})
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr == f"energy-platform: {proc.stderr.split(': ', 1)[1]}" and proc.stderr.count("\n") == 1, proc.stderr
    assert message in proc.stderr and not home.exists()


def test_an_empty_setting_takes_its_default():
    """Helper S (session 21): ENERGY_PLATFORM_PRICE_FLOOR= (empty) read as no floor at all, where every
    other empty setting takes its default."""
    empty = from_env({"ENERGY_PLATFORM_HOME": "/h", "ENERGY_PLATFORM_PRICE_FLOOR": "", "ENERGY_PLATFORM_PRICE_CEILING": "",
                      "ENERGY_PLATFORM_COUNTRY": "", "ENERGY_PLATFORM_TIMEZONE": ""})
    assert (empty.price_floor, empty.price_ceiling, empty.country, empty.timezone) == (0.0, 1e6, "CO", "America/Bogota")
    assert from_env({"ENERGY_PLATFORM_HOME": "/h", "ENERGY_PLATFORM_PRICE_FLOOR": "none"}).price_floor is None


@pytest.mark.parametrize(("folder", "message"), [("/nonexistent/operating", "is not a folder"), ("/", "holds none of operating_daily.csv")])
def test_an_operating_folder_without_operating_files_is_named_at_start(tmp_path, folder, message):
    """Helper H (session 19): a mistyped ENERGY_PLATFORM_OPERATING_DIR ran the platform without
    operating data, silently (exit 0, the model trained on prices alone)."""
    proc = subprocess.run([str(ENTRY), "demo"], capture_output=True, text=True, timeout=300, check=False,
                          env={**os.environ, "ENERGY_PLATFORM_HOME": str(tmp_path), "ENERGY_PLATFORM_OPERATING_DIR": folder})
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert f"ENERGY_PLATFORM_OPERATING_DIR {folder} {message}" in proc.stderr, proc.stderr


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([f"2016-01-01 {h:02d}:00:00,{'inf' if h == 3 else 100}" for h in range(24)], "line 5: column 'price': non-finite price 'inf'"),
        ([f"2016-01-{d:02d} {h:02d}:00:00,100" for d in range(1, 11) for h in range(24)], "first target day 2016-02-01: the history is too short"),
    ],
    ids=["bad file", "history too short"],
)
def test_a_demo_on_data_it_refuses_says_why_in_one_line(tmp_path, rows, message):
    """A file the source refuses, or a history too short for the model, ended the demo with a
    Dagster traceback and exit 1: now exit 2 and the reason as the last line. The run's own log,
    above it, names the failed step in one line per event (it printed ~100 lines of stack traces)."""
    path = tmp_path / "prices.csv"
    path.write_text("Date,Price\n" + "\n".join(rows) + "\n")
    proc = subprocess.run([str(ENTRY), "demo", "--train-config", '{"n_members": 1, "max_epochs": 2}'], capture_output=True,
                          text=True, timeout=600, check=False,
                          env={**os.environ, "ENERGY_PLATFORM_HOME": str(tmp_path / "home"), "ENERGY_PLATFORM_SOURCE": f"csv:{path}"})
    assert proc.returncode == 2, proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("energy-platform: ") and message in last, proc.stderr[-2000:]
    failures = [line for line in proc.stderr.splitlines() if "STEP_FAILURE" in line]
    assert all(message in line for line in failures), proc.stderr[-2000:]  # none when the demo refuses before any run
    assert "Stack Trace" not in proc.stderr and len(proc.stderr.splitlines()) < 10, proc.stderr[-2000:]


def test_a_market_priced_in_a_smaller_unit_sets_its_ceiling(tmp_path):
    """Helper G (session 19): Colombia's prices in COP/MWh (the 2015 peak 2.8e6) were refused as
    "a corrupt cell or a wrong unit" with no setting to allow them. ENERGY_PLATFORM_PRICE_CEILING
    moves the file's bound and the warehouse check's (its WARN bound at ceiling / 100)."""
    from energy_platform.defs import INGEST_JOB
    from energy_platform.orchestration import run_job
    from energy_platform.sources import SampleSource

    path = tmp_path / "co_cop_mwh.csv"
    prices = SampleSource().frame.filter(pl.col("ts").dt.date().is_between(date(2015, 10, 1), date(2015, 10, 31)))
    prices.select(pl.col("ts").dt.strftime("%Y-%m-%d %H:%M:%S").alias("Date"), (pl.col("price") * 1000).alias("Price")).write_csv(path)
    assert prices["price"].max() * 1000 > 1e6
    default = make_env(tmp_path / "default", source=f"csv:{path}")
    with pytest.raises(Exception, match=r"implausible price .* \(magnitude >= 1e\+06"):
        run_job(default.defs, INGEST_JOB, default.instance, partition_key="2015-10-01")
    with pytest.raises(SettingError, match="ENERGY_PLATFORM_PRICE_CEILING must be a positive number, got 'big'"):
        from_env({"ENERGY_PLATFORM_PRICE_CEILING": "big"})
    raised = make_env(tmp_path / "raised", source=f"csv:{path}", ENERGY_PLATFORM_PRICE_CEILING="1e9")
    result = run_job(raised.defs, INGEST_JOB, raised.instance, partition_key="2015-10-01")
    [bounds] = [e for e in result.get_asset_check_evaluations() if e.check_name == "prices_within_plausible_bounds"]
    assert bounds.passed, bounds.description
