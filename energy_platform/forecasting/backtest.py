"""Walk-forward evaluation: refit every K days on the window before each test day, forecast 24 h.

Every check on the data runs before the first fit, so a bad range fails in milliseconds rather
than after an hour of training. Each model keeps its own horizon: the fit for test day d ends at
d - H, the latest day the model would really know.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import polars as pl

from energy_platform.forecasting import adaptive_band, metrics, plausibility
from energy_platform.forecasting.base import Forecaster
from energy_platform.forecasting.errors import ForecastInputError
from energy_platform.forecasting.features import HOURS, DailyPanel, daily_panel
from energy_platform.forecasting.operating_features import format_groups
from energy_platform.scoring import score

Progress = Callable[[int, int, date], None]

METRIC_KEYS = ("model", "mae", "rmae", "smape", "rmse", "test_days", "fit_seconds")


@dataclass
class BacktestResult:
    """Per-model metrics (list of dicts) and one forecast row per test hour and model."""

    metrics: list[dict]
    forecasts: pl.DataFrame

    def table(self) -> str:
        cols = ["model", "mae", "rmae", "smape", "rmse", "pinball", "coverage_80", "test_days", "fits", "fit_seconds"]
        rows = [[_fmt(m.get(c)) for c in cols] for m in self.metrics]
        widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(cols)]

        def line(vals: list[str]) -> str:
            return "  ".join(v.rjust(w) if i else v.ljust(w) for i, (v, w) in enumerate(zip(vals, widths, strict=False)))

        return "\n".join([line(cols), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def _fmt(v: object) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4f}" if abs(v) < 10 else f"{v:.2f}"
    return str(v)


def _min_window(model: Forecaster, n_exog: int) -> int:
    need = getattr(model, "min_window_days", None)
    return int(need(n_exog)) if callable(need) else 1


def validate_backtest(
    panel: DailyPanel,
    models: Sequence[Forecaster],
    test_start: date,
    test_end: date,
    recalibrate_every: int,
    window_days: int,
) -> None:
    """Refuse anything that would fail or cheat mid-run; called before any fit."""
    if not models:
        raise ForecastInputError("no models to backtest")
    if test_end < test_start:
        raise ForecastInputError(f"test range is empty: {test_start}..{test_end}")
    if recalibrate_every < 1:
        raise ForecastInputError(f"recalibrate-every must be at least 1 day, got {recalibrate_every}")
    if test_start < panel.start or test_end > panel.end:
        raise ForecastInputError(
            f"test range {test_start}..{test_end} lies outside the data {panel.start}..{panel.end}"
        )
    test_idx = np.arange(*panel.index_of([test_start, test_end + timedelta(days=1)]))
    if np.isnan(panel.prices[test_idx]).any():
        bad = panel.day(test_idx[np.isnan(panel.prices[test_idx]).any(axis=1)][0])
        raise ForecastInputError(f"missing actual prices in the test range, first on {bad}")
    for m in models:
        if m.horizon_days < 1:
            raise ForecastInputError(f"{m.name}: horizon must be at least 1 day, got {m.horizon_days}")
        need = _min_window(m, len(panel.exog))
        if window_days < need:
            raise ForecastInputError(f"{m.name}: window of {window_days} days is too short, needs at least {need}")
        first = test_start - timedelta(days=m.horizon_days + window_days - 1)
        if first < panel.start:
            raise ForecastInputError(
                f"{m.name}: the first training window starts {first}, before the data starts {panel.start}; "
                f"use a later --test-start or a shorter --window-days"
            )
        hist = np.arange(panel.index_of([first])[0], panel.index_of([test_end])[0] - m.horizon_days + 1)
        series = {"price": panel.prices[hist], **({k: x[hist] for k, x in panel.exog.items()} if m.reads_exogenous else {})}
        gaps = {k: np.isnan(s).any(axis=1) for k, s in series.items()}
        days = np.any(list(gaps.values()), axis=0)
        if days.any():
            raise ForecastInputError(
                f"{m.name}: gaps in the history {first}..{test_end - timedelta(days=m.horizon_days)}: "
                f"{int(days.sum())} day(s) with missing values, first {panel.day(hist[days][0])} "
                f"(in {', '.join(repr(k) for k, g in gaps.items() if g.any())})"
            )
    weekly = panel.rows(panel.prices, test_idx - 7)
    if np.isnan(weekly).any():
        raise ForecastInputError("the weekly naive (for rMAE) needs prices 7 days before the test start")


def backtest(
    prices: pl.DataFrame | DailyPanel,
    models: Sequence[Forecaster],
    test_start: date,
    test_end: date,
    *,
    recalibrate_every: int = 1,
    window_days: int = 1456,
    progress: Progress | None = None,
    workers: int = 1,
) -> BacktestResult:
    """Walk forward over [test_start, test_end]; models are fitted in place (last fit kept).

    With `workers` > 1 the test days are cut into that many segments walked in parallel processes
    (`walk_segments.py`: each starts with a cold fit; the caller's models stay unfitted)."""
    panel = prices if isinstance(prices, DailyPanel) else daily_panel(prices)
    validate_backtest(panel, models, test_start, test_end, recalibrate_every, window_days)
    if workers < 1:
        raise ForecastInputError(f"workers must be at least 1, got {workers}")
    days = [test_start + timedelta(days=i) for i in range((test_end - test_start).days + 1)]
    idx = panel.index_of(days)
    actual = panel.prices[idx]
    weekly = panel.rows(panel.prices, idx - 7)
    if workers > 1:
        from energy_platform.forecasting.walk_segments import walk_in_segments

        out = walk_in_segments(_walk, panel, models, days, recalibrate_every, window_days, workers)
    else:
        out = _walk(panel, models, days, recalibrate_every, window_days, progress)
    for m in models:  # the adaptive band, a post-process in time order on the misses known at each cutoff
        _adaptive_band(m, out[m.name], days, actual, panel)
    forecasts = _forecast_frame(models, out, days, actual)
    naive_w = pl.Series("naive_w", np.tile(weekly.ravel(), len(models))).fill_nan(None)
    scores = {r["model"]: r for r in score(forecasts.with_columns(naive_w), by=["model"]).iter_rows(named=True)}
    return BacktestResult(
        metrics=[_model_metrics(m, scores[m.name], out[m.name], actual, days, panel) for m in models],
        forecasts=forecasts,
    )


def _walk(panel: DailyPanel, models: Sequence[Forecaster], days: list[date], recalibrate_every: int, window_days: int,
          progress: Progress | None) -> dict:
    """Fit and forecast day by day (the first day refits): per model its quantiles, timings, fits."""
    out = {m.name: {"q": np.full((len(days), HOURS, 3), np.nan), "fit": 0.0, "fits": 0, "pred": 0.0, "spread": [], "groups": {}}
           for m in models}
    for i, d in enumerate(days):
        for m in models:
            rec = out[m.name]
            if i % recalibrate_every == 0:
                t0 = time.perf_counter()
                m.fit(panel, d - timedelta(days=m.horizon_days), window_days)
                rec["fit"] += time.perf_counter() - t0
                rec["fits"] += 1
                read = getattr(m, "last_fit", {}).get("operating_groups")
                if read is not None:  # what each fit read: the rules may leave a configured group out
                    label = format_groups(read)
                    rec["groups"][label] = rec["groups"].get(label, 0) + 1
            t0 = time.perf_counter()
            f = m.predict(panel, d)
            rec["pred"] += time.perf_counter() - t0
            if getattr(m, "last_member_spread", None) is not None:
                rec["spread"].append(m.last_member_spread)
            if m.has_intervals:
                rec["q"][i] = f.select("p10", "p50", "p90").to_numpy()
            else:
                rec["q"][i, :, 1] = f["forecast"].to_numpy()
        if progress:
            progress(i + 1, len(days), d)
    return out


def _adaptive_band(m: Forecaster, rec: dict, days: list[date], actual: np.ndarray, panel: DailyPanel) -> None:
    """Replace the model's band by the adaptive one (`adaptive_band.py`) when its config asks for it.

    The walk forward starts with no stored history: day t's band uses the misses of the test days
    <= t - H only (the issued bands, with their actuals), as production would."""
    settings = adaptive_band.settings_of(m)
    if not (m.has_intervals and settings.enabled):
        return
    floor = getattr(getattr(m, "config", None), "price_floor", None)
    res = adaptive_band.adjust_days(days, rec["q"], actual, m.horizon_days, settings,
                                    lowest=plausibility.lowest_before_each(panel.start, panel.prices, days, m.horizon_days), floor=floor)
    rec["q"] = res.q
    rec["band_adjustment"] = res.theta
    rec["band_adjusted"] = res.adjusted


def _model_metrics(m: Forecaster, scored: dict, rec: dict, actual: np.ndarray, days: list[date],
                   panel: DailyPanel) -> dict:
    """The pooled scores of `energy_platform.scoring` (the platform's one definition), plus the
    backtest's own: timings, per-quarter coverage, plausibility, jaggedness, seed spread."""
    q = rec["q"]
    n_days = len(days)
    row = {
        "model": m.name,
        **{k: scored[k] for k in ("mae", "rmae", "smape", "rmse")},
        "test_days": n_days,
        "fit_seconds": round(rec["fit"], 3),
        "fits": rec["fits"],
        "fit_seconds_per_fit": round(rec["fit"] / max(rec["fits"], 1), 4),
        "predict_seconds": round(rec["pred"], 3),
    }
    if rec["groups"]:
        row["operating_groups_by_fit"] = rec["groups"]  # {groups read: number of fits}
    if m.has_intervals:
        row["pinball"], row["coverage_80"] = scored["pinball"], scored["coverage_80"]
        row["coverage_80_by_quarter"] = metrics.coverage_by_quarter(days, actual, q[..., 0], q[..., 2])
        lowest = np.repeat(plausibility.lowest_before_each(panel.start, panel.prices, days, m.horizon_days), HOURS)
        floor = getattr(getattr(m, "config", None), "price_floor", None)
        row["below_floor_share"] = metrics.below_floor_share(q[..., 0], q[..., 1], lowest, floor)
        row["price_floor"] = floor
        row["band_width"] = float(np.mean(q[..., 2] - q[..., 0]))
        if "band_adjustment" in rec:
            st, theta = adaptive_band.settings_of(m), rec["band_adjustment"]
            row["adaptive_band"] = {"step": st.step, "mode": st.mode, "sides": st.sides,
                                    "days_adjusted": int(rec["band_adjusted"].sum()),
                                    "theta_low_mean": float(theta[:, 0].mean()), "theta_high_mean": float(theta[:, 1].mean()),
                                    "theta_min": float(theta.min()), "theta_max": float(theta.max())}
    row["jaggedness_ratio"] = metrics.jaggedness_ratio(actual, q[..., 1])
    if rec["spread"]:
        row["seed_spread"] = float(np.mean(rec["spread"]))  # mean over days and hours of the std across members' p50
    return row


def _forecast_frame(models: Sequence[Forecaster], out: dict, days: list[date], actual: np.ndarray) -> pl.DataFrame:
    n = len(days) * HOURS
    base = pl.DataFrame(
        {
            "target_date": pl.Series(np.repeat(np.array(days, dtype="datetime64[D]"), HOURS)).cast(pl.Date),
            "hour": pl.Series(np.tile(np.arange(HOURS), len(days)), dtype=pl.Int32),
            "actual": actual.ravel(),
        }
    ).with_columns(
        (pl.col("target_date").cast(pl.Datetime("us")) + pl.duration(hours=pl.col("hour"))).alias("ts")
    )
    frames = []
    for m in models:
        q = out[m.name]["q"].reshape(n, 3)
        if not m.has_intervals:
            q = np.column_stack([np.full(n, np.nan), q[:, 1], np.full(n, np.nan)])
        cols = {"forecast": q[:, 1], "p10": q[:, 0], "p50": q[:, 1] if m.has_intervals else q[:, 0], "p90": q[:, 2]}
        frames.append(base.with_columns(pl.lit(m.name).alias("model"), *(pl.Series(k, v) for k, v in cols.items())))
    return (
        pl.concat(frames)
        .with_columns(pl.col("p10", "p50", "p90").fill_nan(None))
        .select("model", "target_date", "hour", "ts", "actual", "forecast", "p10", "p50", "p90")
    )


def backtest_recent(
    prices: pl.DataFrame | DailyPanel,
    model: Forecaster,
    weeks: int,
    *,
    recalibrate_every: int = 7,
    window_days: int = 1456,
    end: date | None = None,
    progress: Progress | None = None,
) -> BacktestResult:
    """Backtest one configured candidate on the most recent `weeks` weeks of complete data.

    The weekly naive (the rMAE reference) and persistence (naive_d) are always added, so a
    promotion gate can compare on the same days.
    """
    panel = prices if isinstance(prices, DailyPanel) else daily_panel(prices)
    if weeks < 1:
        raise ForecastInputError(f"weeks must be at least 1, got {weeks}")
    last = end
    if last is None:
        complete = np.flatnonzero(~np.isnan(panel.prices).any(axis=1))
        if complete.size == 0:
            raise ForecastInputError("no complete day in the data")
        last = panel.day(int(complete[-1]))
    start = last - timedelta(days=7 * weeks - 1)
    from energy_platform.forecasting.baselines import naive_d, naive_w

    models: list[Forecaster] = [model]
    if model.name != "naive_w":
        models.append(naive_w(horizon_days=min(model.horizon_days, 7)))
    if model.name != "naive_d":  # persistence: what the gate requires every challenger to beat
        models.append(naive_d(horizon_days=model.horizon_days))
    return backtest(panel, models, start, last, recalibrate_every=recalibrate_every, window_days=window_days, progress=progress)
