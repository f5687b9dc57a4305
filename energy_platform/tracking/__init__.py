"""MLflow: tracking runs, the pyfunc that serves forecasts, the registry and its promotion gate."""

MODEL_NAME = "day_ahead_price_forecaster"
EXPERIMENT_NAME = "day_ahead_price_forecaster"
