"""The online adaptive band: widens on misses, narrows on covered days, never looks ahead."""

from datetime import date, timedelta
from types import SimpleNamespace

import numpy as np
import polars as pl
import pytest

from energy_platform.forecasting import adaptive_band, backtest
from energy_platform.forecasting.adaptive_band import AdaptiveBand, adjust_days, adjust_frame

START = date(2024, 1, 1)
ON = AdaptiveBand(step=0.2, min_days=3)


def band(days: int, p50: float = 100.0, half: float = 10.0) -> np.ndarray:
    q = np.empty((days, 24, 3))
    q[..., 0], q[..., 1], q[..., 2] = p50 - half, p50, p50 + half
    return q


def dates(n: int, start: date = START) -> list[date]:
    return [start + timedelta(days=i) for i in range(n)]


def test_widens_after_a_run_of_misses_and_narrows_after_covered_days():
    n = 30
    actual = np.full((n, 24), 100.0)  # inside the band: covered
    actual[:12] = 150.0  # the first 12 days far above it: missed
    res = adjust_days(dates(n), band(n), actual, 2, ON)
    width = res.q[..., 2] - res.q[..., 0]
    theta = res.theta[:, 0]
    assert np.array_equal(res.theta[:, 0], res.theta[:, 1])  # one theta for both sides by default
    assert np.all(np.diff(theta[: 12 + 2]) >= 0) and theta[13] > 1  # each missed day widens
    assert width[13, 0] > 2 * width[0, 0]
    assert np.all(np.diff(theta[14:]) < 0)  # each covered day narrows again
    assert theta[-1] < theta[13]
    # a day is counted only from its target + H on: the first two days have nothing known
    assert list(res.known_days[:5]) == [0, 0, 1, 2, 3] and not res.adjusted[:4].any() and res.adjusted[4:].all()


def test_per_side_tracking_widens_only_the_side_that_misses():
    n = 30
    actual = np.full((n, 24), 100.0)
    actual[:, :6] = 150.0  # a quarter of the hours above the band every day, none below
    res = adjust_days(dates(n), band(n), actual, 2, AdaptiveBand(step=0.2, min_days=3, sides=True))
    assert res.theta[-1, 1] > 0.2 and res.theta[-1, 0] < 0  # upper side out, lower side in
    assert np.all(res.q[-1, :, 2] > 110) and np.all(res.q[-1, :, 0] > 90)
    both = adjust_days(dates(n), band(n), actual, 2, AdaptiveBand(step=0.2, min_days=3))
    assert both.theta[-1, 0] == both.theta[-1, 1] > 0 and np.all(both.q[-1, :, 0] < 90)


def test_no_look_ahead_actuals_after_the_cutoff_change_nothing():
    n, h = 40, 2
    rng = np.random.default_rng(0)
    actual = 100 + 15 * rng.standard_normal((n, 24))
    base = adjust_days(dates(n), band(n), actual, h, ON)
    for t in (10, 25, 39):
        later = actual.copy()
        later[t - h + 1 :] *= 5  # every day after t's cutoff (t - H), including t itself
        res = adjust_days(dates(n), band(n), later, h, ON)
        np.testing.assert_array_equal(res.q[: t + 1], base.q[: t + 1])
        assert np.array_equal(res.theta[t], base.theta[t])
    earlier = actual.copy()
    earlier[20] *= 5  # a day known at the cutoff of day 22 does move it
    assert adjust_days(dates(n), band(n), earlier, h, ON).theta[22, 0] != base.theta[22, 0]


def test_median_unchanged_band_ordered_and_floor_respected():
    n = 30
    rng = np.random.default_rng(1)
    q = band(n, p50=20.0, half=15.0)
    q[..., 0] = 12.0  # the raw band already obeys the bound (the forecaster clamps it)
    q[..., 2] += rng.uniform(0, 30, (n, 24))  # an asymmetric band
    actual = 20 + 60 * rng.standard_normal((n, 24))  # wild: the band widens a lot
    lowest = np.full(n, 12.0)  # the lookback's lowest price: p10 >= 0.9 x 12
    for settings in (ON, AdaptiveBand(step=0.5, min_days=3, mode="relative"), AdaptiveBand(step=0.5, min_days=3, sides=True)):
        res = adjust_days(dates(n), q, actual, 2, settings, lowest=lowest, floor=0.0)
        np.testing.assert_array_equal(res.q[..., 1], q[..., 1])
        assert np.all(res.q[..., 0] <= res.q[..., 1]) and np.all(res.q[..., 1] <= res.q[..., 2])
        assert res.q[..., 0].min() >= 0.9 * 12 - 1e-9 and res.theta.max() > 0
    narrow = adjust_days(dates(n), q, np.full((n, 24), 20.0), 2, AdaptiveBand(step=1.0, min_days=3))
    assert narrow.theta[-1, 0] == pytest.approx(adaptive_band.LOWER)  # clipped: the band never crosses p50
    assert np.all(narrow.q[..., 0] <= q[..., 1]) and np.all(narrow.q[..., 2] >= q[..., 1])


def test_too_little_history_or_step_zero_keeps_the_raw_band():
    n = 20
    actual = np.full((n, 24), 500.0)
    res = adjust_days(dates(n), band(n), actual, 2, AdaptiveBand(step=0.2, min_days=30))
    np.testing.assert_array_equal(res.q, band(n))
    assert not res.adjusted.any()
    off = adjust_days(dates(n), band(n), actual, 2, AdaptiveBand())
    np.testing.assert_array_equal(off.q, band(n))


def _frame(days: list[date], q: np.ndarray, actual: np.ndarray | None = None) -> pl.DataFrame:
    cols = {
        "target_date": pl.Series(np.repeat(np.array(days, dtype="datetime64[D]"), 24)).cast(pl.Date),
        "hour": pl.Series(np.tile(np.arange(24), len(days)), dtype=pl.Int32),
        "p10": q[..., 0].ravel(), "p50": q[..., 1].ravel(), "p90": q[..., 2].ravel(),
    }
    if actual is not None:
        cols["actual"] = actual.ravel()
    return pl.DataFrame(cols)


def test_stored_history_gives_the_same_answer_as_one_batch():
    """Issuing day by day from the stored (issued) history = issuing the whole range at once:
    a killed process or a replay recomputes the same band."""
    n = 30
    rng = np.random.default_rng(2)
    actual = 100 + 20 * rng.standard_normal((n, 24))
    whole = adjust_days(dates(n), band(n), actual, 2, ON)
    stored = _frame(dates(20), whole.q[:20], actual[:20])  # what ml.predictions + prices hold
    batch = _frame(dates(10, START + timedelta(days=20)), band(10), actual[20:])  # a backfill: actuals known
    new, per_day = adjust_frame(batch, stored, 2, ON)
    np.testing.assert_allclose(new["p10"].to_numpy().reshape(10, 24), whole.q[20:, :, 0])
    np.testing.assert_allclose(new["p90"].to_numpy().reshape(10, 24), whole.q[20:, :, 2])
    assert per_day["band_adjustment_high"].to_list() == pytest.approx(list(whole.theta[20:, 1]))
    assert per_day["known_days"].to_list() == list(whole.known_days[20:])
    # the stored rows of a day re-issued in the batch are ignored, as are rows after the cutoff
    again, _ = adjust_frame(batch,
                            pl.concat([stored, _frame(dates(15, START + timedelta(days=20)), band(15), np.full((15, 24), 1e4))]),
                            2, ON)
    assert again.equals(new)


class BandSpy:
    """A constant narrow band whatever the prices: only the adaptive band moves it."""

    name = "spy"
    horizon_days = 2
    has_intervals = True
    reads_exogenous = False

    def __init__(self, step: float):
        self.config = SimpleNamespace(adaptive_band_step=step, adaptive_band_mode="scaled", price_floor=0.0)

    def min_window_days(self, n_exog: int = 0) -> int:
        return 10

    def fit(self, prices, train_end, window_days):
        pass

    def predict(self, prices, target):
        return pl.DataFrame({"hour": list(range(24)), "forecast": [100.0] * 24, "p10": [99.0] * 24,
                             "p50": [100.0] * 24, "p90": [101.0] * 24})


def test_backtest_option_uses_only_misses_known_at_each_cutoff(prices):
    start, end = date(2022, 6, 1), date(2022, 7, 20)
    kw = dict(recalibrate_every=7, window_days=60)
    off = backtest(prices, [BandSpy(0.0)], start, end, **kw)
    on = backtest(prices, [BandSpy(0.1)], start, end, **kw)
    assert off.forecasts["p10"].unique().to_list() == [99.0]  # the option off: the model's own band
    assert on.metrics[0]["coverage_80"] > off.metrics[0]["coverage_80"]
    assert on.metrics[0]["band_width"] > off.metrics[0]["band_width"]
    assert on.metrics[0]["adaptive_band"]["days_adjusted"] == (end - start).days + 1 - (2 + adaptive_band.MIN_DAYS - 1)
    assert on.forecasts["p50"].equals(off.forecasts["p50"])
    # prices from 2022-07-01 on multiplied: the bands up to 2022-07-02 (cutoff 06-30) are unchanged
    later = prices.with_columns(pl.when(pl.col("date") >= date(2022, 7, 1)).then(pl.col("price") * 3)
                                .otherwise(pl.col("price")).alias("price"))
    moved = backtest(later, [BandSpy(0.1)], start, end, **kw).forecasts
    upto = pl.col("target_date") <= date(2022, 7, 2)
    assert moved.filter(upto).select("p10", "p90").equals(on.forecasts.filter(upto).select("p10", "p90"))
    assert not moved.filter(~upto).select("p10", "p90").equals(on.forecasts.filter(~upto).select("p10", "p90"))


# -- production: the predictions asset's history is the platform's own stored predictions ------

def _store(path, days: list[date], q: np.ndarray, actual: np.ndarray | None, version: str = "1") -> None:
    from energy_platform.warehouse.predictions import write_predictions

    f = _frame(days, q).with_columns(
        (pl.col("target_date").cast(pl.Datetime("us")) + pl.duration(hours=pl.col("hour"))).alias("ts"),
        pl.col("p50").alias("forecast"), pl.lit(version).alias("model_version"), pl.lit("run").alias("mlflow_run_id"),
        (pl.col("target_date") - pl.duration(days=2)).alias("feature_cutoff"), pl.lit("dg").alias("dagster_run_id"),
    )
    write_predictions(path, f)
    if actual is not None:
        _store_prices(path, days, actual)


def _store_prices(path, days: list[date], actual: np.ndarray) -> None:
    from energy_platform.warehouse.prices import replace_prices

    f = _frame(days, np.zeros((len(days), 24, 3))).select(
        pl.col("target_date").alias("date"), "hour",
        (pl.col("target_date").cast(pl.Datetime("us")) + pl.duration(hours=pl.col("hour"))).alias("ts"),
        pl.Series("price", actual.ravel()))
    replace_prices(path, f, days[0], days[-1], source="test")


def test_predictions_use_stored_forecasts_and_realised_prices_and_fall_back_when_fresh(tmp_path):
    from energy_platform.serving import adaptive_band as serve_band
    from energy_platform.warehouse.db import connect

    path = tmp_path / "warehouse.duckdb"
    model = SimpleNamespace(config=SimpleNamespace(adaptive_band_step=0.2, adaptive_band_mode="scaled"))
    n = 30
    rng = np.random.default_rng(3)
    actual = 100 + 25 * rng.standard_normal((n, 24))
    whole = adjust_days(dates(n), band(n), actual, 2, AdaptiveBand(step=0.2), floor=0.0)
    new = _frame(dates(4, START + timedelta(days=n)), band(4)).with_columns(pl.col("p50").alias("forecast"))
    # a fresh platform: prices but no stored forecasts -> the raw band, said so
    _store(path, dates(n), band(n), actual)  # raw bands stored ...
    with connect(path) as conn:
        conn.execute("DELETE FROM ml.predictions")  # ... and gone again: nothing issued yet
    out, info = serve_band(path, model, new, 2, 0.0)
    assert info["status"] == "fallback: raw band" and out.equals(new)
    # the platform's own issued bands (the adaptive ones) + realised prices: the same band as one replay
    _store(path, dates(n), whole.q, actual)
    _store(path, dates(n), band(n) * 3, None, version="0")  # an older version's rows, created earlier: ignored
    with connect(path) as conn:
        conn.execute("UPDATE ml.predictions SET created_at = created_at - INTERVAL 1 DAY WHERE model_version = '0'")
    # the persistence baseline's band (it never adapts) is not history, even when it served last
    _store(path, dates(n), band(n) * 0.1, None, version="2")
    with connect(path) as conn:
        conn.execute("UPDATE ml.predictions SET created_at = created_at + INTERVAL 1 DAY WHERE model_version = '2'")
        conn.execute("INSERT INTO ml.model_versions (version, mlflow_run_id, registered_at, kind) "
                     "VALUES ('2', 'run', TIMESTAMP '2024-01-01', 'baseline'), ('1', 'run', TIMESTAMP '2024-01-01', 'model')")
    out, info = serve_band(path, model, new, 2, 0.0)
    expect = adjust_days(dates(n + 4), band(n + 4), np.concatenate([actual, np.full((4, 24), np.nan)]),
                         2, AdaptiveBand(step=0.2), floor=0.0)
    assert info["status"] == "adjusted" and info["days_adjusted"] == 4
    np.testing.assert_allclose(out["p90"].to_numpy().reshape(4, 24), expect.q[n:, :, 2])
    assert out["p50"].equals(new["p50"]) and out["forecast"].equals(new["forecast"])
    # prices arriving for days after a target's cutoff change nothing for it
    _store_prices(path, dates(2, START + timedelta(days=n)), np.full((2, 24), 1e4))
    again, _ = serve_band(path, model, new, 2, 0.0)
    assert again.filter(pl.col("target_date") <= START + timedelta(days=n + 1)).equals(
        out.filter(pl.col("target_date") <= START + timedelta(days=n + 1)))


def test_predictions_metadata_says_what_was_done():
    from energy_platform.defs.lifecycle import _band_metadata

    assert _band_metadata({"status": "off"}) == {"adaptive_band": "off"}
    per_day = pl.DataFrame({"target_date": [START], "band_adjustment_low": [0.0], "band_adjustment_high": [0.0],
                            "known_days": [3], "band_adjusted": [False]})
    info = {"status": "fallback: raw band", "step": 0.1, "mode": "scaled", "sides": False, "min_days": 14,
            "days_adjusted": 0, "days": 1, "per_day": per_day}
    meta = _band_metadata(info)
    assert meta["adaptive_band"].startswith("fallback: raw band: 0/1 day(s) adjusted")
    assert meta["band_adjustment (last day)"] == "none"
    adjusted = per_day.with_columns(pl.lit(0.25).alias("band_adjustment_low"), pl.lit(0.25).alias("band_adjustment_high"),
                                    pl.lit(True).alias("band_adjusted"))
    meta = _band_metadata({**info, "status": "adjusted", "days_adjusted": 1, "per_day": adjusted})
    assert meta["band_adjustment (last day)"] == "lower side +0.250, upper side +0.250 band widths"
