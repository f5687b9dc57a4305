"""Plausibility bounds on a forecast: what a trader would reject at a glance.

Two rules, applied to the 24 x (p10, p50, p90) forecast after the nets, the blend and the band:

- the median is never below `MIN_FACTOR` (0.9) x the lowest hourly price of the `LOOKBACK_DAYS`
  (365) days ending at the cutoff (the latest day the model knows, target - H): history up to
  the cutoff only, no look-ahead. For a negative minimum (markets with negative prices) the
  bound is min - 0.1 x |min|, the same 10 % margin on the other side of zero. The band's lower
  edge p10 gets the same bound (the trader's p10 = 0, below any price since 2021): on Colombia
  2018 validation it left coverage unchanged (0.777) and cut the pinball loss 5.92 -> 5.82;
- no quantile is below the market floor (`ENERGY_PLATFORM_PRICE_FLOOR`; None for markets with
  negative prices such as PJM: then no floor clamp).

Clamping is monotone in each quantile and the order p10 <= p50 <= p90 is restored after it, so
the result stays an ordered triple. The same function serves the backtest, `predict`,
`predict_from_history` and the registered pyfunc (all go through `MLPForecaster.predict`).
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np

MIN_FACTOR = 0.9
LOOKBACK_DAYS = 365


def median_bound(lowest: float) -> float:
    """The lowest plausible p50 given the lowest price of the lookback: 0.9 x min (min - 0.1|min|)."""
    return float(lowest - (1 - MIN_FACTOR) * abs(lowest))


def lookback_days(cutoff: date) -> tuple[date, date]:
    """First and last day of the lookback that ends at `cutoff` (both included)."""
    return cutoff - timedelta(days=LOOKBACK_DAYS - 1), cutoff


def lowest_price(start: date, daily_min: np.ndarray, cutoff: date) -> float:
    """Lowest known daily minimum in the lookback ending at `cutoff`; NaN when none is known.

    `daily_min[i]` is the lowest price of day `start + i` (NaN when the day is unknown)."""
    first, last = lookback_days(cutoff)
    i0 = max((first - start).days, 0)
    i1 = min((last - start).days + 1, daily_min.size)
    if i1 <= i0:
        return float("nan")
    window = daily_min[i0:i1]
    return float(np.nanmin(window)) if np.isfinite(window).any() else float("nan")


def lowest_before_each(start: date, prices: np.ndarray, days, horizon_days: int) -> np.ndarray:
    """For each target day d, the lowest price of the lookback ending at its cutoff d - H;
    `prices` is a day x hour matrix whose first row is `start` (NaN where unknown)."""
    mins = daily_minima(prices)
    return np.array([lowest_price(start, mins, d - timedelta(days=horizon_days)) for d in days], dtype=float)


def daily_minima(prices: np.ndarray) -> np.ndarray:
    """Per-day minimum of a day x hour matrix over its known hours (NaN for an empty day)."""
    out = np.full(prices.shape[0], np.nan)
    known = np.isfinite(prices).any(axis=1)
    out[known] = np.nanmin(prices[known], axis=1)
    return out


def merge_minima(a_start: date, a: np.ndarray, b_start: date, b: np.ndarray) -> tuple[date, np.ndarray]:
    """One daily-minimum series covering both; where both know a day, the lower value."""
    start = min(a_start, b_start)
    end = max(a_start + timedelta(days=a.size), b_start + timedelta(days=b.size))
    out = np.full((end - start).days, np.nan)
    for s, v in ((a_start, a), (b_start, b)):
        off = (s - start).days
        seg = out[off : off + v.size]
        out[off : off + v.size] = np.fmin(seg, v)
    return start, out


def clamp(q: np.ndarray, lowest: float, floor: float | None) -> np.ndarray:
    """Apply both rules to quantiles `q` (... x 3: p10, p50, p90), keeping them ordered
    (p10 and p50 at or above the median bound, every quantile at or above the floor).

    `lowest` is the lookback's lowest price (NaN: no median bound); `floor` the market floor."""
    out = np.array(q, dtype=float, copy=True)
    if np.isfinite(lowest):
        out[..., :2] = np.maximum(out[..., :2], median_bound(lowest))
    if floor is not None:
        out = np.maximum(out, floor)
    out[..., 0] = np.minimum(out[..., 0], out[..., 1])
    out[..., 2] = np.maximum(out[..., 2], out[..., 1])
    return out


def smooth_profile(q: np.ndarray, weight: float, last_hour: int = 23) -> np.ndarray:
    """A light smoothing across neighbouring hours: x[h] <- (1-2w) x[h] + w x[h-1] + w x[h+1].

    Applied to each quantile of `q` (... x 24 x 3) for hours 0..`last_hour` (the others keep
    their values), with the day's ends mirrored (hour 0 and 23 lean on their one neighbour with
    weight w). The quantiles stay ordered (each is a positive average of ordered triples)."""
    if not weight:
        return q
    if not 0 < weight <= 1 / 3:
        raise ValueError(f"smoothing weight must lie in (0, 1/3], got {weight}")
    prev = np.concatenate([q[..., :1, :], q[..., :-1, :]], axis=-2)
    nxt = np.concatenate([q[..., 1:, :], q[..., -1:, :]], axis=-2)
    out = (1 - 2 * weight) * q + weight * (prev + nxt)
    if last_hour < q.shape[-2] - 1:
        out[..., last_hour + 1 :, :] = q[..., last_hour + 1 :, :]
    return out
