from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest

from energy_platform.forecasting import ForecastInputError, RobustAsinhScaler, build_feature_frame
from energy_platform.forecasting.features import TARGET_COLUMNS


def _perturb_after(frame: pl.DataFrame, cutoff: date, cols: list[str], exog_shift: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(42)
    out = frame
    for c in cols:
        limit = cutoff + timedelta(days=exog_shift if c != "price" else 0)
        noise = pl.Series(rng.normal(500, 100, frame.height))
        out = out.with_columns(pl.when(pl.col("date") > limit).then(pl.col(c) + noise).otherwise(pl.col(c)).alias(c))
    return out


@pytest.mark.parametrize("horizon", [1, 2])
def test_point_in_time_changes_after_cutoff_do_not_move_features(prices_exog, horizon):
    target = date(2022, 6, 15)
    cutoff = target - timedelta(days=horizon)
    before = build_feature_frame(prices_exog, [target], horizon)
    # Prices after the cutoff and exogenous forecasts published after it (for days > cutoff+1).
    changed = _perturb_after(prices_exog, cutoff, ["price", "load_forecast"], exog_shift=1)
    after = build_feature_frame(changed, [target], horizon)
    feats = [c for c in before.columns if not c.startswith("target_")]
    assert before.select(feats).equals(after.select(feats))
    assert before["cutoff_date"][0] == cutoff
    # The targets themselves did change, so the perturbation really hit day d.
    assert not before.select(TARGET_COLUMNS).equals(after.select(TARGET_COLUMNS))
    # ...and truncating the data at the cutoff (+ one day of exogenous forecasts) gives the same row.
    cut = prices_exog.filter(pl.col("date") <= cutoff + timedelta(days=1)).with_columns(
        pl.when(pl.col("date") > cutoff).then(None).otherwise(pl.col("price")).alias("price")
    )
    assert build_feature_frame(cut, [target], horizon).select(feats).equals(before.select(feats))


def test_feature_columns_and_lags(prices):
    frame = build_feature_frame(prices, [date(2022, 3, 1), date(2022, 3, 2)], horizon_days=2)
    assert frame.columns[:2] == ["target_date", "cutoff_date"]
    for name in ("price_lag2_h00", "price_lag3_h23", "price_lag4_h12", "price_lag7_h05", "dow_tue", "holiday", "target_h23"):
        assert name in frame.columns
    assert "price_lag1_h00" not in frame.columns
    day = prices.filter(pl.col("date") == date(2022, 2, 27)).sort("hour")["price"].to_list()
    assert frame.filter(pl.col("target_date") == date(2022, 3, 1)).select([f"price_lag2_h{h:02d}" for h in range(24)]).row(0) == tuple(day)
    assert frame["dow_tue"].to_list() == [1.0, 0.0]


def test_colombian_holidays_and_configurable_country(prices):
    # 2022-01-10: Reyes Magos moved to Monday in Colombia; not a holiday in Spain. 2022-01-06 is in Spain.
    days = [date(2022, 1, 10), date(2022, 1, 6)]
    co = build_feature_frame(prices, days, 1)["holiday"].to_list()
    es = build_feature_frame(prices, days, 1, country="ES")["holiday"].to_list()
    assert co == [1.0, 0.0] and es == [0.0, 1.0]


def test_unknown_days_are_null_and_targets_unknown_for_future(prices):
    last = prices["date"].max()
    frame = build_feature_frame(prices, [last + timedelta(days=1), date(2022, 1, 2)], 1)
    assert frame["target_h00"][0] is None and frame["price_lag1_h00"][0] is not None
    assert frame["price_lag7_h00"][1] is None  # before the data starts


def test_bad_inputs(prices):
    with pytest.raises(ForecastInputError, match="horizon"):
        build_feature_frame(prices, [date(2022, 3, 1)], 0)
    with pytest.raises(ForecastInputError, match="numeric"):
        build_feature_frame(prices.with_columns(pl.col("price").cast(pl.String)), [date(2022, 3, 1)], 1)


def test_scaler_is_fitted_on_training_data_only():
    train = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    sc = RobustAsinhScaler(per_column=True).fit(train)
    assert sc.median.tolist() == [3.0, 4.0]
    assert sc.mad.tolist() == pytest.approx([2 * 1.4826, 2 * 1.4826])
    z = sc.transform(np.array([[103.0, 4.0]]))
    assert z[0, 0] == pytest.approx(np.arcsinh(100 / (2 * 1.4826)))
    assert sc.inverse(z) == pytest.approx(np.array([[103.0, 4.0]]))
