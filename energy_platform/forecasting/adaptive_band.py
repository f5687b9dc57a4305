"""Online adaptive conformal band: widen or narrow the 10-90 band from its realised misses.

The band is calibrated once per refit on the validation slice (`calibration.py`). When prices
move faster than the weekly refit (El Nino, late 2023), the band misses for weeks. Here the
band is corrected online by quantile tracking, the "P" part of conformal PID control
(Angelopoulos, Candes, Tibshirani 2023; adaptive conformal inference, Gibbs & Candes 2021):
after each forecast day whose actuals are known,

    theta <- clip(theta + step x (miss_rate_of_the_day - 0.2), LOWER, UPPER)

where the miss rate is the share of the day's hours outside the band that was *issued* that
day (this module's own output), so a run of misses widens the band within days and a run of
covered days narrows it again. theta is in units of the band's width: the issued band is
`calibration.apply(q, theta, "scaled")` (each side moves by theta x (p90 - p10); the median is
unchanged and a narrowed side stops at it), then `plausibility.clamp` (no p10 below the median
bound of the lookback, nor the market floor). Variants (`AdaptiveBand`): "relative" (each side x
(1 + theta) its own distance to p50) and `sides` (one theta per side, each tracking its 10 %).
Chosen on validation (bench/results/trust.md, session 6): one theta, scaled, step 0.1.

No look-ahead, no hidden state: theta for a target day t issued at cutoff c = t - H is the fold
above over the stored history of target days <= c (the days whose actuals exist at the cutoff),
in date order, starting from 0; recomputed from that history every time, so a killed process or
a replay gives the same answer. With fewer than `min_days` known days the band is left as is.
The same function serves the walk-forward backtest (`backtest.py`, an option of the forecaster's
config) and the `predictions` asset (history: the platform's own stored predictions joined with
the realised prices).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import polars as pl

from energy_platform.forecasting import calibration, plausibility

TARGET_MISS = 1 - calibration.LEVEL  # 0.2: the 10-90 band should miss 20 % of hours
LOWER, UPPER = -0.45, 3.0  # theta's range (band widths): a band at most narrowed to ~10 % of itself
MIN_DAYS = 14  # known days before the band is adjusted at all (a fresh platform serves the raw band)
MODES = ("scaled", "relative")


@dataclass(frozen=True)
class AdaptiveBand:
    """The update's settings: `step` per day (0 = off); `mode` "scaled" (each side +- theta x the
    band's width, `calibration.apply`) or "relative" (each side x (1 + theta) its own distance to
    p50); `sides`: one theta per side, each tracking its own 10 % (the hours below p10, above p90),
    instead of one for the band's 20 %."""

    step: float = 0.0
    mode: str = "scaled"
    sides: bool = False
    min_days: int = MIN_DAYS
    lower: float = LOWER
    upper: float = UPPER

    def __post_init__(self) -> None:
        if self.step < 0:
            raise ValueError(f"adaptive band step must be >= 0, got {self.step}")
        if self.mode not in MODES:
            raise ValueError(f"adaptive band mode must be one of {MODES}, got {self.mode!r}")
        if not self.lower <= 0 <= self.upper:
            raise ValueError(f"adaptive band range must contain 0, got {self.lower}..{self.upper}")

    @property
    def enabled(self) -> bool:
        return self.step > 0


def settings_of(model: object) -> AdaptiveBand:
    """The model's adaptive band settings (its config's `adaptive_band_step` / `_mode`); off for
    models without them (the baselines)."""
    cfg = getattr(model, "config", None)
    step = float(getattr(cfg, "adaptive_band_step", 0.0) or 0.0)
    return AdaptiveBand(step=step, mode=getattr(cfg, "adaptive_band_mode", "scaled") or "scaled",
                        sides=bool(getattr(cfg, "adaptive_band_sides", False)))


def widen(q: np.ndarray, theta: tuple[float, float], mode: str = "scaled") -> np.ndarray:
    """The band of `q` (... x 3) moved by theta (lower side, upper side); the median stays, the
    band never crosses it."""
    lo_t, hi_t = theta
    if mode == "scaled" and lo_t == hi_t:
        return calibration.apply(q, lo_t, "scaled")
    if mode == "scaled":
        width = np.maximum(q[..., 2] - q[..., 0], calibration._EPS)
        lo, hi = q[..., 0] - lo_t * width, q[..., 2] + hi_t * width
    else:
        lo = q[..., 1] - (1 + lo_t) * (q[..., 1] - q[..., 0])
        hi = q[..., 1] + (1 + hi_t) * (q[..., 2] - q[..., 1])
    return np.stack([np.minimum(lo, q[..., 1]), q[..., 1], np.maximum(hi, q[..., 1])], axis=-1)


def day_miss(p10: np.ndarray, p90: np.ndarray, actual: np.ndarray) -> tuple[float, float]:
    """Shares of the day's known hours below p10 and above p90; NaN when no hour is known."""
    known = np.isfinite(actual) & np.isfinite(p10) & np.isfinite(p90)
    if not known.any():
        return float("nan"), float("nan")
    y = actual[known]
    return float(np.mean(y < p10[known])), float(np.mean(y > p90[known]))


def fold(misses: Sequence[tuple[float, float]], settings: AdaptiveBand,
         theta: tuple[float, float] = (0.0, 0.0)) -> tuple[float, float]:
    """theta (lower, upper side) after the days' miss rates (below, above), in date order (NaN
    days skipped). One theta for both sides unless `settings.sides`."""
    lo, hi = theta
    clip = lambda x: min(max(x, settings.lower), settings.upper)  # noqa: E731
    for below, above in misses:
        if not np.isfinite(below):
            continue
        if settings.sides:
            lo = clip(lo + settings.step * (below - TARGET_MISS / 2))
            hi = clip(hi + settings.step * (above - TARGET_MISS / 2))
        else:
            lo = hi = clip(lo + settings.step * (below + above - TARGET_MISS))
    return lo, hi


@dataclass
class Adjusted:
    """The issued quantiles (days x 24 x 3) and, per day, theta (days x 2: lower, upper side), the
    known days behind it and whether the band was adjusted (False: too little history, the raw band)."""

    q: np.ndarray
    theta: np.ndarray
    known_days: np.ndarray
    adjusted: np.ndarray


def adjust_days(
    days: Sequence[date],
    q: np.ndarray,
    actual: np.ndarray,
    horizon_days: int,
    settings: AdaptiveBand,
    *,
    history_days: Sequence[date] = (),
    history_p10: np.ndarray | None = None,
    history_p90: np.ndarray | None = None,
    history_actual: np.ndarray | None = None,
    lowest: np.ndarray | None = None,
    floor: float | None = None,
) -> Adjusted:
    """Issue the bands of target days `days` (quantiles `q`, days x 24 x 3) in date order.

    The misses of a day count for target day t only once that day is <= t - H (its actuals are
    known at t's cutoff): the stored history (issued p10/p90 and actuals, days x 24) and the
    days of this batch issued before t. `actual` of the batch may hold NaN (not known yet);
    the actual of a day after a target's cutoff is never read for that target. `lowest` (per
    day, NaN = none) and `floor` are the plausibility rules' bounds for p10."""
    q = np.asarray(q, dtype=float)
    n = len(days)
    out = q.copy()
    theta_out, known_out, adj_out = np.zeros((n, 2)), np.zeros(n, dtype=int), np.zeros(n, dtype=bool)
    if n == 0:
        return Adjusted(out, theta_out, known_out, adj_out)
    batch = {d: i for i, d in enumerate(days)}
    if len(batch) != n:
        raise ValueError("adaptive band: a target day appears twice in the batch")
    # The stored history's misses, one per day, for days not re-issued in this batch.
    hist: dict[date, tuple[float, float]] = {}
    for j, d in enumerate(history_days):
        if d not in batch:
            hist[d] = day_miss(np.asarray(history_p10[j], float), np.asarray(history_p90[j], float),
                               np.asarray(history_actual[j], float))
    # Everything known at a cutoff is a prefix of all days (history and batch) in date order,
    # and a batch day enters it only after it was issued (d <= t - H < t): one pass.
    merged = sorted([(d, "h") for d in hist] + [(d, "b") for d in days])
    pos, theta, known = 0, (0.0, 0.0), 0
    for i in np.argsort(np.array(days, dtype="datetime64[D]"), kind="stable"):
        t = days[i]
        cutoff = t - timedelta(days=horizon_days)
        while pos < len(merged) and merged[pos][0] <= cutoff:
            d, kind = merged[pos]
            if kind == "h":
                m = hist[d]
            else:
                k = batch[d]
                m = day_miss(out[k, :, 0], out[k, :, 2], actual[k])
            if np.isfinite(m[0]):
                theta = fold([m], settings, theta)
                known += 1
            pos += 1
        theta_out[i], known_out[i] = theta, known
        if settings.enabled and known >= settings.min_days:
            band = widen(q[i], theta, settings.mode)
            low = float(lowest[i]) if lowest is not None else float("nan")
            band = plausibility.clamp(band, low, floor)
            band[:, 1] = q[i, :, 1]  # the median is never touched
            band[:, 0] = np.minimum(band[:, 0], band[:, 1])
            band[:, 2] = np.maximum(band[:, 2], band[:, 1])
            out[i] = band
            adj_out[i] = True
    return Adjusted(out, theta_out, known_out, adj_out)


def adjust_frame(
    forecasts: pl.DataFrame,
    history: pl.DataFrame | None,
    horizon_days: int,
    settings: AdaptiveBand,
    *,
    floor: float | None = None,
    lowest: dict[date, float] | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """`adjust_days` on frames: `forecasts` (target_date, hour, p10, p50, p90, optional actual),
    `history` (target_date, hour, p10, p90, actual: the issued bands with their realised prices).

    Returns the forecasts with p10/p90 replaced and one row per target day: target_date,
    band_adjustment_low / _high (theta of each side), known_days, band_adjusted."""
    days, q, actual = _day_arrays(forecasts, ("p10", "p50", "p90"))
    hdays: list[date] = []
    h10 = h90 = hy = None
    if history is not None and not history.is_empty():
        hdays, hq, hy = _day_arrays(history, ("p10", "p90"))
        h10, h90 = hq[..., 0], hq[..., 1]
    low = np.array([lowest.get(d, np.nan) for d in days]) if lowest else None
    res = adjust_days(days, q, actual, horizon_days, settings, history_days=hdays, history_p10=h10,
                      history_p90=h90, history_actual=hy, lowest=low, floor=floor)
    per_day = pl.DataFrame({"target_date": pl.Series(days, dtype=pl.Date), "band_adjustment_low": res.theta[:, 0],
                            "band_adjustment_high": res.theta[:, 1],
                            "known_days": res.known_days, "band_adjusted": res.adjusted})
    new = pl.DataFrame({"target_date": pl.Series(np.repeat(np.array(days, dtype="datetime64[D]"), 24)).cast(pl.Date),
                        "hour": pl.Series(np.tile(np.arange(24), len(days)), dtype=pl.Int32),
                        "_p10": res.q[..., 0].ravel(), "_p90": res.q[..., 2].ravel()})
    out = (forecasts.join(new, on=["target_date", "hour"], how="left", coalesce=True)
           .with_columns(pl.col("_p10").alias("p10"), pl.col("_p90").alias("p90")).drop("_p10", "_p90"))
    return out.select(forecasts.columns), per_day


def _day_arrays(frame: pl.DataFrame, cols: tuple[str, ...]) -> tuple[list[date], np.ndarray, np.ndarray]:
    """Days (sorted) and days x 24 x len(cols) values plus days x 24 actuals (NaN where absent)."""
    f = frame.with_columns(pl.col("hour").cast(pl.Int32))
    days = sorted(f["target_date"].unique().to_list())
    idx = {d: i for i, d in enumerate(days)}
    vals = np.full((len(days), 24, len(cols)), np.nan)
    actual = np.full((len(days), 24), np.nan)
    di = np.array([idx[d] for d in f["target_date"].to_list()], dtype=int)
    hi = f["hour"].to_numpy()
    for k, c in enumerate(cols):
        vals[di, hi, k] = f[c].cast(pl.Float64).fill_null(np.nan).to_numpy()
    if "actual" in f.columns:
        actual[di, hi] = f["actual"].cast(pl.Float64).fill_null(np.nan).to_numpy()
    return days, vals, actual
