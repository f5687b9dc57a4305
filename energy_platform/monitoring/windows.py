"""Which days a drift check compares: the latest `days` against a reference just before them.

The reference is the champion's training period where there is one (what the model learned
from), clipped so it never overlaps the current window and capped at `reference_days`.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

from energy_platform.monitoring import drift
from energy_platform.warehouse.db import connect


def reference_window(
    current_end: date,
    days: int,
    reference_days: int,
    train_start: date | None = None,
    train_end: date | None = None,
) -> tuple[date, date]:
    current_start = current_end - timedelta(days=days - 1)
    end = current_start - timedelta(days=1)
    if train_end is not None:
        end = min(end, train_end)
    start = end - timedelta(days=reference_days - 1)
    if train_start is not None and train_start <= end:
        start = max(start, train_start)
    return start, end


# Representative hours of each lagged day (night trough, midday, evening peak): the 24 hourly
# columns of a day move together, so testing all of them repeats one signal (and costs seconds).
DRIFT_HOURS = ("h03", "h10", "h19")

_LATEST = {
    "features": "SELECT max(target_date) FROM features.daily",
    "predictions": "SELECT max(target_date) FROM ml.predictions",
    "price": "SELECT max(date) FROM raw.prices_hourly",
}


def drift_check_inputs(
    kind: str,
    warehouse_path: str | Path,
    days: int,
    reference_days: int,
    train_range: tuple[date | None, date | None] = (None, None),
):
    """(reference, current, columns, reference_range) for the drift check of `kind`.

    The current window is the latest `days` days stored; features are compared with the
    champion's training period (`train_range`), predictions and prices with the year before.
    """
    with connect(warehouse_path, read_only=True) as conn:
        end = conn.execute(_LATEST[kind]).fetchall()[0][0]
    if end is None:
        raise ValueError(f"{warehouse_path}: nothing stored yet for the {kind} drift check")
    ref = reference_window(end, days, reference_days, *(train_range if kind == "features" else (None, None)))
    loader = {
        "features": drift.feature_drift_inputs,
        "predictions": drift.prediction_drift_inputs,
        "price": drift.price_drift_inputs,
    }[kind]
    reference, current, columns = loader(warehouse_path, *ref, end, days)
    if kind == "features":
        columns = [c for c in columns if c.endswith(DRIFT_HOURS) or not c.startswith(("price_lag", "dow_", "holiday"))]
    return reference, current, columns, ref
