"""Reference models every forecast must beat: two naives and LEAR (Lago et al., 2021).

LEAR here is one window of the paper's model: 24 per-hour LASSO regressions on the LEAR lags,
inputs and targets put through asinh((x - median) / MAD) column by column, and the penalty
picked by AIC on the LARS path (`LassoLarsIC`) and then refitted with coordinate descent
(`Lasso`), exactly as epftoolbox does.
"""

from __future__ import annotations

import warnings
from datetime import date, datetime, timedelta

import numpy as np
import polars as pl
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import Lasso, LassoLarsIC
from threadpoolctl import threadpool_limits

from energy_platform.forecasting.base import forecast_frame, min_window_days, prediction_features, training_set
from energy_platform.forecasting.errors import ForecastInputError
from energy_platform.forecasting.features import HOURS, DailyPanel, FeatureSpec, RobustAsinhScaler, daily_panel, feature_names


def _ols_noise_variance(X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """LassoLarsIC's own noise estimate (OLS residual variance), solved once for all 24 hours."""
    coef, *_ = np.linalg.lstsq(X, Y, rcond=None)
    dof = X.shape[0] - X.shape[1] - 1
    return np.sum((Y - X @ coef) ** 2, axis=0) / dof


class NaiveLag:
    """Tomorrow looks like a known day `lag` days back (d-H for naive_d, d-7 for naive_w)."""

    has_intervals = False
    reads_exogenous = False

    def __init__(self, name: str, lag: int, horizon_days: int):
        spec = FeatureSpec(horizon_days=horizon_days)  # validates the horizon
        if lag < horizon_days:
            raise ForecastInputError(f"{name}: day d-{lag} is not known with horizon {horizon_days}")
        self.name = name
        self.lag = lag
        self.horizon_days = spec.horizon_days

    def fit(self, prices: pl.DataFrame, train_end: date, window_days: int) -> None:
        if window_days < 1:
            raise ForecastInputError(f"window of {window_days} days is too short")

    def min_window_days(self, n_exog: int = 0) -> int:
        return 1

    def predict(self, prices: pl.DataFrame | DailyPanel, target: date) -> pl.DataFrame:
        panel = prices if isinstance(prices, DailyPanel) else daily_panel(prices)
        day = target - timedelta(days=self.lag)
        row = panel.rows(panel.prices, panel.index_of([day]))[0]
        if np.isnan(row).any():
            raise ForecastInputError(f"{self.name}: prices of {day} are missing, cannot forecast {target}")
        return forecast_frame(row)


def naive_d(horizon_days: int = 1, **_: object) -> NaiveLag:
    return NaiveLag("naive_d", horizon_days, horizon_days)


def naive_w(horizon_days: int = 1, **_: object) -> NaiveLag:
    return NaiveLag("naive_w", 7, horizon_days)


class Lear:
    """LASSO Estimated AutoRegressive model, one calibration window."""

    has_intervals = False
    reads_exogenous = True
    min_train_days = 28

    def __init__(self, horizon_days: int = 1, country: str = "CO", max_iter: int = 2500, **_: object):
        self.spec = FeatureSpec(horizon_days=horizon_days, country=country)
        self.name = "lear"
        self.horizon_days = horizon_days
        self.max_iter = max_iter
        self._core: LearRegression | None = None

    def min_window_days(self, n_exog: int = 0) -> int:
        # LassoLarsIC estimates the noise variance by OLS: it needs more days than inputs.
        n_inputs = len(feature_names(self.spec, [f"x{i}" for i in range(n_exog)]))
        return min_window_days(self.spec, max(self.min_train_days, n_inputs + 2))

    def fit(self, prices: pl.DataFrame | DailyPanel, train_end: date, window_days: int) -> None:
        panel = prices if isinstance(prices, DailyPanel) else daily_panel(prices)
        need = self.min_window_days(len(panel.exog))
        if window_days < need:
            raise ForecastInputError(
                f"lear: window of {window_days} days is too short: needs at least {need} "
                f"(more training days than its {need - self.spec.max_lag - 2} inputs)"
            )
        data = training_set(panel, self.spec, train_end, window_days, self.min_train_days)
        self._core = LearRegression(self.max_iter).fit(data.X, data.Y)
        self._exog = data.exog

    def predict(self, prices: pl.DataFrame | DailyPanel, target: date) -> pl.DataFrame:
        if self._core is None:
            raise ForecastInputError("lear: predict called before fit")
        return forecast_frame(self._core.predict(prediction_features(prices, self.spec, target, self._exog))[0])


class LearRegression:
    """LEAR's regression on given rows: per-column asinh scaling, 24 LASSO fits (penalty by AIC).

    `Lear` fits it on its own features; the forecaster (`MLPConfig.lear_weight`) on its inputs.
    """

    def __init__(self, max_iter: int = 2500):
        self.max_iter = max_iter

    @staticmethod
    def fits(n_rows: int, n_inputs: int) -> bool:
        """LassoLarsIC estimates the noise variance by OLS: it needs more rows than inputs + 1."""
        return n_rows > n_inputs + 1

    def fit(self, X: np.ndarray, Y: np.ndarray) -> LearRegression:
        # One BLAS thread: these matrices are small (days x ~110), and OpenBLAS's threads spinning
        # beside Dagster steps or a second worker made a fit 2-4x slower (bench: README "Speed").
        with threadpool_limits(limits=1, user_api="blas"):
            return self._fit(X, Y)

    def _fit(self, X: np.ndarray, Y: np.ndarray) -> LearRegression:
        binary = np.all(np.isin(X, (0.0, 1.0)), axis=0)
        self._binary = binary
        self._x_scaler = RobustAsinhScaler(per_column=True).fit(X[:, ~binary])
        self._y_scaler = RobustAsinhScaler(per_column=True).fit(Y)
        Xs = self._scale_x(X)
        Ys = self._y_scaler.transform(Y)
        coef = np.zeros((HOURS, Xs.shape[1]))
        intercept = np.zeros(HOURS)
        # One Gram matrix of the centred inputs serves all 24 hours; same alphas, half the time.
        centred = Xs - Xs.mean(axis=0)
        gram = centred.T @ centred
        noise = _ols_noise_variance(centred, Ys - Ys.mean(axis=0))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            for h in range(HOURS):
                ic = LassoLarsIC(
                    criterion="aic", max_iter=self.max_iter, precompute=gram, noise_variance=noise[h]
                )
                alpha = ic.fit(Xs, Ys[:, h]).alpha_
                m = Lasso(alpha=alpha, max_iter=self.max_iter, precompute=True).fit(Xs, Ys[:, h])
                coef[h], intercept[h] = m.coef_, m.intercept_
        self._coef, self._intercept = coef, intercept
        return self

    def _scale_x(self, X: np.ndarray) -> np.ndarray:
        out = X.copy()
        out[:, ~self._binary] = self._x_scaler.transform(X[:, ~self._binary])
        return out

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Forecasts in price units, one row of 24 hours per row of X."""
        return self._y_scaler.inverse(self._scale_x(X) @ self._coef.T + self._intercept)

    def to_state(self) -> dict:
        return {"binary": self._binary.tolist(), "x_scaler": self._x_scaler.to_state(),
                "y_scaler": self._y_scaler.to_state(), "coef": self._coef.tolist(), "intercept": self._intercept.tolist()}

    @classmethod
    def from_state(cls, state: dict) -> LearRegression:
        r = cls()
        r._binary = np.asarray(state["binary"], dtype=bool)
        r._x_scaler = RobustAsinhScaler.from_state(state["x_scaler"])
        r._y_scaler = RobustAsinhScaler.from_state(state["y_scaler"])
        r._coef = np.asarray(state["coef"], dtype=float)
        r._intercept = np.asarray(state["intercept"], dtype=float)
        return r


def persistence_from_history(history: pl.DataFrame, horizon_days: int, floor: float | None = 0.0) -> pl.DataFrame:
    """naive_d served from raw history: day (last complete day + H) repeats the last complete day.

    The band is the 10th/90th percentile, hour by hour, of the rule's own errors over the history
    (price[d] - price[d-H]), widened to contain the forecast and clipped at the market floor, so
    the baseline honours the same p10 <= forecast <= p90 contract as the forecaster.
    Returns `ts`, `hour`, `forecast`, `p10`, `p50`, `p90` like `MLPForecaster.predict_from_history`.
    """
    frame = history.select(pl.col("ts").cast(pl.Datetime("us")), pl.col("price").cast(pl.Float64)).with_columns(
        pl.col("ts").dt.date().alias("date"), pl.col("ts").dt.hour().cast(pl.Int32).alias("hour"))
    complete = frame.group_by("date").agg(pl.col("price").is_not_null().sum().alias("n")).filter(pl.col("n") == HOURS)
    if complete.is_empty():
        raise ForecastInputError("history has no complete day of 24 prices")
    last = complete["date"].max()
    target = last + timedelta(days=horizon_days)
    last_day = frame.filter(pl.col("date") == last).sort("hour")["price"].to_numpy()
    if not np.isfinite(last_day).all():
        raise ForecastInputError(f"persistence: prices of {last} are not finite")
    lagged = frame.select("date", "hour", "price").with_columns((pl.col("date") + pl.duration(days=horizon_days)).alias("date"))
    errors = (
        frame.join(lagged, on=["date", "hour"], suffix="_lag")
        .filter(pl.col("price").is_not_null() & pl.col("price_lag").is_not_null())
        .group_by("hour")
        .agg((pl.col("price") - pl.col("price_lag")).quantile(0.1).alias("q10"),
             (pl.col("price") - pl.col("price_lag")).quantile(0.9).alias("q90"))
    )
    q = pl.DataFrame({"hour": np.arange(HOURS, dtype=np.int32)}).join(errors, on="hour", how="left").sort("hour").fill_null(0.0)
    p10 = last_day + np.minimum(q["q10"].to_numpy(), 0.0)
    p90 = last_day + np.maximum(q["q90"].to_numpy(), 0.0)
    if floor is not None:
        p10 = np.maximum(p10, floor)
    ts = pl.datetime_range(datetime(target.year, target.month, target.day),
                           datetime(target.year, target.month, target.day, 23), "1h", eager=True)
    return pl.DataFrame({
        "ts": ts.cast(pl.Datetime("us")),
        "hour": np.arange(HOURS, dtype=np.int32),
        "forecast": last_day, "p10": p10, "p50": last_day, "p90": p90,
    })
