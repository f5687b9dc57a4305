"""Model names -> constructors: the one place the CLI, backtest and Dagster layer look models up."""

from __future__ import annotations

from collections.abc import Callable

from energy_platform.forecasting.base import Forecaster
from energy_platform.forecasting.baselines import Lear, naive_d, naive_w
from energy_platform.forecasting.errors import ForecastInputError
from energy_platform.forecasting.model import MLPForecaster

# Chosen on validation periods before each test start (bench/results/forecaster.md,
# bench/results/validation.jsonl): the MLPConfig defaults on NP and PJM 2016-H1 and Colombia
# 2015-16, 2019-20 and 2022; for H >= 2 a shorter validation slice (Colombia 2022), so the
# latest weeks of a fast-moving hydro market weigh in the early stopping and the blend sooner.
# Also for H >= 2 (Colombia 2018 and 2022, bench/results/trust.md): the overnight profile
# smoothed (hours 0-6, w = 0.3; without it the 2018 overnight was 1.42x as jagged as real
# prices) and the band's conformal offset weighting the validation slice's newest days (half-life
# 7 days: every 2022 quarter within 80 +- 5 %, not +- 12 %). On NP/PJM (H=1) both cost: smoothing
# every hour rMAE +0.002-0.012 with profiles already smooth (0.95), the half-life over-covers.
# Also for H >= 2 (session 5, bench/results/ablation.md; Colombia, H=2, weekly refits, 1092-day
# window, MAE / naive_d MAE and 10-90 coverage on 2018 | 2022):
# - LEAR in the median with weight 0.3, the band calibrated with a LEAR fitted without the validation
#   slice: 0.935 -> 0.923 | 0.904 -> 0.893, coverage 0.777 -> 0.780 | 0.808 -> 0.810 (offline, weight
#   0.5 gained less: 0.928 | 0.894). Two LEAR fits per refit: a fit takes about twice as long.
# - Warm refits of up to 30 epochs, patience 5 (the 10 / 3 of the H=1 default were tuned on daily
#   refits; these are weekly): alone 0.934 | 0.899; with LEAR 0.920 | 0.888, coverage 0.779 | 0.806.
# 8 members instead of 4 did not help (0.935 | 0.905).
# Also for H >= 2 (session 6, bench/results/trust.md, offline on the saved 2018 | 2022 forecasts): the
# online adaptive band (adaptive_band.py), one theta, step 0.1, scaled by the band's width: every quarter
# 0.781-0.820 | 0.787-0.820 (without 0.752-0.800 | 0.745-0.855), overall 0.794 | 0.804, at a cost of
# band width +13 % | +9 % and pinball +0.2 % | +1.5 %; the median (MAE) untouched.
# Session 7 (bench/results/ablation.md): hours 0-5 get their own weight towards naive_d, fitted on the
# validation slice after LEAR (the nets lost to persistence there: MAE ratio 1.09 | 1.04 on hours 0-5,
# 0.83-0.95 on the others): MAE / naive_d MAE 0.920 -> 0.907 | 0.888 -> 0.878, and on El Nino 2015-16
# (270-day window, a third check) 1.061 -> 1.048; coverage unchanged.
# Session 12 (bench/results/ablation.md, "Session 12"): LEAR's weight fitted on the validation slice
# in 0, 0.1, 0.2, 0.3 instead of always 0.3 (LEAR missed a flat level by far: May-June 2021, MAE of
# the forecaster 4.37 against persistence's 1.99, 3.07 with the weight fitted, to 0 there):
# MAE / naive_d MAE 0.894 -> 0.894 (2018), 0.869 -> 0.865 (2022), 1.048 -> 1.007 (El Nino 2015-16), seed 0.
# Session 13 (H=1, daily refits; bench/results/forecaster.md "Session 13"): warm refits of up to 5
# epochs, patience 2, instead of 10 / 3: NP / PJM 2016-H1 validation rMAE, seeds 0 / 1, 0.4039 /
# 0.4078 -> 0.4017 / 0.4129 and 0.5419 / 0.5372 -> 0.5363 / 0.5371 (equal within the seeds'
# spread), with ~1.3x less fitting per daily refit.
# Session 20 (H=1): the members trained as one StackedMLP, 1.2x less time per daily refit over the NP
# validation walk forward (0.727 -> 0.603 s, one thread, the same hour; their forecasts differ from
# one by one only by dropout's random masks): NP / PJM validation rMAE, seeds
# 0 / 1, 0.4082 / 0.3992 and 0.5406 / 0.5400 (means 0.4037 / 0.5403 against 0.4073 / 0.5367: within
# the 0.005 set before the runs). H >= 2 keeps one by one: Colombia's weekly refits are not the time
# that matters, and its validation MAE was worse with other random streams (session 12).
HORIZON_PRESETS: dict[int, dict[str, object]] = {
    1: {"warm_max_epochs": 5, "warm_patience": 2, "stacked_members": True},
    2: {"val_days": 42, "smooth": 0.3, "smooth_last_hour": 6, "conformal_halflife": 7.0, "lear_weight": 0.3,
        "fit_lear_weight": True, "warm_max_epochs": 30, "warm_patience": 5, "adaptive_band_step": 0.1,
        "night_blend_hours": 6},
}


# Operating groups of the default model when operating data exists (Colombia), chosen on the
# validation years 2018 and 2022 (bench/results/ablation.md); a group not listed did not help
# there. Markets without operating data get none. ENSO (session 7): MAE / naive_d MAE lower with it
# for each of 3 seeds on both years (-0.006..-0.008 on 2018, -0.009..-0.010 on 2022; seed 0 with
# the night blend -0.007 / -0.005); demand hurts on 2018. Hydrology on top of ENSO (session 8, with
# the night blend): MAE lower for each of 3 seeds on both years (2018 -0.6 / -0.9 / -0.9 %, 2022
# -0.4 / -1.0 / -0.9 %); default since session 9, when a group known on under a year of the
# window's days (MLPConfig.operating_min_days) is left out of that fit.
DEFAULT_OPERATING_GROUPS: tuple[str, ...] = ("hydrology", "enso")


def default_operating_groups(operating) -> tuple[str, ...]:
    """DEFAULT_OPERATING_GROUPS that `operating` (an OperatingData or None) has data for."""
    if operating is None:
        return ()
    available = operating.available_groups()
    return tuple(g for g in DEFAULT_OPERATING_GROUPS if g in available)


def forecaster_preset(horizon_days: int) -> dict[str, object]:
    return dict(HORIZON_PRESETS[min(max(horizon_days, 1), 2)])


def market_floor() -> float | None:
    """The market's lowest possible price, `ENERGY_PLATFORM_PRICE_FLOOR` (default 0, XM's bolsa;
    `none` for markets with negative prices such as PJM): no quantile is forecast below it."""
    import os

    from energy_platform.settings import _price_floor

    return _price_floor(os.environ.get("ENERGY_PLATFORM_PRICE_FLOOR", "0"))


def _forecaster(horizon_days: int = 1, seed: int = 0, country: str = "CO", **overrides: object) -> MLPForecaster:
    settings = {**forecaster_preset(horizon_days), "price_floor": market_floor(), **overrides}
    return MLPForecaster(horizon_days=horizon_days, seed=seed, country=country, **settings)


def _lear(horizon_days: int = 1, seed: int = 0, country: str = "CO", **_: object) -> Lear:
    return Lear(horizon_days=horizon_days, country=country)


MODELS: dict[str, Callable[..., Forecaster]] = {
    "forecaster": _forecaster,
    "lear": _lear,
    "naive_d": naive_d,
    "naive_w": naive_w,
}


def make_model(name: str, horizon_days: int = 1, seed: int = 0, country: str = "CO", **overrides: object) -> Forecaster:
    """Build a model by registry name; `overrides` go to the forecaster's `MLPConfig`."""
    if name not in MODELS:
        raise ForecastInputError(f"unknown model {name!r}: choose from {', '.join(MODELS)}")
    return MODELS[name](horizon_days=horizon_days, seed=seed, country=country, **overrides)
