"""The 10-90 band's conformal calibration, measured at fit time, applied at every forecast.

Conformalised quantile regression (Romano et al., 2019): on the validation slice (the newest
days of the training window, out of sample for the early-stopped nets) the score of an hour is
how far the actual lies outside the nets' band, max(p10 - y, y - p90); the band is then widened
by the score's 80 % quantile (narrowed if negative), so it covers ~80 % out of sample.

Two refinements, both computed from data up to the fit's end only, so the offset travels in the
model's state and the backtest, `predict`, `predict_from_history` and the pyfunc all use it:

- `mode="scaled"` (normalised scores, Lei et al. 2018): the score is divided by the nets' own
  band width, and the band is widened by that factor times its width: an hour (or a regime) the
  nets find uncertain gets a proportionally wider correction, a calm one a narrower one.
- `halflife_days` (weighted conformal, Barber et al. 2023; the fit-time analogue of adaptive
  conformal inference, Gibbs & Candes 2021): the quantile weights a day's scores by
  0.5 ** (age / halflife), so the latest weeks of a market whose volatility moves count most.
"""

from __future__ import annotations

import numpy as np

LEVEL = 0.8  # the band is p10..p90
MODES = ("additive", "scaled")
_EPS = 1e-6


def weighted_quantile(values: np.ndarray, weights: np.ndarray, level: float) -> float:
    """The smallest value v with (sum of weights of values <= v) >= level x total weight."""
    v, w = np.asarray(values, dtype=float).ravel(), np.asarray(weights, dtype=float).ravel()
    order = np.argsort(v, kind="stable")
    v, cum = v[order], np.cumsum(w[order])
    i = int(np.searchsorted(cum, level * cum[-1], side="left"))
    return float(v[min(i, v.size - 1)])


def scores(pred: np.ndarray, y: np.ndarray, mode: str = "additive") -> np.ndarray:
    """Per-hour conformity scores (days x 24) of quantile forecasts `pred` (days x 24 x 3)."""
    if mode not in MODES:
        raise ValueError(f"conformal mode must be one of {MODES}, got {mode!r}")
    s = np.maximum(pred[..., 0] - y, y - pred[..., 2])
    if mode == "scaled":
        s = s / np.maximum(pred[..., 2] - pred[..., 0], _EPS)
    return s


def offset(pred: np.ndarray, y: np.ndarray, mode: str = "additive", halflife_days: float | None = None) -> float:
    """The conformal offset that makes the band cover 80 % of the validation slice's hours.

    Unweighted, the level is 0.8 x (1 + 1/n) as split conformal prescribes; with a half-life
    the newest day weighs 1 and a day `halflife_days` older weighs 0.5."""
    s = scores(pred, y, mode)
    n_days = s.shape[0]
    if halflife_days:
        age = np.arange(n_days)[::-1].astype(float)  # 0 for the newest day
        w = np.repeat(0.5 ** (age / halflife_days), s.shape[1])
        n_eff = w.sum() ** 2 / (w**2).sum()
        return weighted_quantile(s, w, min(1.0, LEVEL * (1 + 1 / n_eff)))
    return float(np.quantile(s.ravel(), min(1.0, LEVEL * (1 + 1 / s.size))))


def apply(q: np.ndarray, shift: float, mode: str = "additive") -> np.ndarray:
    """Widen (shift > 0) or narrow the band of `q` (... x 3) by the offset; the median stays.

    The band never crosses the median: a narrowed side stops at p50."""
    if mode == "scaled":
        width = np.maximum(q[..., 2] - q[..., 0], _EPS)
        lo, hi = q[..., 0] - shift * width, q[..., 2] + shift * width
    else:
        lo, hi = q[..., 0] - shift, q[..., 2] + shift
    return np.stack([np.minimum(lo, q[..., 1]), q[..., 1], np.maximum(hi, q[..., 1])], axis=-1)
