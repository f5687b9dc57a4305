"""The served forecast's plausibility bound reads the prices up to its cutoff, not only those
the champion saw in training: a champion kept through a price collapse must not hold every median
above prices the market has already printed."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import numpy as np
import polars as pl

from energy_platform.forecasting import plausibility
from energy_platform.forecasting.features import build_feature_frame
from energy_platform.forecasting.model import MLPForecaster
from energy_platform.serving import features_for, forecast_from_features
from energy_platform.warehouse.features import read_features, write_features

H, START, N, COLLAPSE = 2, date(2025, 1, 1), 300, 260


def _prices() -> pl.DataFrame:
    """~150 for 260 days, then ~20: a wet season after a dry one."""
    rng = np.random.default_rng(0)
    level = np.where(np.arange(N) < COLLAPSE, 150.0, 20.0)
    p = (level[:, None] + 10 * np.sin(np.arange(24) / 24 * 2 * np.pi)[None, :] + rng.normal(0, 5, (N, 24))).clip(1)
    ts = [datetime(2025, 1, 1) + timedelta(hours=i) for i in range(N * 24)]
    return pl.DataFrame({"ts": ts, "price": p.ravel()}).with_columns(pl.col("ts").cast(pl.Datetime("us")))


def test_a_champion_trained_before_a_collapse_forecasts_below_its_training_minima(tmp_path):
    prices = _prices()
    days = [START + timedelta(days=i) for i in range(7, N + H)]
    warehouse = tmp_path / "warehouse.duckdb"
    write_features(warehouse, build_feature_frame(prices, days, H, country="CO"))
    model = MLPForecaster(horizon_days=H, n_members=1, max_epochs=3, hidden=(16,), val_days=42, min_train_days=28,
                          price_floor=0.0, blend_naive=False, tail_epochs=0)
    trained_to = START + timedelta(days=COLLAPSE - 1)
    model.fit(read_features(warehouse, end=trained_to), trained_to, 250)
    old_bound = plausibility.median_bound(float(prices.filter(pl.col("ts") < datetime(2025, 9, 18))["price"].min()))

    target = START + timedelta(days=N - 1 + H)  # the first day past the data
    rows, _ = features_for(model, warehouse, target, target)
    served = forecast_from_features(model, rows, target, target, H)
    recent = float(prices.tail(7 * 24)["price"].mean())
    assert old_bound > 100 and recent < 30
    assert served["p50"].min() < old_bound / 2, (served["p50"].min(), old_bound)  # was held at the training bound
    assert rows["target_date"].min() == days[0]  # the lookback (365 days to the cutoff) reaches past the store's first row
