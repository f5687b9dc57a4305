"""The registered model: an MLflow pyfunc that carries its own preprocessing.

Input: recent hourly history (`ts`, `price`, plus the exogenous columns the model was trained
with). Output: the 24 hours of the target day, H days after the last complete input day, with
`ts`, `hour`, `forecast`, `p10`, `p50`, `p90`. Anything that serves it (`mlflow models serve`,
`mlflow.pyfunc.load_model`, the predictions asset) gets the same answer from the same history.
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import mlflow
import pandas as pd
import polars as pl
from mlflow.models import infer_signature

from energy_platform.forecasting.model import MLPForecaster

STATE_ARTIFACT = "forecaster_state"
# The signature (inferred from a real history frame) validates inputs; type hints would not add to it.
warnings.filterwarnings("ignore", message="Add type hints to the `predict` method")


class DayAheadForecasterModel(mlflow.pyfunc.PythonModel):
    def load_context(self, context) -> None:
        self.forecaster = MLPForecaster.load(context.artifacts[STATE_ARTIFACT])

    def predict(self, context, model_input, params=None):
        history = pl.from_pandas(pd.DataFrame(model_input))
        history = history.with_columns(pl.col("ts").cast(pl.Datetime("us")), pl.col("price").cast(pl.Float64))
        return self.forecaster.predict_from_history(history).to_pandas()


def _requirements() -> list[str]:
    from importlib.metadata import version

    return [f"{name}=={version(name)}" for name in ("mlflow", "torch", "polars", "pandas", "numpy", "holidays")]


def history_days(forecaster: MLPForecaster) -> int:
    """How many days of history the model needs before the target day."""
    return forecaster.spec.max_lag


def log_pyfunc(forecaster: MLPForecaster, example_history: pl.DataFrame, name: str = "model"):
    """Log the fitted forecaster as a pyfunc with signature and input example; returns ModelInfo."""
    example_out = forecaster.predict_from_history(example_history).to_pandas()
    example_in = example_history.to_pandas()
    signature = infer_signature(example_in, example_out)
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp) / "forecaster.pt"
        forecaster.save(state)
        return mlflow.pyfunc.log_model(
            name=name,
            python_model=DayAheadForecasterModel(),
            artifacts={STATE_ARTIFACT: str(state)},
            signature=signature,
            input_example=example_in,
            # Stated, not inferred: inference imports the model in a subprocess (seconds per
            # training). The model also needs this package: serve it from the project's venv
            # (`--env-manager local`).
            pip_requirements=_requirements(),
        )
