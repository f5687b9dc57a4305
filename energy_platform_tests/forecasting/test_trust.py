"""Issue 12 item 3, a forecast a trader can trust: plausibility, smoothness, calibration, their metrics."""

from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest

from energy_platform.forecasting import MLPForecaster, metrics, plausibility

from .conftest import TINY

TRAIN_END = date(2022, 7, 31)
TARGET = date(2022, 8, 2)


# -- metrics -----------------------------------------------------------------------------------
def test_jagged_overnight_forecast_scores_above_the_target_and_a_smooth_one_near_one():
    rng = np.random.default_rng(0)
    hours = np.arange(24)
    actual = 100 + 20 * np.sin((hours - 6) / 24 * 2 * np.pi)[None, :] + rng.normal(0, 1, (30, 24))
    jagged = actual + np.where(hours % 2 == 0, 15.0, -15.0)[None, :]  # a saw-tooth overnight
    assert metrics.jaggedness_ratio(actual, jagged) > 1.2
    assert metrics.jaggedness_ratio(actual, actual + 5.0) == pytest.approx(1.0)
    # only hours 0-6 count: a saw-tooth in the evening leaves the ratio at 1
    evening = actual + np.where((hours >= 12) & (hours % 2 == 0), 30.0, 0.0)[None, :]
    assert metrics.jaggedness_ratio(actual, evening) == pytest.approx(1.0)
    assert metrics.jaggedness_ratio(actual.ravel(), jagged.ravel()) == metrics.jaggedness_ratio(actual, jagged)


def test_overnight_roughness_by_hand():
    day = np.zeros(24)
    day[:7] = [0, 1, 3, 3, 2, 2, 8]  # steps 1, 2, 0, 1, 0, 6 -> mean 10/6
    assert metrics.overnight_roughness(day) == pytest.approx(10 / 6)


def test_below_floor_share_by_hand():
    lowest = [100.0, 100.0, 100.0, np.nan]
    p50 = [95.0, 89.0, 120.0, 1.0]  # 89 < 0.9 x 100; the unknown minimum never counts
    p10 = [0.0, 80.0, -1.0, 1.0]  # -1 below the floor 0
    assert metrics.below_floor_share(p10, p50, lowest, floor=0.0) == pytest.approx(2 / 4)
    assert metrics.below_floor_share(p10, p50, lowest, floor=None) == pytest.approx(1 / 4)
    # a negative minimum: the bound is min - 10 % of |min|
    assert metrics.below_floor_share([-30.0], [-21.0], [-20.0], None) == 0.0
    assert metrics.below_floor_share([-30.0], [-23.0], [-20.0], None) == 1.0


def test_coverage_by_quarter_by_hand():
    days = [date(2022, 3, 31), date(2022, 4, 1), date(2022, 4, 2)]
    actual = np.full((3, 24), 10.0)
    lo = np.full((3, 24), 5.0)
    hi = np.full((3, 24), 15.0)
    hi[1, :12] = 8.0  # half of one of the two Q2 days missed
    assert metrics.coverage_by_quarter(days, actual, lo, hi) == {"2022Q1": 1.0, "2022Q2": 0.75}


# -- plausibility ------------------------------------------------------------------------------
def test_clamp_never_leaves_p50_below_the_bound_nor_any_quantile_below_the_floor():
    rng = np.random.default_rng(1)
    q = np.sort(rng.normal(50, 60, (500, 24, 3)), axis=-1)
    out = plausibility.clamp(q, lowest=40.0, floor=0.0)
    assert (out[..., :2] >= 36.0).all() and (out >= 0.0).all()
    assert (np.diff(out, axis=-1) >= 0).all()  # still ordered
    untouched = q[..., 0] >= 36.0
    assert np.array_equal(out[untouched], q[untouched])
    # no floor (PJM): negative bands stay, only the median bound applies
    free = plausibility.clamp(q, lowest=-20.0, floor=None)
    assert (free[..., :2] >= -22.0).all() and (free[..., 0] < 0).any()
    assert np.array_equal(plausibility.clamp(q, float("nan"), None), q)


def test_lowest_price_uses_the_365_days_up_to_the_cutoff_only():
    start = date(2021, 1, 1)
    mins = np.arange(800, dtype=float) + 50  # rising: the oldest day in the window is the lowest
    cutoff = start + timedelta(days=500)
    assert plausibility.lowest_price(start, mins, cutoff) == 50 + 500 - 364
    mins[501:] = -1000  # after the cutoff: ignored
    assert plausibility.lowest_price(start, mins, cutoff) == 50 + 500 - 364


@pytest.fixture(scope="module")
def fitted(prices) -> MLPForecaster:
    m = MLPForecaster(horizon_days=2, **{**TINY, "price_floor": 0.0})
    m.fit(prices, TRAIN_END, 200)
    return m


def test_model_forecast_respects_the_bound_without_look_ahead(fitted, prices):
    cutoff = TARGET - timedelta(days=2)
    lookback = prices.filter(pl.col("date").is_between(cutoff - timedelta(days=364), cutoff))
    bound = plausibility.median_bound(lookback["price"].min())
    # A market whose level doubled: the model, trained on the old level, would forecast below
    # anything seen in the past year at the cutoff; the clamp lifts its median.
    doubled = prices.with_columns(
        pl.when(pl.col("date") > cutoff - timedelta(days=400)).then(pl.col("price") * 3).otherwise(pl.col("price"))
    )
    high_bound = plausibility.median_bound(
        doubled.filter(pl.col("date").is_between(cutoff - timedelta(days=364), cutoff))["price"].min()
    )
    out = fitted.predict(doubled, TARGET)
    assert out["p50"].min() >= high_bound - 1e-9 and high_bound > bound
    assert (out["p10"] <= out["p50"]).all() and (out["p50"] <= out["p90"]).all() and out["p10"].min() >= 0
    # prices after the cutoff (even absurdly low ones) change nothing
    later = doubled.with_columns(pl.when(pl.col("date") > cutoff).then(0.01).otherwise(pl.col("price")).alias("price"))
    assert fitted.predict(later, TARGET).equals(out)


def test_short_history_request_gets_the_same_bound_from_the_remembered_minima(fitted, prices, tmp_path):
    history = prices.filter(pl.col("date").is_between(TRAIN_END - timedelta(days=10), TRAIN_END)).select("ts", "price")
    loaded = MLPForecaster.load(_saved(fitted, tmp_path))
    out = loaded.predict_from_history(history)
    assert out.drop("ts").equals(fitted.predict(prices, TRAIN_END + timedelta(days=2)))


def _saved(model: MLPForecaster, tmp_path) -> str:
    path = tmp_path / "m.pt"
    model.save(path)
    return str(path)


def test_backtest_json_has_the_trust_metrics(prices):
    from energy_platform.forecasting.backtest import backtest

    m = MLPForecaster(horizon_days=2, **{**TINY, "price_floor": 0.0})
    result = backtest(prices, [m], date(2022, 8, 1), date(2022, 8, 14), recalibrate_every=7, window_days=200)
    row = result.metrics[0]
    assert {"coverage_80", "coverage_80_by_quarter", "jaggedness_ratio", "below_floor_share", "seed_spread"} <= set(row)
    assert row["below_floor_share"] == 0.0 and row["seed_spread"] > 0
    assert list(row["coverage_80_by_quarter"]) == ["2022Q3"]


# -- calibration -------------------------------------------------------------------------------
def _band(days: int, width: float) -> np.ndarray:
    mid = np.zeros((days, 24))
    return np.stack([mid - width, mid, mid + width], axis=-1)


@pytest.mark.parametrize("mode", ["additive", "scaled"])
def test_conformal_offset_makes_the_validation_band_cover_80_percent(mode):
    from energy_platform.forecasting import calibration

    rng = np.random.default_rng(0)
    y = rng.normal(0, 2.0, (60, 24))  # the nets' band (+-1) is far too narrow: it covers ~38 %
    pred = _band(60, 1.0)
    assert metrics.coverage(y, pred[..., 0], pred[..., 2]) < 0.5
    q = calibration.apply(pred, calibration.offset(pred, y, mode), mode)
    assert metrics.coverage(y, q[..., 0], q[..., 2]) == pytest.approx(0.8, abs=0.01)
    assert (np.diff(q, axis=-1) >= 0).all()


def test_time_weighted_offset_follows_a_volatility_shift():
    """Errors double in the newest three weeks of the slice and stay so: the band from the
    half-life-weighted scores covers the next days close to 80 %, the unweighted one far less."""
    from energy_platform.forecasting import calibration

    rng = np.random.default_rng(3)
    sd = np.r_[np.full(70, 1.0), np.full(21, 3.0)]
    y = rng.normal(0, 1, (91, 24)) * sd[:, None]
    future = rng.normal(0, 3.0, (60, 24))
    pred, ahead = _band(91, 0.5), _band(60, 0.5)
    cover = {}
    for hl in (None, 7.0):
        q = calibration.apply(ahead, calibration.offset(pred, y, "additive", hl))
        cover[hl] = metrics.coverage(future, q[..., 0], q[..., 2])
    assert abs(cover[7.0] - 0.8) < 0.05 < abs(cover[None] - 0.8)


def test_smoothing_keeps_quantiles_ordered_and_a_flat_profile_flat():
    rng = np.random.default_rng(2)
    q = np.sort(rng.normal(0, 1, (5, 24, 3)), axis=-1)
    s = plausibility.smooth_profile(q, 0.25)
    assert (np.diff(s, axis=-1) >= 0).all()
    assert metrics.overnight_roughness(s[..., 1]) < metrics.overnight_roughness(q[..., 1])
    flat = np.ones((2, 24, 3)) * np.array([1.0, 2.0, 3.0])
    assert np.allclose(plausibility.smooth_profile(flat, 0.3), flat)
    assert plausibility.smooth_profile(q, 0.0) is q
