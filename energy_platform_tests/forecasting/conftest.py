"""Small synthetic hourly markets: fast to fit, with structure a model can learn."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest


def synthetic_prices(days: int = 240, seed: int = 0, exog: bool = False, start: datetime = datetime(2022, 1, 1)) -> pl.DataFrame:
    """Daily shape x weekly level x a slow AR(1) level, like a real market but learnable."""
    rng = np.random.default_rng(seed)
    hours = np.arange(24)
    shape = 1 + 0.3 * np.sin((hours - 6) / 24 * 2 * np.pi)
    level = np.empty(days)
    level[0] = 100.0
    for d in range(1, days):
        level[d] = 100 + 0.9 * (level[d - 1] - 100) + rng.normal(0, 6)
    weekday = np.array([(start + timedelta(days=d)).weekday() for d in range(days)])
    weekly = np.where(weekday >= 5, 0.8, 1.0)
    load = 50 + 10 * rng.standard_normal((days, 24)) if exog else None
    price = level[:, None] * weekly[:, None] * shape[None, :] + rng.normal(0, 2, (days, 24))
    if exog:
        price = price + 0.5 * load
    ts = [start + timedelta(hours=i) for i in range(days * 24)]
    cols = {"ts": ts, "price": price.ravel()}
    if exog:
        cols["load_forecast"] = load.ravel()
    frame = pl.DataFrame(cols).with_columns(pl.col("ts").cast(pl.Datetime("us")))
    return frame.with_columns(pl.col("ts").dt.date().alias("date"), pl.col("ts").dt.hour().cast(pl.Int32).alias("hour")).select(
        "ts", "date", "hour", "price", *(["load_forecast"] if exog else [])
    )


@pytest.fixture(scope="session")
def prices() -> pl.DataFrame:
    return synthetic_prices()


@pytest.fixture(scope="session")
def prices_exog() -> pl.DataFrame:
    return synthetic_prices(days=400, exog=True, seed=1)


TINY = dict(hidden=(32,), n_members=2, max_epochs=30, patience=5, warm_max_epochs=5, warm_patience=2, val_days=28, min_train_days=28, batch_size=32)
