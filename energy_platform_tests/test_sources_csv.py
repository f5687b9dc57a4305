import gzip
from datetime import date, datetime
from pathlib import Path

import polars as pl
import pytest

from energy_platform.sources import (
    CsvFormatError,
    SampleSource,
    SourceError,
    get_source,
    read_hourly_csv,
)
from energy_platform_tests.fixtures import epftoolbox_csv


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


@pytest.mark.parametrize("spelling", ["{d}T{h}:00:00", "{d} {h}:00", "{d}T{h}:00"])
def test_iso_spellings_of_the_hour_read_as_the_epftoolbox_one(tmp_path, spelling):
    """Exports from other tools write ISO 8601's 'T' or drop the seconds: the same naive hours."""
    def file(form: str) -> str:
        return "Date,Price\n" + "".join(f"{form.format(d='2020-01-01', h=f'{h:02d}')},{h}.5\n" for h in range(24))

    frame = read_hourly_csv(_write(tmp_path, file(spelling)))
    assert frame.equals(read_hourly_csv(_write(tmp_path, file("{d} {h}:00:00"))))
    assert frame["ts"][5] == datetime(2020, 1, 1, 5) and frame["price"][5] == 5.5


def test_part_days_at_the_ends_are_left_out_a_gap_inside_is_not(tmp_path, caplog):
    """An export cut at the current hour ends mid-day; stored, that part-day failed the blocking
    24-hours check and so every ingestion run (found with `make demo` on such a file)."""
    rows = [f"2020-01-01 {h:02d}:00:00,1" for h in range(5, 24)] + [f"2020-01-02 {h:02d}:00:00,2" for h in range(24)]
    rows += [f"2020-01-03 {h:02d}:00:00,3" for h in range(24)] + [f"2020-01-04 {h:02d}:00:00,4" for h in range(13)]
    with caplog.at_level("WARNING"):
        frame = read_hourly_csv(_write(tmp_path, "Date,Price\n" + "\n".join(rows) + "\n"))
    assert frame["date"].unique().sort().to_list() == [date(2020, 1, 2), date(2020, 1, 3)] and frame.height == 48
    assert "part-days at its ends are left out" in caplog.text
    with pytest.raises(CsvFormatError, match="no whole day of 24 hours"):
        read_hourly_csv(_write(tmp_path, "Date,Price\n" + "\n".join(rows[:30]) + "\n"))  # 01-01 05:00..01-02 10:00
    with pytest.raises(CsvFormatError, match="1 missing hours"):
        read_hourly_csv(_write(tmp_path, "Date,Price\n" + "\n".join(rows[:25] + rows[26:]) + "\n"))


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
        # quarter-hourly data is named as such, not counted as "0 missing hours"
        ("ts,price\n2020-01-01 00:00:00,1\n2020-01-01 00:15:00,2\n", "line 3: timestamp '2020-01-01 00:15:00' is not on the hour"),
        # a time zone is refused, not silently dropped or converted
        ("ts,price\n2020-01-01T00:00:00+01:00,1\n", "line 2: unparsable timestamp '2020-01-01T00:00:00+01:00'"),
    ],
)
def test_bad_files_name_file_line_and_problem(tmp_path, text, message):
    path = _write(tmp_path, text)
    with pytest.raises(SourceError) as err:
        read_hourly_csv(path)
    assert message in str(err.value)
    assert str(path) in str(err.value)


def _day_with(row: int, cell: str, header: str = "Date,Price") -> str:
    """A header and one full day of 24 hours whose row `row` (0-based) has price `cell`."""
    rows = [f"2020-01-01 {h:02d}:00:00,{cell if h == row else '100.5'}" for h in range(24)]
    return header + "\n" + "\n".join(rows) + "\n"


@pytest.mark.parametrize(
    "text, message",
    [
        (_day_with(3, "NaN"), "line 5: column 'price': non-finite price 'NaN'"),
        (_day_with(3, "nan"), "line 5: column 'price': non-finite price 'nan'"),
        (_day_with(0, "inf"), "line 2: column 'price': non-finite price 'inf'"),
        (_day_with(23, "-inf"), "line 25: column 'price': non-finite price '-inf'"),
        (_day_with(7, "-12.5"), "line 9: column 'price': price -12.5 is below the floor 0 "
                               "(a market with negative prices: ENERGY_PLATFORM_PRICE_FLOOR=none"),
        (_day_with(7, "1e12"), "line 9: column 'price': implausible price 1000000000000.0"),
        (_day_with(4, ""), "line 6: column 'price': empty price"),
        (_day_with(4, " "), "line 6: column 'price': empty price"),
        # a header whose names contradict the positional format
        (_day_with(-1, "", header="Price,Date"), "line 1: first column is named 'Price'"),
        (_day_with(-1, "", header="Date,Load"), "line 1: second column is named 'Load'"),
        (_day_with(-1, "", header="foo,bar"), "line 1: first column is named 'foo'"),
        ("Date,Load,Price\n" + "".join(f"2020-01-01 {h:02d}:00:00,9000,100\n" for h in range(24)),
         "line 1: second column is named 'Load'"),
        ("Date,Price,Load,Price 2\n" + "".join(f"2020-01-01 {h:02d}:00:00,100,9000,1\n" for h in range(24)),
         "line 1: column 'Price 2' names a price"),
        # a header-less file: its first data row must not become the header
        (_hours("2020-01-01"), "line 1: the first line is data ('2020-01-01 00:00:00', '100.5'), not a header"),
        ("Date,Price\n", "line 2: no data rows after the header"),
        ("Date,Price,Load\n", "line 2: no data rows after the header"),
        ("", "the file is empty"),
        ("\n\n", "the file is empty"),
        ("Date,Price,Load\n" + "".join(f"2020-01-01 {h:02d}:00:00,100,{'inf' if h == 2 else 9000}\n" for h in range(24)),
         "line 4: column 'load': non-finite value 'inf'"),
        ("Date,Price,Load\n" + "".join(f"2020-01-01 {h:02d}:00:00,100,{'NaN' if h == 9 else 9000}\n" for h in range(24)),
         "line 11: column 'load': non-finite value 'NaN'"),
    ],
    ids=[
        "nan", "nan-lower", "inf", "minus-inf", "negative", "absurd-1e12", "empty-price", "blank-price",
        "swapped-header", "price-not-second", "meaningless-header", "load-before-price", "second-price-column",
        "headerless", "header-only", "header-only-exogenous", "empty-file", "blank-lines-only",
        "exogenous-inf", "exogenous-nan",
    ],
)
def test_bad_values_and_headers_are_refused_with_file_line_and_problem(tmp_path, text, message):
    path = _write(tmp_path, text)
    with pytest.raises(CsvFormatError) as err:
        read_hourly_csv(path)
    assert message in str(err.value)
    assert str(err.value).startswith(f"{path}: ")
    assert isinstance(err.value, SourceError)


def test_the_same_bad_file_fails_the_gz_reader_and_the_source(tmp_path):
    path = tmp_path / "prices.csv.gz"
    path.write_bytes(gzip.compress(_day_with(5, "inf").encode()))
    with pytest.raises(SourceError, match="line 7: column 'price': non-finite price 'inf'"):
        get_source(f"csv:{path}").last_date()
    (tmp_path / "broken.csv.gz").write_bytes(b"not gzip")
    with pytest.raises(CsvFormatError, match=r"broken\.csv\.gz: not a readable gzip file"):
        read_hourly_csv(tmp_path / "broken.csv.gz")


def test_a_file_the_parser_cannot_read_is_told_in_one_short_line_naming_the_line(tmp_path):
    """polars quoted the whole rest of the file after an unclosed quote (628 KB on NP), and told of
    an option the user cannot set for a row with an extra field."""
    rows = ["Date,Price"] + [f"2020-01-{1 + h // 24:02d} {h % 24:02d}:00:00,{40 + h}" for h in range(24 * 40)]
    quote = [*rows]
    quote[100] = quote[100].replace(",", ',"')
    ragged = [*rows]
    ragged[150] += ",999"
    for lines, where in ((quote, 'line 101: a quoted field opened on this line runs over'), (ragged, "line 151: 3 fields, the header has 2")):
        path = tmp_path / "bad.csv"
        path.write_text("\n".join(lines) + "\n")
        with pytest.raises(CsvFormatError) as err:
            read_hourly_csv(path)
        message = str(err.value)
        assert message.startswith(f"{path}: not a readable CSV: {where}") and "\n" not in message and len(message) < 300, message


def test_an_exogenous_column_empty_on_every_row_is_left_out_with_a_note(tmp_path):
    """A trailing comma on every line made an unnamed, empty series that stopped every model."""
    path = _write(tmp_path, "".join(line + ",\n" for line in _day_with(5, "7.5").splitlines()))
    notes: list[str] = []
    frame = read_hourly_csv(path, notes=notes)
    assert frame.columns == ["ts", "date", "hour", "price"] and frame["price"][5] == 7.5
    assert notes == [f"{path}: exogenous column(s) 'exog_2' empty on every row: left out"]


def test_blank_lines_at_the_end_are_ignored_and_one_inside_is_named(tmp_path):
    """An editor's newline at the end was refused as 'unparsable timestamp None'."""
    day = _hours("2020-01-01")
    for tail in ("\n", "\r\n\r\n", ",\n", "   \n"):
        assert read_hourly_csv(_write(tmp_path, "Date,Price\n" + day + tail)).height == 24, repr(tail)
    inside = "Date,Price\n" + day.replace("05:00:00,100.5\n", "05:00:00,100.5\n,\n")
    with pytest.raises(CsvFormatError, match="line 8: an empty line"):
        read_hourly_csv(_write(tmp_path, inside))


def test_an_exogenous_column_named_like_a_derived_one_is_refused(tmp_path):
    rows = "".join(f"2020-01-01 {h:02d}:00:00,100.5,{h + 1},900\n" for h in range(24))
    path = _write(tmp_path, "Date,Price,Hour,Load\n" + rows)
    with pytest.raises(CsvFormatError, match="line 1: exogenous column 'hour' has the name of a column derived"):
        read_hourly_csv(path)


def test_floor_and_ceiling_are_parameters(tmp_path):
    path = _write(tmp_path, _day_with(7, "-12.5"))
    assert read_hourly_csv(path, floor=None)["price"].min() == -12.5  # a market with negative prices
    assert read_hourly_csv(path, floor=-100.0).height == 24
    with pytest.raises(CsvFormatError, match="below the floor 0"):
        get_source(f"csv:{path}").first_date()
    assert get_source(f"csv:{path}", price_floor=None).first_date() == date(2020, 1, 1)
    zero = _write(tmp_path, _day_with(7, "0"))
    assert read_hourly_csv(zero).height == 24  # the floor itself is a legal price
    with pytest.raises(CsvFormatError, match=r"implausible price 5000\.0 .*>= 1000"):
        read_hourly_csv(_write(tmp_path, _day_with(2, "5000")), ceiling=1000)
    with pytest.raises(CsvFormatError, match=r"implausible price -2000000\.0"):
        read_hourly_csv(_write(tmp_path, _day_with(2, "-2e6")), floor=None)


def test_a_header_with_other_accepted_names_reads(tmp_path):
    for header in ("timestamp,precio", "ts,price", "fecha,Precio Bolsa", ",Zonal COMED price, load"):
        assert read_hourly_csv(_write(tmp_path, _day_with(-1, "", header=header))).height == 24


def test_missing_file_is_named(tmp_path):
    with pytest.raises(SourceError, match=r"nope\.csv: file not found"):
        get_source(f"csv:{tmp_path / 'nope.csv'}").first_date()


def test_epftoolbox_file_reads_with_exogenous(tmp_path):
    frame = read_hourly_csv(epftoolbox_csv("NP", tmp_path))
    assert frame.columns[:4] == ["ts", "date", "hour", "price"]
    assert len(frame.columns) == 6
    assert frame.height == 28 * 24


def test_pjm_has_negative_prices_so_its_floor_is_none(tmp_path):
    pjm = epftoolbox_csv("PJM", tmp_path)  # April-May 2018: 53 of the file's 93 negative hours
    frame = read_hourly_csv(pjm, floor=None)
    assert frame.height == 61 * 24 and frame.filter(pl.col("price") < 0).height == 53
    with pytest.raises(CsvFormatError, match=r"PJM.csv: line \d+: column 'price': price -[\d.]+ is below the floor 0 .*\(52 more"):
        read_hourly_csv(pjm)


def test_the_platform_trains_with_its_market_s_floor():
    """A platform on a market with negative prices (ENERGY_PLATFORM_PRICE_FLOOR=none) trains
    models without the bolsa's 0 floor unless the training config sets one."""
    from energy_platform.defs.lifecycle import TrainingConfig, model_overrides

    assert model_overrides(TrainingConfig(), None)["price_floor"] is None
    assert model_overrides(TrainingConfig(), 0.0)["price_floor"] == 0.0
    assert model_overrides(TrainingConfig(price_floor=-50.0), None)["price_floor"] == -50.0
    assert model_overrides(TrainingConfig(max_epochs=3), 0.0) == {"max_epochs": 3, "price_floor": 0.0, "country": "CO"}


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
