"""What the served model refuses, and how it says so.

`mlflow models serve` turns any exception from `predict` into a 400 with a generic "unexpected
error while evaluating the model" and buries the reason in a stack trace. An `MlflowException`
with INVALID_PARAMETER_VALUE is passed through instead: the caller reads what is wrong with the
history (columns, order, duplicates, too short, gaps) in the response's `message`.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import polars as pl
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

from energy_platform.forecasting.errors import ForecastInputError
from energy_platform.forecasting.operating_features import ALL_OPERATING_INPUTS

HOW = ("send hourly rows sorted by ts, one per hour, with columns ts (YYYY-MM-DDTHH:MM:SS, local "
       "time) and price (COP/kWh), plus, for a model reading a file's exogenous series, those columns (its "
       "`exogenous` tag), with the rows of the day after the last price carrying them and a null price, and, "
       f"for a model reading operating data, its columns among {', '.join(ALL_OPERATING_INPUTS)} "
       "(each row carrying its day's / month's value, null where unknown)")


def refuse(problem: str) -> MlflowException:
    return MlflowException(f"history rejected: {problem}; {HOW}", error_code=INVALID_PARAMETER_VALUE)


def read_history(model_input) -> pl.DataFrame:
    """The request as a frame with `ts` (datetime) and `price` (float), in strict time order."""
    frame = pd.DataFrame(model_input)
    missing = [c for c in ("ts", "price") if c not in frame.columns]
    if missing:
        raise refuse(f"missing column(s) {missing} (got {list(frame.columns)})")
    if frame.empty:
        raise refuse("no rows")
    try:
        frame["ts"] = pd.to_datetime(frame["ts"], format="ISO8601")
    except (ValueError, TypeError) as exc:
        raise refuse(f"column ts is not a timestamp ({exc})") from exc
    for column in [c for c in frame.columns if c != "ts"]:  # price, exogenous and operating values
        try:
            frame[column] = pd.to_numeric(frame[column]).astype(float)
        except (ValueError, TypeError) as exc:
            raise refuse(f"column {column} is not numeric ({exc})") from exc
        infinite = frame[column].abs().eq(float("inf")).to_numpy()
        if infinite.any():  # a null is unknown; an infinity is a broken value (it forecast NaN with a 200)
            row = int(infinite.argmax())
            raise refuse(f"row {row + 1} ({frame['ts'].iloc[row]}): column {column} is {frame[column].iloc[row]}, not a finite number")
    if frame["ts"].isna().any():
        raise refuse(f"row {int(frame['ts'].isna().to_numpy().argmax()) + 1} has no ts")
    ts = frame["ts"].reset_index(drop=True)
    steps = ts.diff().iloc[1:]
    if (steps <= pd.Timedelta(0)).any():
        i = int((steps <= pd.Timedelta(0)).to_numpy().argmax()) + 1  # 0-based row of the offender
        if ts[i] == ts[i - 1]:
            raise refuse(f"ts {ts[i]} appears twice (rows {i} and {i + 1})")
        raise refuse(f"not in time order: row {i + 1} ({ts[i]}) comes after row {i} ({ts[i - 1]})")
    history = pl.from_pandas(frame)
    return history.with_columns(pl.col("ts").cast(pl.Datetime("us")), pl.col("price").cast(pl.Float64))


def answer(forecast: Callable[[pl.DataFrame], pl.DataFrame], model_input, needed_days: int | None) -> pd.DataFrame:
    """Run `forecast` on the checked history; a refusal of the model itself (too short, gaps)
    becomes the same clear 400, with the minimum history when the model states it."""
    history = read_history(model_input)
    try:
        return forecast(history).to_pandas()
    except ForecastInputError as exc:
        minimum = (f" (this model needs {needed_days} consecutive complete days of 24 prices; "
                   "it forecasts the day H days after the last of them)") if needed_days else ""
        raise refuse(f"{exc}{minimum}") from exc
