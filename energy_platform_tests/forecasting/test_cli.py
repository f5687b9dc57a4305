import json

import pytest

from energy_platform.cli import main

SLICE = ["--source", "sample", "--test-start", "2024-03-04", "--test-end", "2024-03-31", "--horizon-days", "2",
         "--recalibrate-every", "14", "--window-days", "364", "--seed", "0"]


def test_backtest_json_on_embedded_slice(capsys, tmp_path):
    out = tmp_path / "fc.csv"
    code = main(["backtest", *SLICE, "--models", "forecaster,naive_w,naive_d", "--json", "--forecasts-out", str(out)])
    assert code == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["model"] for r in rows] == ["forecaster", "naive_w", "naive_d"]
    for r in rows:
        assert {"model", "mae", "rmae", "smape", "rmse", "test_days", "fit_seconds"} <= set(r)
        assert r["test_days"] == 28
    by = {r["model"]: r for r in rows}
    assert {"pinball", "coverage_80"} <= set(by["forecaster"])
    assert by["naive_w"]["rmae"] == pytest.approx(1.0)
    assert by["forecaster"]["rmae"] < 1.0
    assert out.read_text().count("\n") == 1 + 3 * 28 * 24


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        (["--test-start", "2030-01-01", "--test-end", "2030-01-10"], "outside the data"),
        (["--horizon-days", "0"], "horizon"),
        (["--window-days", "10"], "too short"),
        (["--models", "forecaster,magic"], "unknown model"),
        (["--country", "XX"], "--country: unknown holiday country 'XX'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys, extra, match):
    code = main(["backtest", *SLICE, "--models", "forecaster", *extra])
    err = capsys.readouterr().err
    assert code == 2
    assert match in err and err.count("\n") == 1


def test_the_holiday_calendar_is_the_market_s(capsys):
    """--country sets the calendar of the holiday inputs; none leaves them at 0."""
    from datetime import date

    from energy_platform.forecasting.features import holiday_flags

    christmas_week = [date(2024, 12, 24), date(2024, 12, 25)]
    assert holiday_flags(christmas_week, "US").tolist() == [0.0, 1.0]
    assert holiday_flags(christmas_week, "none").tolist() == [0.0, 0.0]
    assert main(["backtest", *SLICE, "--models", "naive_d", "--country", "none"]) == 0
    assert "holidays: none" in capsys.readouterr().out


def test_bad_csv_is_exit_2(capsys, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("Date,Price\n2024-01-01 00:00:00,abc\n")
    assert main(["backtest", "--csv", str(bad), "--models", "naive_w"]) == 2
    assert "non-numeric" in capsys.readouterr().err


def test_backtest_reads_pjm_with_its_negative_prices(capsys, tmp_path):
    """PJM has negative hours (53 in the shipped April-May 2018 slice): the backtest takes any
    market's file, so no floor applies."""
    from energy_platform_tests.fixtures import epftoolbox_csv

    pjm = epftoolbox_csv("PJM", tmp_path)
    code = main(["backtest", "--csv", str(pjm), "--models", "naive_w,naive_d", "--test-start", "2018-05-10",
                 "--test-end", "2018-05-23", "--horizon-days", "1", "--window-days", "35", "--json"])
    assert code == 0, capsys.readouterr().err
    assert [r["test_days"] for r in json.loads(capsys.readouterr().out)] == [14, 14]


def test_a_price_floor_the_data_goes_below_is_refused(capsys, tmp_path, monkeypatch):
    """A 0 floor on PJM would clamp its 53 negative hours in every forecast: named and refused."""
    from energy_platform_tests.fixtures import epftoolbox_csv

    monkeypatch.delenv("ENERGY_PLATFORM_PRICE_FLOOR", raising=False)
    pjm = epftoolbox_csv("PJM", tmp_path)
    args = ["backtest", "--csv", str(pjm), "--models", "naive_w", "--test-start", "2018-05-10", "--test-end", "2018-05-23",
            "--horizon-days", "1", "--window-days", "35"]

    def refused() -> bool:
        err = capsys.readouterr().err
        return "prices below the price floor 0 (first 2018-" in err and "--price-floor none" in err and err.count("\n") == 1

    assert main([*args, "--price-floor", "0"]) == 2 and refused()  # asked on the command line
    monkeypatch.setenv("ENERGY_PLATFORM_PRICE_FLOOR", "0")
    assert main(args) == 2 and refused()  # or in the environment
    monkeypatch.delenv("ENERGY_PLATFORM_PRICE_FLOOR")
    assert main([*args, "--price-floor", "zero"]) == 2
    assert "--price-floor must be a number or 'none'" in capsys.readouterr().err  # it named the variable (helper H)
    for text in ("nan", "inf"):  # nan switched every floor rule off and printed NaN metrics, exit 0
        assert main([*args, "--price-floor", text]) == 2
        assert f"must be a number or 'none', got '{text}'" in capsys.readouterr().err
    assert main(args) == 0 and "price floor: none" in capsys.readouterr().out  # the data decides: negative hours, no floor
    monkeypatch.setenv("ENERGY_PLATFORM_PRICE_FLOOR", "")  # empty is unset here too (helper U: it had become 0)
    assert main(args) == 0 and "price floor: none" in capsys.readouterr().out


def test_the_forecaster_of_a_market_with_negative_prices_forecasts_them(capsys, monkeypatch, tmp_path):
    """The embedded prices minus 400 COP/kWh (a third of the hours negative), no floor given: the
    run takes none from the data, so the forecaster's quantiles go below 0 where prices do and it
    beats persistence (with the bolsa's 0 floor it lost to it, MAE 82.6 against 32.3 on a shifted NP)."""
    import polars as pl

    from energy_platform.sources import SampleSource

    monkeypatch.delenv("ENERGY_PLATFORM_PRICE_FLOOR", raising=False)
    shifted = tmp_path / "shifted.csv"
    frame = SampleSource().frame.filter(pl.col("ts").dt.year() >= 2023)
    frame.select(pl.col("ts").dt.strftime("%Y-%m-%d %H:%M:%S").alias("timestamp"), pl.col("price") - 400).write_csv(shifted)
    out = tmp_path / "fc.csv"
    code = main(["backtest", "--csv", str(shifted), "--test-start", "2024-03-04", "--test-end", "2024-03-31", "--horizon-days", "2",
                 "--recalibrate-every", "14", "--window-days", "364", "--models", "forecaster,naive_d", "--json",
                 "--forecasts-out", str(out)])
    assert code == 0, capsys.readouterr().err
    rows = {r["model"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["forecaster"]["price_floor"] is None
    assert rows["forecaster"]["mae"] < rows["naive_d"]["mae"]
    forecasts = pl.read_csv(out).filter(pl.col("model") == "forecaster")
    assert forecasts["p10"].min() < 0


def test_non_finite_csv_price_is_exit_2_naming_the_line(capsys, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("Date,Price\n" + "".join(f"2024-01-01 {h:02d}:00:00,{'inf' if h == 3 else 1}\n" for h in range(24)))
    assert main(["backtest", "--csv", str(bad), "--models", "naive_w"]) == 2
    assert "line 5: column 'price': non-finite price 'inf'" in capsys.readouterr().err


def test_backtest_reads_an_operating_data_folder_beside_a_csv(capsys, tmp_path):
    """--csv with --operating-data: the three files (here the embedded ones, gzipped) feed the groups."""
    import shutil
    from datetime import date

    import polars as pl

    from energy_platform.sources import SampleSource
    from energy_platform.sources.operating import FILES, sample_paths

    folder = tmp_path / "operating"
    folder.mkdir()
    for kind, path in sample_paths().items():
        shutil.copy(path, folder / f"{FILES[kind]}.gz")
    prices = tmp_path / "co.csv"
    SampleSource().frame.filter(pl.col("ts").dt.date() >= date(2023, 1, 1)).select(
        pl.col("ts").dt.strftime("%Y-%m-%d %H:%M:%S").alias("Date"), pl.col("price").alias("Price")
    ).write_csv(prices)
    args = ["backtest", "--csv", str(prices), "--operating-data", str(folder), "--test-start", "2024-03-04",
            "--test-end", "2024-03-17", "--recalibrate-every", "14", "--window-days", "364", "--models", "forecaster,naive_d"]
    assert main([*args, "--operating-groups", "all"]) == 0
    out = capsys.readouterr().out
    assert "operating groups: demand,hydrology,enso" in out
    assert main([*args, "--operating-groups", "all", "--json"]) == 0
    fitted = json.loads(capsys.readouterr().out)[0]
    assert fitted["operating_groups_by_fit"] == {"none": 1}  # asked for all; a 364-day window knows none on 365 days
    assert main([*args[:3], *args[5:], "--operating-groups", "enso", "--json"]) == 2  # no folder: no ENSO data
    assert "no such operating data" in capsys.readouterr().err
    assert main([*args, "--operating-groups", "rain"]) == 2
    assert "unknown operating group" in capsys.readouterr().err


def test_a_period_of_flat_nights_has_no_jaggedness_ratio_and_the_backtest_finishes(capsys):
    """Colombia's overnight price is flat for weeks (2020-01-14..15 every night): the ratio to a
    flat night is undefined, reported as null; it divided by zero and lost the whole run."""
    code = main(["backtest", "--source", "sample", "--test-start", "2020-01-14", "--test-end", "2020-01-15",
                 "--models", "naive_d,naive_w", "--window-days", "30", "--json"])
    assert code == 0, capsys.readouterr().err
    rows = json.loads(capsys.readouterr().out)
    assert [r["jaggedness_ratio"] for r in rows] == [None, None] and [r["test_days"] for r in rows] == [2, 2]


def test_odd_options_are_refused_or_tidied(capsys):
    """A seed past 32 bits crashed in torch after loading the data; an infinite band step printed
    invalid JSON and nan switched the band off silently; a model named twice ran twice."""
    base = ["backtest", "--source", "sample", "--test-start", "2024-12-20", "--test-end", "2024-12-22", "--window-days", "30"]
    for option, value, message in (("--seed", "100000000000000000000000", "--seed must be a whole number from 0 to"),
                                   ("--adaptive-band", "inf", "--adaptive-band must be a number >= 0, got inf"),
                                   ("--adaptive-band", "nan", "--adaptive-band must be a number >= 0, got nan")):
        assert main([*base, "--models", "forecaster", option, value]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
    assert main([*base, "--models", "naive_d,naive_d", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["model"], r["fits"]) for r in rows] == [("naive_d", 3)]
