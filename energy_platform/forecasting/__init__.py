"""Day-ahead price forecasting as plain Python: features, models, metrics, backtest (no Dagster)."""

from energy_platform.forecasting.backtest import BacktestResult, backtest, backtest_recent
from energy_platform.forecasting.base import Forecaster
from energy_platform.forecasting.baselines import Lear, NaiveLag, naive_d, naive_w
from energy_platform.forecasting.errors import ForecastFitError, ForecastInputError
from energy_platform.forecasting.features import FeatureSpec, RobustAsinhScaler, build_feature_frame
from energy_platform.forecasting.model import MLPConfig, MLPForecaster
from energy_platform.forecasting.models import MODELS, make_model

__all__ = [
    "MODELS",
    "BacktestResult",
    "FeatureSpec",
    "ForecastFitError",
    "ForecastInputError",
    "Forecaster",
    "Lear",
    "MLPConfig",
    "MLPForecaster",
    "NaiveLag",
    "RobustAsinhScaler",
    "backtest",
    "backtest_recent",
    "build_feature_frame",
    "make_model",
    "naive_d",
    "naive_w",
]
