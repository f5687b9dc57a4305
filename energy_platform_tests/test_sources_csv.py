from datetime import date
from pathlib import Path

import polars as pl
import pytest

from energy_platform.sources import SampleSource, SourceError, get_source, read_hourly_csv

EPF = Path(__file__).resolve().parents[2] / "shared" / "data" / "epftoolbox"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "prices.csv"
    path.write_text(text)
    return path


def _hours(day: str, n: int = 24, price: str = "100.5") -> str:
    return "".join(f"{day} {h:02d}:00:00,{price}\n" for h in range(n))


def test_good_file_with_exogenous_columns(tmp_path):
    path = _write(tmp_path, "Date, Price, Load forecast\n" + "".join(
        f"2020-01-0{d} {h:02d}:00:00,{d * 10 + h},{1000 + h}\n" for d in (1, 2) for h in range(24)))
    frame = read_hourly_csv(path)
    assert frame.columns == ["ts", "date", "hour", "price", "load_forecast"]
    assert frame.height == 48
    assert frame.filter(pl.col("date") == date(2020, 1, 2), pl.col("hour") == 5)["price"].item() == 25.0


def test_unnamed_timestamp_column(tmp_path):
    path = _write(tmp_path, ",price\n" + _hours("2021-03-04"))
    assert read_hourly_csv(path).height == 24


@pytest.mark.parametrize(
    "text, message",
    [
        ("onlyone\n2020-01-01 00:00:00\n", "line 1"),
        ("ts,price\n2020-01-01 00:00:00,1\n2020/01/01 01:00,2\n", "line 3: unparsable timestamp"),
        ("ts,price\n2020-01-01 00:00:00,1\n2020-01-01 00:00:00,2\n", "duplicate hour"),
        ("ts,price\n2020-01-01 00:00:00,1\n2020-01-01 03:00:00,2\n", "2 missing hours"),
        ("ts,price\n2020-01-01 00:00:00,1\n2020-01-01 01:00:00,abc\n", "line 3: column 'price': non-numeric value 'abc'"),
    ],
)
def test_bad_files_name_file_line_and_problem(tmp_path, text, message):
    path = _write(tmp_path, text)
    with pytest.raises(SourceError) as err:
        read_hourly_csv(path)
    assert message in str(err.value)
    assert str(path) in str(err.value)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(SourceError, match="nope.csv: file not found"):
        get_source(f"csv:{tmp_path / 'nope.csv'}").first_date()


def test_epftoolbox_file_reads_with_exogenous():
    frame = read_hourly_csv(EPF / "NP.csv")
    assert frame.columns[:4] == ["ts", "date", "hour", "price"]
    assert len(frame.columns) == 6
    assert frame.height % 24 == 0


def test_sample_is_ten_years_of_real_prices_and_as_of_caps_it():
    source = SampleSource()
    assert (source.first_date(), source.last_date()) == (date(2015, 1, 1), date(2024, 12, 31))
    frame = source.hourly_prices(date(2015, 1, 1), date(2024, 12, 31))
    assert frame.height == 87_672
    assert frame["price"].null_count() == 0
    capped = SampleSource(as_of=date(2016, 3, 1))
    assert capped.last_date() == date(2016, 3, 1)
    assert capped.hourly_prices(date(2016, 2, 28), date(2016, 3, 31))["date"].max() == date(2016, 3, 1)


def test_unknown_source_spec():
    with pytest.raises(SourceError, match="unknown source 'ftp'"):
        get_source("ftp")
