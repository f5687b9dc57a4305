import copy
from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest
import torch

from energy_platform.forecasting import ForecastFitError, ForecastInputError, MLPForecaster
from energy_platform.forecasting.metrics import mae

from .conftest import TINY

TRAIN_END = date(2022, 7, 31)
TARGET = date(2022, 8, 2)


@pytest.fixture(scope="module")
def fitted(prices) -> MLPForecaster:
    m = MLPForecaster(horizon_days=2, **TINY)
    m.fit(prices, TRAIN_END, 200)
    return m


def test_forecast_has_24_ordered_quantiles_and_learns(fitted, prices):
    out = fitted.predict(prices, TARGET)
    assert out.columns == ["hour", "forecast", "p10", "p50", "p90"]
    assert out["hour"].to_list() == list(range(24))
    assert (out["p10"] <= out["p50"]).all() and (out["p50"] <= out["p90"]).all()
    assert out["forecast"].equals(out["p50"].alias("forecast"))
    # A real training loop: the fitted net beats the weekly naive on unseen days.
    days = [TARGET + timedelta(days=i) for i in range(14)]
    actual = np.concatenate([prices.filter(pl.col("date") == d).sort("hour")["price"].to_numpy() for d in days])
    weekly = np.concatenate([prices.filter(pl.col("date") == d - timedelta(days=7)).sort("hour")["price"].to_numpy() for d in days])
    fc = np.concatenate([fitted.predict(prices, d)["forecast"].to_numpy() for d in days])
    assert mae(actual, fc) < mae(actual, weekly)


def test_same_seed_same_forecast(prices, fitted):
    again = MLPForecaster(horizon_days=2, **TINY)
    again.fit(prices, TRAIN_END, 200)
    assert again.predict(prices, TARGET).equals(fitted.predict(prices, TARGET))
    other = MLPForecaster(horizon_days=2, **{**TINY, "seed": 1})
    other.fit(prices, TRAIN_END, 200)
    assert not other.predict(prices, TARGET).equals(fitted.predict(prices, TARGET))


def test_save_load_round_trip(tmp_path, prices, fitted):
    path = tmp_path / "model.pt"
    fitted.save(path)
    loaded = MLPForecaster.load(path)
    assert loaded.predict(prices, TARGET).equals(fitted.predict(prices, TARGET))
    assert MLPForecaster.from_state(fitted.to_state()).predict(prices, TARGET).equals(fitted.predict(prices, TARGET))


def test_warm_start_recalibration_is_cheaper(prices):
    m = MLPForecaster(horizon_days=2, **TINY)
    m.fit(prices, TRAIN_END, 200)
    cold = m.last_fit
    m.fit(prices, TRAIN_END + timedelta(days=1), 200)
    assert not cold["warm"] and m.last_fit["warm"]
    assert max(m.last_fit["epochs"]) <= TINY["warm_max_epochs"]


def test_predict_from_history(fitted, prices):
    history = prices.filter(pl.col("date").is_between(date(2022, 7, 1), TARGET - timedelta(days=2))).select("ts", "price")
    out = fitted.predict_from_history(history)
    assert out.columns == ["ts", "hour", "forecast", "p10", "p50", "p90"]
    assert out["ts"][0].date() == TARGET and out["ts"][23].hour == 23
    assert out.drop("ts").equals(fitted.predict(prices, TARGET))
    with pytest.raises(ForecastInputError, match="too short"):
        fitted.predict_from_history(history.tail(24 * 3))
    gappy = history.filter(pl.col("ts") != pl.datetime(2022, 7, 28, 5))
    with pytest.raises(ForecastInputError, match="gaps"):
        fitted.predict_from_history(gappy)
    nulled = history.with_columns(pl.when(pl.col("ts") == pl.datetime(2022, 7, 27, 3)).then(None).otherwise(pl.col("price")).alias("price"))
    with pytest.raises(ForecastInputError, match="gaps"):
        fitted.predict_from_history(nulled)


def test_non_finite_loss_raises_and_leaves_no_forecast(prices):
    m = MLPForecaster(horizon_days=2, **{**TINY, "lr": 1e30})
    with pytest.raises(ForecastFitError, match="non-finite"):
        m.fit(prices, TRAIN_END, 200)
    with pytest.raises(ForecastInputError, match="no fitted model"):
        m.predict(prices, TARGET)


def test_bad_input_refused_before_fitting(prices):
    m = MLPForecaster(horizon_days=2, **TINY)
    with pytest.raises(ForecastInputError, match="too short"):
        m.fit(prices, TRAIN_END, 30)
    with pytest.raises(ForecastInputError, match="outside the data"):
        m.fit(prices, date(2023, 6, 1), 200)
    gappy = prices.with_columns(pl.when(pl.col("ts") == pl.datetime(2022, 5, 1, 3)).then(None).otherwise(pl.col("price")).alias("price"))
    with pytest.raises(ForecastInputError, match="gap"):
        m.fit(gappy, TRAIN_END, 200)
    with pytest.raises(ForecastInputError, match="horizon"):
        MLPForecaster(horizon_days=0)
    assert not m._members


def test_predict_from_history_uses_next_day_exogenous_forecasts(prices_exog):
    m = MLPForecaster(horizon_days=1, **TINY)
    m.fit(prices_exog, date(2022, 7, 31), 200)
    target = date(2022, 8, 10)
    history = prices_exog.filter(pl.col("date").is_between(date(2022, 7, 20), target)).with_columns(
        pl.when(pl.col("date") == target).then(None).otherwise(pl.col("price")).alias("price")
    ).select("ts", "price", "load_forecast")
    out = m.predict_from_history(history)
    assert out["ts"][0].date() == target
    assert out.drop("ts").equals(m.predict(prices_exog, target))
    with pytest.raises(ForecastInputError, match="missing history"):
        m.predict_from_history(history.filter(pl.col("ts").dt.date() < target))


def test_price_floor_bounds_every_quantile_and_survives_save_load(tmp_path):
    from datetime import date as _date

    from energy_platform.forecasting.model import MLPForecaster
    from energy_platform.forecasting.models import make_model
    from energy_platform.sources import SampleSource

    prices = SampleSource().hourly_prices(_date(2024, 3, 1), _date(2024, 12, 31))
    model = make_model("forecaster", horizon_days=2, max_epochs=3, n_members=1, price_floor=50.0)
    model.fit(prices, _date(2024, 12, 31), 250)
    out = model.predict_from_history(prices.filter(prices["date"] > _date(2024, 12, 15)))
    assert out["p10"].min() >= 50.0 and (out["p10"] <= out["p50"]).all() and (out["p50"] <= out["p90"]).all()
    model.save(tmp_path / "m.pt")
    assert MLPForecaster.load(tmp_path / "m.pt").config.price_floor == 50.0


def test_blend_weight_is_the_validation_mae_minimiser():
    rng = np.random.default_rng(0)
    y = rng.normal(size=(30, 24))
    naive = y + rng.normal(size=(30, 24))
    net = np.stack([y - 2, y, y + 2], axis=-1)  # p10, p50, p90 of a perfect net
    assert MLPForecaster._blend_weight(net, naive, y) == 1.0
    assert MLPForecaster._blend_weight(np.stack([naive, naive, naive], -1), y, y) == 0.0
    mix = 0.3 * net[..., 1] + 0.7 * naive  # y lies where 30 % of the net and 70 % of the naive meet
    assert MLPForecaster._blend_weight(np.stack([net[..., 1]] * 3, -1), naive, mix) == pytest.approx(0.3)


def test_level_jump_shifts_weight_to_the_latest_day_and_helps(prices):
    # Prices triple inside the validation slice (the last 28 days): the net, trained on the old
    # level, trails the new one there, so the fitted blend leans on the latest known day.
    jump = TRAIN_END - timedelta(days=20)
    jumped = prices.with_columns(
        pl.when(pl.col("date") > jump).then(pl.col("price") * 3).otherwise(pl.col("price")).alias("price")
    )
    # The blend on its own (tail epochs off): its weight is measured on these early-stopped nets.
    plain = MLPForecaster(horizon_days=2, **{**TINY, "blend_naive": False, "tail_epochs": 0})
    blended = MLPForecaster(horizon_days=2, **{**TINY, "blend_naive": True, "tail_epochs": 0})
    for m in (plain, blended):
        m.fit(jumped, TRAIN_END, 200)
    assert blended._blend < 1.0
    days = [TARGET + timedelta(days=i) for i in range(14)]
    actual = np.concatenate([jumped.filter(pl.col("date") == d).sort("hour")["price"].to_numpy() for d in days])
    errors = {m: mae(actual, np.concatenate([m.predict(jumped, d)["forecast"].to_numpy() for d in days])) for m in (plain, blended)}
    assert errors[blended] < errors[plain]


def test_tail_epochs_forecast_from_nets_that_saw_the_newest_days_and_warm_start_from_the_early_stopped_ones(prices, tmp_path):
    m = MLPForecaster(horizon_days=2, **{**TINY, "tail_epochs": 2, "blend_naive": True})
    m.fit(prices, TRAIN_END, 200)
    assert len(m._bases) == len(m._members) == TINY["n_members"]
    for base, member in zip(m._bases, m._members, strict=False):
        assert any(not torch.equal(a, b) for a, b in zip(base.state_dict().values(), member.state_dict().values(), strict=False))
    bases = [copy.deepcopy(b.state_dict()) for b in m._bases]
    m.fit(prices, TRAIN_END + timedelta(days=1), 200)
    assert m.last_fit["warm"]
    again = MLPForecaster(horizon_days=2, **{**TINY, "tail_epochs": 2, "blend_naive": True})
    again.fit(prices, TRAIN_END, 200)
    assert all(torch.equal(a, b) for a, b in zip(bases[0].values(), again._bases[0].state_dict().values(), strict=False))
    out = m.predict(prices, TARGET + timedelta(days=1))
    assert (out["p10"] <= out["p50"]).all() and (out["p50"] <= out["p90"]).all()
    m.save(tmp_path / "m.pt")
    assert MLPForecaster.load(tmp_path / "m.pt").predict(prices, TARGET + timedelta(days=1)).equals(out)


def test_lear_in_the_median_travels_with_the_state_and_the_pyfunc(prices, tmp_path):
    from types import SimpleNamespace

    from energy_platform.forecasting.baselines import Lear
    from energy_platform.tracking.pyfunc_model import STATE_ARTIFACT, DayAheadForecasterModel

    plain = MLPForecaster(horizon_days=2, **TINY)
    plain.fit(prices, TRAIN_END, 200)
    m = MLPForecaster(horizon_days=2, **{**TINY, "lear_weight": 0.5})
    m.fit(prices, TRAIN_END, 200)
    assert m.last_fit["lear"] and not plain.last_fit["lear"]
    # the nets are the same (same seeds): p50 = blend of the plain model's median and LEAR's, in scaled space
    lear = Lear(horizon_days=2)
    lear.fit(prices, TRAIN_END, 200)
    sc = m._price_scaler
    expected = sc.inverse(0.5 * sc.transform(plain.predict(prices, TARGET)["p50"].to_numpy())
                          + 0.5 * sc.transform(lear.predict(prices, TARGET)["forecast"].to_numpy()))
    out = m.predict(prices, TARGET)
    np.testing.assert_allclose(out["p50"].to_numpy(), expected, rtol=1e-4)
    assert (out["p10"] <= out["p50"]).all() and (out["p50"] <= out["p90"]).all()
    m.save(tmp_path / "m.pt")
    served = DayAheadForecasterModel()
    served.load_context(SimpleNamespace(artifacts={STATE_ARTIFACT: str(tmp_path / "m.pt")}))
    history = prices.filter(pl.col("date").is_between(date(2022, 7, 1), TARGET - timedelta(days=2))).select("ts", "price")
    answer = pl.from_pandas(served.predict(None, history.to_pandas()))
    np.testing.assert_array_equal(answer["p50"].to_numpy(), out["p50"].to_numpy())
    # too few rows for LEAR's OLS noise estimate: the forecaster fits without it, never fails
    short = MLPForecaster(horizon_days=2, **{**TINY, "lear_weight": 0.5})
    short.fit(prices, TRAIN_END, 100)
    assert not short.last_fit["lear"] and short._lear is None


def test_fitted_lear_weight_is_the_validation_mae_minimiser_up_to_the_configured_one():
    m = MLPForecaster(horizon_days=2, **{**TINY, "lear_weight": 0.3, "fit_lear_weight": True})
    rng = np.random.default_rng(0)
    y = rng.normal(size=(30, 24))
    q = lambda p50: np.stack([p50 - 1, p50, p50 + 1], axis=-1)  # noqa: E731
    assert m._lear_weight(q(y), y + 5, y) == 0.0  # a perfect net: no LEAR
    assert m._lear_weight(q(y + 1), y - 1, y) == pytest.approx(0.3)  # 0.5 would be best: capped at the configured 0.3
    assert m._lear_weight(q(y + 0.2), y - 0.8, y) == pytest.approx(0.2)  # y lies 20 % of the way to LEAR
    assert m._lear_weight(q(y + 1), y + 1, y) == 0.0  # a tie: the smaller weight


def test_fitted_lear_weight_travels_with_the_state_and_a_zero_weight_leaves_lear_out(prices, tmp_path, monkeypatch):
    fitted = MLPForecaster(horizon_days=2, **{**TINY, "lear_weight": 0.3, "fit_lear_weight": True})
    fitted.fit(prices, TRAIN_END, 200)
    w = fitted.last_fit["lear_weight"]
    assert fitted.last_fit["lear"] and w in (0.1, 0.2, 0.3)
    out = fitted.predict(prices, TARGET)
    fitted.save(tmp_path / "m.pt")
    loaded = MLPForecaster.load(tmp_path / "m.pt")
    assert loaded._lear_w == w and loaded.predict(prices, TARGET).equals(out)
    # a state saved before the weight was fitted carries none: the configured weight applies
    state = fitted.to_state()
    del state["lear_weight"]
    assert MLPForecaster.from_state(state)._lear_w == 0.3
    # fitted to 0: no LEAR is fitted and the forecast is the model's without LEAR (the same nets)
    monkeypatch.setattr(MLPForecaster, "_lear_weight", lambda self, q, lear, y: 0.0)
    zero = MLPForecaster(horizon_days=2, **{**TINY, "lear_weight": 0.3, "fit_lear_weight": True})
    zero.fit(prices, TRAIN_END, 200)
    plain = MLPForecaster(horizon_days=2, **TINY)
    plain.fit(prices, TRAIN_END, 200)
    assert zero._lear is None and not zero.last_fit["lear"] and zero.last_fit["lear_weight"] == 0.0
    assert zero.predict(prices, TARGET).equals(plain.predict(prices, TARGET))


def test_night_blend_moves_only_the_night_towards_the_latest_day_and_helps_where_nights_persist(prices, tmp_path):
    # Nights (hours 0-5) follow a slow random walk of their own: the latest known night is nearly
    # right and the nets, which see the day's shape, are not. The night weight leans on it; the
    # day's hours are the plain model's, and the weight travels with the saved state.
    rng = np.random.default_rng(1)
    n_days = prices["date"].n_unique()
    walk = pl.DataFrame({"date": prices["date"].unique().sort(), "night": 80 + np.cumsum(rng.normal(0, 4, n_days))})
    nights = prices.join(walk, on="date").with_columns(
        pl.when(pl.col("hour") < 6).then(pl.col("night") + rng.normal(0, 0.5, prices.height)).otherwise(pl.col("price")).alias("price")
    ).drop("night")
    plain = MLPForecaster(horizon_days=2, **TINY)
    night = MLPForecaster(horizon_days=2, **{**TINY, "night_blend_hours": 6})
    for m in (plain, night):
        m.fit(nights, TRAIN_END, 200)
    assert plain.last_fit["night_blend_weight"] == 1.0 and night.last_fit["night_blend_weight"] < 1.0
    days = [TARGET + timedelta(days=i) for i in range(14)]
    p50 = {m: np.stack([m.predict(nights, d)["p50"].to_numpy() for d in days]) for m in (plain, night)}
    np.testing.assert_allclose(p50[night][:, 6:], p50[plain][:, 6:], rtol=1e-6)  # the day is untouched
    actual = np.stack([nights.filter(pl.col("date") == d).sort("hour")["price"].to_numpy() for d in days])
    assert mae(actual[:, :6], p50[night][:, :6]) < mae(actual[:, :6], p50[plain][:, :6])
    night.save(tmp_path / "m.pt")
    loaded = MLPForecaster.load(tmp_path / "m.pt")
    np.testing.assert_array_equal(loaded.predict(nights, TARGET)["p50"].to_numpy(), p50[night][0])
