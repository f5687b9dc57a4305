"""Accuracy as the field reports it (Lago et al., 2021): MAE, RMSE, sMAPE, rMAE; pinball, coverage.

rMAE divides by the MAE of the weekly naive p[d-7, h] over the same test hours, so a number is
comparable across markets and periods; below 1 beats "same hour last week".
"""

from __future__ import annotations

import numpy as np

from energy_platform.forecasting.base import QUANTILES


def _arrays(*xs: object) -> list[np.ndarray]:
    out = [np.asarray(x, dtype=float).ravel() for x in xs]
    if len({a.size for a in out}) != 1 or out[0].size == 0:
        raise ValueError(f"metric inputs must be non-empty and of equal length, got {[a.size for a in out]}")
    return out


def mae(actual: object, forecast: object) -> float:
    a, f = _arrays(actual, forecast)
    return float(np.mean(np.abs(a - f)))


def rmse(actual: object, forecast: object) -> float:
    a, f = _arrays(actual, forecast)
    return float(np.sqrt(np.mean((a - f) ** 2)))


def smape(actual: object, forecast: object) -> float:
    """mean(2|p - f| / (|p| + |f|)), as a fraction (x100 for percent); 0/0 counts as 0."""
    a, f = _arrays(actual, forecast)
    den = np.abs(a) + np.abs(f)
    ratio = np.divide(2 * np.abs(a - f), den, out=np.zeros_like(den), where=den > 0)
    return float(np.mean(ratio))


def rmae(actual: object, forecast: object, naive_weekly: object) -> float:
    return mae(actual, forecast) / mae(actual, naive_weekly)


def pinball(actual: object, p10: object, p50: object, p90: object) -> float:
    """Mean pinball loss over the quantiles 0.1, 0.5, 0.9 (same units as the price)."""
    a, *qs = _arrays(actual, p10, p50, p90)
    losses = [np.mean(np.maximum(q * (a - f), (q - 1) * (a - f))) for q, f in zip(QUANTILES, qs, strict=False)]
    return float(np.mean(losses))


def coverage(actual: object, lower: object, upper: object) -> float:
    """Share of hours inside [lower, upper]; the 10-90 band should cover 0.8."""
    a, lo, hi = _arrays(actual, lower, upper)
    return float(np.mean((a >= lo) & (a <= hi)))
