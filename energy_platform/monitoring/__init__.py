"""Monitoring as plain Python (no Dagster): data/prediction drift with Evidently, realised
accuracy of the served forecasts, and the writes to the `monitoring.*` tables.

Evidently and the forecasting metrics (PyTorch) are imported lazily inside the functions that
need them, so importing this package stays cheap.
"""

from energy_platform.monitoring.accuracy import (
    AccuracyNotReady,
    NoPredictionsError,
    RollingAccuracy,
    accuracy_for_day,
    accuracy_for_days,
    classify_rolling,
    latest_scored_day,
    rolling_rmae,
)
from energy_platform.monitoring.drift import (
    DriftResult,
    date_range,
    evaluate_drift,
    feature_drift_inputs,
    prediction_drift_inputs,
    price_drift_inputs,
)
from energy_platform.monitoring.retention import prune_reports, report_path
from energy_platform.monitoring.store import record_alert, record_drift, write_accuracy
from energy_platform.monitoring.windows import drift_check_inputs

__all__ = [
    "AccuracyNotReady",
    "DriftResult",
    "NoPredictionsError",
    "RollingAccuracy",
    "accuracy_for_day",
    "accuracy_for_days",
    "classify_rolling",
    "date_range",
    "drift_check_inputs",
    "evaluate_drift",
    "feature_drift_inputs",
    "latest_scored_day",
    "prediction_drift_inputs",
    "price_drift_inputs",
    "prune_reports",
    "record_alert",
    "record_drift",
    "report_path",
    "rolling_rmae",
    "write_accuracy",
]
