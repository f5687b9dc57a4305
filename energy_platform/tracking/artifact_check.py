"""Run a registered artifact on days with known history and say what is wrong with its answers.

The gate promotes only what it has run: the exact `models:/NAME/<v>` artifact, loaded as a
pyfunc, forecasting each backtest day from the warehouse's history. Its forecasts must be
finite, ordered (p10 <= forecast <= p90), at or above the market floor, and equal (to a
tolerance) to the forecasts the training process logged from the same model in memory: that
last rule catches an artifact that does not round-trip (state, preprocessing, dependencies).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import polars as pl

from energy_platform.serving import forecast_day

SERVED_FORECASTS_ARTIFACT = "served_forecasts.parquet"  # the in-memory model's forecasts, logged at registration
TOLERANCE = 0.01  # COP/kWh: float32 nets and parquet round trips stay far below this


@dataclass(frozen=True)
class ArtifactRun:
    forecasts: pl.DataFrame | None
    problem: str | None  # None: the artifact passed every rule

    @property
    def ok(self) -> bool:
        return self.problem is None


def _first(frame: pl.DataFrame, mask: pl.Expr) -> str:
    bad = frame.filter(mask)
    row = bad.row(0, named=True)
    return f"{bad.height} value(s), first {row['target_date']} hour {row['hour']}"


def forecast_days(model, prices: pl.DataFrame, days: list[date], horizon_days: int, history_days: int,
                  operating=None) -> ArtifactRun:
    """The artifact's forecasts of `days`, or the first error it raised, as a named problem."""
    try:
        frames = [forecast_day(model, prices, d, horizon_days, history_days, operating) for d in days]
    except Exception as exc:  # whatever the artifact raises is the reason it is refused
        return ArtifactRun(None, f"fails to forecast: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
    return ArtifactRun(pl.concat(frames), None)


def validate(forecasts: pl.DataFrame, floor: float | None) -> str | None:
    """The first serving rule the forecasts break, named; None if they keep them all."""
    cols = ["forecast", "p10", "p50", "p90"]
    finite = pl.all_horizontal([pl.col(c).is_finite().fill_null(False) for c in cols])  # pandas NaN arrives as null
    if forecasts.filter(~finite).height:
        return f"non-finite or missing forecasts: {_first(forecasts, ~finite)}"
    disordered = (pl.col("p10") > pl.col("forecast") + 1e-9) | (pl.col("forecast") > pl.col("p90") + 1e-9)
    if forecasts.filter(disordered).height:
        return f"band out of order (p10 <= forecast <= p90 broken): {_first(forecasts, disordered)}"
    if floor is not None:
        below = pl.min_horizontal([pl.col(c) for c in cols]) < floor - 1e-9
        if forecasts.filter(below).height:
            return f"forecasts below the market floor {floor:g}: {_first(forecasts, below)}"
    return None


def matches_logged(forecasts: pl.DataFrame, logged: pl.DataFrame | None, tolerance: float = TOLERANCE) -> str | None:
    """Does the artifact reproduce what the model in memory forecast at registration?"""
    if logged is None:
        return "no forecasts were logged at registration to check the artifact against"
    joined = forecasts.join(logged.select("target_date", "hour", pl.col("forecast").alias("logged")),
                            on=["target_date", "hour"], how="inner")
    if joined.height < forecasts.height:
        return f"the forecasts logged at registration cover {joined.height} of the {forecasts.height} hours run"
    diff = float(np.max(np.abs(joined["forecast"].to_numpy() - joined["logged"].to_numpy())))
    if not diff <= tolerance:
        return f"differs from the forecasts logged at registration by up to {diff:.4g} COP/kWh (tolerance {tolerance:g})"
    return None


def run_and_validate(model, prices: pl.DataFrame, days: list[date], horizon_days: int, history_days: int,
                     floor: float | None, logged: pl.DataFrame | None, operating=None) -> ArtifactRun:
    run = forecast_days(model, prices, days, horizon_days, history_days, operating)
    if not run.ok:
        return run
    return ArtifactRun(run.forecasts, validate(run.forecasts, floor) or matches_logged(run.forecasts, logged))
