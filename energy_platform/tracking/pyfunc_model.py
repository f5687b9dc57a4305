"""The registered model: an MLflow pyfunc that carries its own preprocessing.

Input: recent hourly history (`ts`, `price`, plus the exogenous columns the model was trained
with, plus, for a model that reads operating groups, their columns: `demand_gwh`,
`generation_gwh` carrying each row's day's value, `reservoir_useful_volume_pct`,
`inflows_pct_of_historical_mean` and `oni` carrying each row's month's value, null where
unknown). Output: the 24 hours of the target day, H days after the last complete input day, with
`ts`, `hour`, `forecast`, `p10`, `p50`, `p90`. Anything that serves it (`mlflow models serve`,
`mlflow.pyfunc.load_model`, the predictions asset) gets the same answer from the same history.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import mlflow
import polars as pl
from mlflow.models import infer_signature

from energy_platform.forecasting.baselines import persistence_from_history
from energy_platform.forecasting.model import MLPForecaster
from energy_platform.forecasting.request_history import complete_days_needed
from energy_platform.tracking.serving_input import answer

STATE_ARTIFACT = "forecaster_state"


class DayAheadForecasterModel(mlflow.pyfunc.PythonModel):
    # The signature (inferred from a real history frame) and `answer` validate inputs; MLflow's
    # type-hint validation would add nothing and warns on every import without it.
    _skip_type_hint_validation = True

    def load_context(self, context) -> None:
        self.forecaster = MLPForecaster.load(context.artifacts[STATE_ARTIFACT])

    def predict(self, context, model_input, params=None):
        return answer(self.forecaster.predict_from_history, model_input, complete_days_needed(self.forecaster))


class PersistenceModel(mlflow.pyfunc.PythonModel):
    _skip_type_hint_validation = True  # as above

    """The persistence baseline (naive_d) with the forecaster's input and output contract.

    Registered as a real version so that a champion always exists: it needs no training, and
    its horizon and market floor travel in the model's config.
    """

    def load_context(self, context) -> None:
        config = context.model_config or {}
        self.horizon_days = int(config["horizon_days"])
        self.floor = config.get("floor")

    def predict(self, context, model_input, params=None):
        return answer(lambda history: persistence_from_history(history, self.horizon_days, self.floor),
                      model_input, 1)


def _requirements() -> list[str]:
    from importlib.metadata import version

    return [f"{name}=={version(name)}" for name in ("mlflow", "torch", "polars", "pandas", "numpy", "holidays")]


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


BASELINE_HISTORY_DAYS = 30  # the band's error quantiles come from this many days before the target


def save_persistence_pyfunc(path: str, example_history: pl.DataFrame, horizon_days: int, floor: float | None) -> None:
    """Save the persistence baseline as a pyfunc directory (no artifacts: the rule is code).

    Saved, then logged to its own run by the client, because the gate that registers it may run
    inside a training's active MLflow run."""
    example_out = persistence_from_history(example_history, horizon_days, floor).to_pandas()
    example_in = example_history.to_pandas()
    mlflow.pyfunc.save_model(
        path,
        python_model=PersistenceModel(),
        model_config={"horizon_days": horizon_days, "floor": floor},
        signature=infer_signature(example_in, example_out),
        input_example=example_in,
        pip_requirements=_requirements(),
    )


class InMemoryPyfunc:
    """A PythonModel called the way a loaded pyfunc is (`predict(frame)`), before it is logged:
    the forecasts logged at registration, which the gate later reproduces from the artifact."""

    def __init__(self, python_model: mlflow.pyfunc.PythonModel):
        self.python_model = python_model

    def predict(self, model_input):
        return self.python_model.predict(None, model_input)


def in_memory_forecaster(forecaster: MLPForecaster) -> InMemoryPyfunc:
    model = DayAheadForecasterModel()
    model.forecaster = forecaster
    return InMemoryPyfunc(model)


def in_memory_persistence(horizon_days: int, floor: float | None) -> InMemoryPyfunc:
    model = PersistenceModel()
    model.horizon_days, model.floor = horizon_days, floor
    return InMemoryPyfunc(model)
