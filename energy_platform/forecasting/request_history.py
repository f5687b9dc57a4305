"""How much history a request to a fitted forecaster must carry: the contract the pyfunc, the
predictions asset and the README's REST example share."""

from __future__ import annotations

from typing import TYPE_CHECKING

from energy_platform.forecasting.operating_features import OPERATING_LOOKBACK_DAYS

if TYPE_CHECKING:  # the contract needs no torch: serving reads it before any model is loaded
    from energy_platform.forecasting.model import MLPForecaster


def complete_days_needed(forecaster: MLPForecaster) -> int:
    """Consecutive complete days a request must hold (the README's minimum history)."""
    return forecaster.spec.complete_days


def history_days(forecaster: MLPForecaster) -> int:
    """How many days of history the model needs before the target day: the price lags, or, for
    a model reading operating groups, enough rows to carry every operating value it reads
    (OPERATING_LOOKBACK_DAYS before the cutoff), so a request reproduces the feature store."""
    h = forecaster.horizon_days
    lookback = [OPERATING_LOOKBACK_DAYS[g] + h for g in forecaster.spec.operating_groups]
    return max([forecaster.spec.max_lag, *lookback])
