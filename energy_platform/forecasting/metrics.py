"""Accuracy as the field reports it (Lago et al., 2021): MAE, RMSE, sMAPE, rMAE; pinball, coverage.

rMAE divides by the MAE of the weekly naive p[d-7, h] over the same test hours, so a number is
comparable across markets and periods; below 1 beats "same hour last week".
"""

from __future__ import annotations

import numpy as np

from energy_platform.forecasting.base import QUANTILES
from energy_platform.forecasting.plausibility import MIN_FACTOR


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


OVERNIGHT_HOURS = (0, 6)  # first and last hour (both included) of the jaggedness measure


def _daily(x: object) -> np.ndarray:
    a = np.asarray(x, dtype=float)
    if a.ndim == 1:
        if a.size == 0 or a.size % 24:
            raise ValueError(f"hourly series must hold whole days of 24 hours, got {a.size} values")
        a = a.reshape(-1, 24)
    if a.ndim != 2 or a.shape[1] != 24 or a.shape[0] == 0:
        raise ValueError(f"want a day x 24 matrix (or a flat multiple of 24), got shape {a.shape}")
    return a


def overnight_roughness(prices: object, hours: tuple[int, int] = OVERNIGHT_HOURS) -> float:
    """Mean absolute hour-to-hour change within hours h0..h1 of each day (6 steps for 0-6)."""
    p = _daily(prices)[:, hours[0] : hours[1] + 1]
    return float(np.mean(np.abs(np.diff(p, axis=1))))


def jaggedness_ratio(actual: object, p50: object, hours: tuple[int, int] = OVERNIGHT_HOURS) -> float | None:
    """How much rougher the forecast's overnight profile is than the real one.

    roughness(x) = mean over days and over the steps h -> h+1 with h0 <= h < h1 (hours 0-6: six
    steps a day) of |x[d, h+1] - x[d, h]|; the ratio is roughness(p50) / roughness(actual) over
    the same days. 1 is as smooth as real prices; the target is <= 1.2. Inputs are day x 24
    matrices or flat hourly series of whole days, in the same order. None when every real night
    is flat (Colombia's overnight price often is, for weeks at a time): no ratio to that.
    """
    a, f = _daily(actual), _daily(p50)
    if a.shape != f.shape:
        raise ValueError(f"actual and p50 differ in shape: {a.shape} vs {f.shape}")
    real = overnight_roughness(a, hours)
    return overnight_roughness(f, hours) / real if real > 0 else None


def below_floor_share(p10: object, p50: object, lowest: object, floor: float | None, tol: float = 1e-9) -> float:
    """Share of forecast hours that break a plausibility rule (see forecasting/plausibility.py).

    An hour counts when its p50 is below the median bound 0.9 x `lowest` (min - 0.1|min| for a
    negative minimum), `lowest` being the lowest price of the 365 days ending at that forecast's
    cutoff (target - H), or when its p10 is below the market `floor` (None: no floor rule).
    `lowest` is per hour (repeat a day's value over its 24 hours); NaN means unknown and never
    counts. A tolerance `tol` absorbs float round-off of a clamped value. 0 is the target.
    """
    lo, mid, low = _arrays(p10, p50, lowest)
    bound = low - (1 - MIN_FACTOR) * np.abs(low)
    bad = np.isfinite(bound) & (mid < bound - tol)
    if floor is not None:
        bad |= lo < floor - tol
    return float(np.mean(bad))


def coverage_by_quarter(days: object, actual: object, lower: object, upper: object) -> dict[str, float]:
    """10-90 coverage per calendar quarter, keyed "YYYYQn", in time order.

    `days` holds one date per day (row) of the day x 24 matrices `actual`, `lower`, `upper`."""
    d = list(days)
    a, lo, hi = _daily(actual), _daily(lower), _daily(upper)
    if not (len(d) == a.shape[0] == lo.shape[0] == hi.shape[0]):
        raise ValueError("days and the day x 24 matrices must have the same number of days")
    inside = (a >= lo) & (a <= hi)
    keys = np.array([f"{x.year}Q{(x.month - 1) // 3 + 1}" for x in d])
    return {k: float(inside[keys == k].mean()) for k in dict.fromkeys(keys.tolist())}
