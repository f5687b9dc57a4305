"""The morning's forecast: the champion's, checked before it is stored; persistence when the
champion cannot give one.

A champion that loads but cannot forecast, or forecasts nonsense, stopped every morning's
forecast until a new challenger replaced it (helper O, session 20): the desk needs a forecast,
so this horizon's persistence baseline is promoted with the reason and serves. The data's own
fault (a store behind, a gap) is no model's: it stops the run with a message naming the days.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import polars as pl

from energy_platform.errors import one_line
from energy_platform.forecasting.errors import ForecastInputError
from energy_platform.serving import Served, cannot_serve_message, serve_days
from energy_platform.tracking.artifact_check import validate
from energy_platform.tracking.registry import ModelRegistry, connection_trouble
from energy_platform.tracking.version_card import VersionCard
from energy_platform.warehouse.features import stored_features
from energy_platform.warehouse.model_versions import record_champion_change
from energy_platform.warehouse.prices import read_prices


class CannotServeError(RuntimeError):
    """Nothing sound to store for the days asked: the data cannot be forecast, or persistence too
    forecast nonsense."""


@dataclass
class DailyForecast:
    served: Served  # its frame carries `dagster_run_id`
    champion: VersionCard  # who served
    fell_back: str | None = None  # why the baseline replaced `replaced`, as recorded
    replaced: VersionCard | None = None


def forecast_or_fall_back(warehouse_path, registry: ModelRegistry, champion: VersionCard, first: date, last: date,
                          horizon_days: int, floor: float | None, run_id: str, prices_to: date | None,
                          dagster_tags: dict[str, str] | None = None) -> DailyForecast:
    """The forecasts of [first, last] to store, by `champion` or, if it cannot give sound ones,
    by the baseline it is replaced with (the change recorded in `ml.champion_history`)."""

    def attempt(card: VersionCard) -> tuple[Served | None, str | None]:
        try:
            served = serve_days(warehouse_path, registry, card, first, last, horizon_days, floor, dagster_tags=dagster_tags)
        except ForecastInputError as exc:  # the data's fault: no other model would do
            raise CannotServeError(cannot_serve_message(exc, first, last, prices_to,
                                                        stored_features(warehouse_path).latest)) from exc
        except Exception as exc:
            if card.is_baseline or connection_trouble(exc):  # a hiccup fails this run; the next retries
                raise
            return None, f"it cannot forecast ({type(exc).__name__}: {one_line(exc)})"
        served.frame = served.frame.with_columns(pl.lit(run_id).alias("dagster_run_id"))
        problem = validate(served.frame, floor)
        return served, problem and f"it forecast nonsense ({problem})"

    served, problem = attempt(champion)
    result = DailyForecast(served, champion)
    if problem and not champion.is_baseline:
        baseline, because = registry.fall_back_to_baseline(read_prices(warehouse_path), horizon_days, floor,
                                                           f"champion v{champion.version}: {problem}", dagster_tags)
        record_champion_change(warehouse_path, baseline.version, champion.version, because)
        served, problem = attempt(baseline)
        result = DailyForecast(served, baseline, because, champion)
    if problem:
        raise CannotServeError(f"champion {result.champion.describe()} forecast nonsense, nothing written: {problem}")
    return result
