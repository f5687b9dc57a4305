"""The operating-data readers: strict CSV files, NOAA's ONI text, the sample and folder sources."""

from datetime import date
from pathlib import Path

import polars as pl
import pytest

from energy_platform.sources.base import SourceError
from energy_platform.sources.noaa_oni import fetch_oni, parse_oni_text
from energy_platform.sources.operating import folder_paths, get_operating_source, last_complete_month
from energy_platform.sources.operating_files import read_hydrology_csv, read_oni_csv, read_operating_daily_csv

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "colombia" / "operating"
DAILY_HEADER = "date,demand_gwh,generation_gwh,unserved_demand_mwh,exports_gwh,imports_gwh\n"

ONI_TEXT = """ SEAS  YR   TOTAL   ANOM
  DJF 1950  24.72  -1.53
  JFM 1950  25.17  -1.34

  NDJ 2024  26.13  -0.43
"""


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.skipif(not SHARED.exists(), reason="the shared data folder is not beside this checkout")
def test_the_embedded_sample_is_the_shared_data():
    source = get_operating_source("sample")
    daily = source.operating_daily(date(2015, 1, 1), date(2024, 12, 31))
    assert daily.height == 3652 and date(2015, 12, 31) not in daily["date"].to_list()  # missing stays missing
    shared = read_operating_daily_csv(SHARED / "operating_daily.csv")
    assert daily.equals(shared)
    assert source.hydrology_monthly(date(2015, 1, 1), date(2024, 12, 1)).equals(read_hydrology_csv(SHARED / "hydrology_monthly.csv"))
    assert source.oni_monthly().equals(read_oni_csv(SHARED / "oni_monthly.csv"))
    assert source.note("operating_daily") is None


def test_the_sample_as_of_keeps_only_what_was_published_by_the_next_morning():
    source = get_operating_source("sample", as_of=date(2016, 1, 20))
    assert source.last_date() == date(2016, 1, 20)
    assert source.operating_daily(date(2016, 1, 1), date(2016, 12, 31))["date"].max() == date(2016, 1, 20)
    assert source.hydrology_monthly(date(2015, 1, 1), date(2030, 1, 1))["month"].max() == date(2015, 12, 1)
    # ONI of centre month m is usable from the 15th of m+2: on 2016-01-21, November 2015 is the newest.
    assert source.oni_monthly()["month"].max() == date(2015, 11, 1)
    assert get_operating_source("sample", as_of=date(2016, 1, 13)).oni_monthly()["month"].max() == date(2015, 10, 1)


def test_last_complete_month():
    assert last_complete_month(date(2024, 3, 31)) == date(2024, 3, 1)
    assert last_complete_month(date(2024, 3, 30)) == date(2024, 2, 1)
    assert last_complete_month(date(2024, 1, 1)) == date(2023, 12, 1)


@pytest.mark.parametrize(
    "body, message",
    [
        ("2016-01-01,150,151,,,\n2016-01-02,-3,150,,,\n", "line 3: column 'demand_gwh': value -3.0 outside 10..1000"),
        ("2016-01-01,0.15,151,,,\n", "line 2: column 'demand_gwh': value 0.15 outside 10..1000"),  # TWh: stored with a WARN (session 19)
        ("2016-01-01,150,151,,,\n2016-01-02,inf,150,,,\n", "line 3: column 'demand_gwh': non-finite value inf"),
        ("2016-01-01,150,NaN,,,\n", "line 2: column 'generation_gwh': non-finite value nan"),
        ("2016-01-01,,151,,,\n", "line 2: column 'demand_gwh': missing value"),
        ("2016-01-01,150,151,abc,,\n", "line 2: column 'unserved_demand_mwh': non-numeric value 'abc'"),
        ("2016-01-01,150,151,,-0.5,\n", "line 2: column 'exports_gwh': value -0.5 outside"),
        ("2016-01-01,150,151,,,\n2016/01/02,150,151,,,\n", "line 3: column 'date': unparsable date '2016/01/02'"),
        ("2016-01-01,150,151,,,\n2016-01-01,150,151,,,\n", "line 3: duplicate date 2016-01-01"),
        ("2016-01-01,150000000,151,,,\n", "line 2: column 'demand_gwh': value 150000000.0 outside"),  # kWh, not GWh
        # stored, a 0 failed the blocking check of every later ingestion, and a mended file did not replace it (session 19)
        ("2016-01-01,150,151,,,\n2016-01-02,0,150,,,\n", "line 3: column 'demand_gwh': value 0: no day has zero demand"),
    ],
)
def test_a_bad_daily_file_is_refused_with_line_and_problem(tmp_path, body, message):
    path = _write(tmp_path, "operating_daily.csv", DAILY_HEADER + body)
    with pytest.raises(SourceError, match=message.replace("(", r"\(").replace(".", r"\.")) as info:
        read_operating_daily_csv(path)
    assert str(path) in str(info.value)


def test_a_daily_file_with_a_gap_is_read_and_the_gap_stays(tmp_path):
    path = _write(tmp_path, "operating_daily.csv", DAILY_HEADER + "2016-01-03,150,151,,,\n2016-01-01,150,151,2.5,0.1,\n")
    frame = read_operating_daily_csv(path)
    assert frame["date"].to_list() == [date(2016, 1, 1), date(2016, 1, 3)]
    assert frame["imports_gwh"].null_count() == 2


@pytest.mark.parametrize(
    "name, text, message",
    [
        ("hydrology_monthly.csv", "month,inflows_pct_of_historical_mean,reservoir_useful_volume_pct\n2016-01,80,101.5\n",
         "line 2: column 'reservoir_useful_volume_pct': value 101.5 outside 0..100"),
        ("hydrology_monthly.csv", "month,inflows_pct_of_historical_mean,reservoir_useful_volume_pct\n2016-1,80,60\n",
         "line 2: column 'month': unparsable month '2016-1' (want YYYY-MM)"),
        ("hydrology_monthly.csv", "month,inflow,reservoir_useful_volume_pct\n2016-01,80,60\n", "line 1: expected columns"),
        ("oni_monthly.csv", "month,oni,season\n2016-01,2.1,DJF\n2016-02,1.9,DJF\n",
         "line 3: season 'DJF' does not match centre month 2016-02 (want 'JFM')"),
        ("oni_monthly.csv", "month,oni,season\n2016-01,21,DJF\n", "line 2: column 'oni': value 21.0 outside -5..5"),
    ],
)
def test_bad_monthly_files_are_refused(tmp_path, name, text, message):
    path = _write(tmp_path, name, text)
    reader = read_hydrology_csv if name.startswith("hydrology") else read_oni_csv
    with pytest.raises(SourceError) as info:
        reader(path)
    assert message in str(info.value) and str(path) in str(info.value)


def test_noaa_text_is_parsed_by_centre_month():
    frame = parse_oni_text(ONI_TEXT)
    assert frame.rows() == [
        (date(1950, 1, 1), "DJF", -1.53), (date(1950, 2, 1), "JFM", -1.34), (date(2024, 12, 1), "NDJ", -0.43)
    ]


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "empty file"),
        ("SEAS YR ANOM\n", "line 1: expected header"),
        (" SEAS  YR   TOTAL   ANOM\n  XYZ 1950  24.72  -1.53\n", "line 2: unknown season 'XYZ'"),
        (" SEAS  YR   TOTAL   ANOM\n  DJF 1950  24.72\n", "line 2: expected 4 fields"),
        (" SEAS  YR   TOTAL   ANOM\n  DJF 1950  24.72  -1,53\n", "line 2: non-numeric value"),
        (" SEAS  YR   TOTAL   ANOM\n  DJF 1950  24.72  nan\n", "line 2: ANOM: non-finite value nan"),
        (" SEAS  YR   TOTAL   ANOM\n  DJF 1950  24.72  -99.9\n", "line 2: ANOM: value -99.9 outside -5..5"),
        (" SEAS  YR   TOTAL   ANOM\n  DJF 1950  24.72  -1.5\n  DJF 1950  24.72  -1.5\n", "line 3: duplicate season DJF 1950"),
        (" SEAS  YR   TOTAL   ANOM\n  DJF 50  24.72  -1.5\n", "line 2: unparsable year '50'"),
    ],
)
def test_bad_noaa_text_is_refused_with_line_and_problem(text, message):
    with pytest.raises(SourceError) as info:
        parse_oni_text(text, origin="oni.ascii.txt")
    assert message in str(info.value)


def test_oni_is_fetched_over_http(fake_xm):
    fake_xm.serve_text("/oni.ascii.txt", ONI_TEXT)
    assert fetch_oni(fake_xm.url + "/oni.ascii.txt").height == 3
    with pytest.raises(SourceError, match="HTTP 405"):
        fetch_oni(fake_xm.url + "/elsewhere.txt", backoff_seconds=0)


def test_a_price_file_without_operating_files_gives_empty_series_and_a_note(tmp_path):
    source = get_operating_source(f"csv:{tmp_path / 'prices.csv'}")
    assert source.operating_daily(date(2015, 1, 1), date(2024, 12, 31)).is_empty()
    assert source.oni_monthly().is_empty()
    assert "no hydrology_monthly.csv" in source.note("hydrology_monthly")


def test_the_operating_dir_setting_wins_and_gz_files_count(tmp_path):
    (tmp_path / "op").mkdir()
    (tmp_path / "op" / "oni_monthly.csv.gz").write_bytes(
        __import__("gzip").compress(b"month,oni,season\n2016-01,2.1,DJF\n")
    )
    paths = folder_paths(tmp_path / "op")
    assert paths["enso_oni"].name == "oni_monthly.csv.gz" and paths["operating_daily"] is None
    source = get_operating_source("sample", operating_dir=str(tmp_path / "op"))
    assert source.oni_monthly()["oni"].to_list() == [2.1]
    assert source.operating_daily(date(2015, 1, 1), date(2030, 1, 1)).schema == pl.Schema(
        {"date": pl.Date, "demand_gwh": pl.Float64, "generation_gwh": pl.Float64, "unserved_demand_mwh": pl.Float64,
         "exports_gwh": pl.Float64, "imports_gwh": pl.Float64}
    )


def test_an_operating_file_that_is_not_gzip_is_refused_naming_it(tmp_path):
    (tmp_path / "oni_monthly.csv.gz").write_bytes(b"not gzip at all")
    with pytest.raises(SourceError, match=r"oni_monthly\.csv\.gz: not a readable gzip file"):
        read_oni_csv(tmp_path / "oni_monthly.csv.gz")
