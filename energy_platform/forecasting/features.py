"""Point-in-time features for a target day d, forecast with a horizon of H days.

The forecast of day d is made at the end of day `cutoff = d - H`, so it may use prices of days
<= d - H only. Exogenous columns are day-ahead forecasts (load, wind): the value stored for day j
is published during day j - 1, so at the cutoff the exogenous series are known up to day
d - H + 1. For H = 1 that is the benchmark protocol (prices to d-1, exogenous forecasts of d).

Features are built from a dense (days x 24) matrix so every lag is one array slice; a day that
is missing or outside the data is NaN, and callers decide whether that is an error.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import lru_cache

import holidays
import numpy as np
import polars as pl

from energy_platform.forecasting.errors import ForecastInputError

HOURS = 24
DOW_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
TARGET_COLUMNS = [f"target_h{h:02d}" for h in range(HOURS)]
BASE_COLUMNS = ("ts", "date", "hour", "price")
MAD_TO_SIGMA = 1.4826  # makes the MAD a consistent estimate of the normal standard deviation


@dataclass(frozen=True)
class FeatureSpec:
    """Which lags a model reads; defaults follow LEAR (d-1, d-2, d-3, d-7) shifted for H."""

    horizon_days: int = 1
    price_lags: tuple[int, ...] | None = None
    exog_lags: tuple[int, ...] | None = None
    country: str = "CO"
    # Operating groups (see operating_features.OPERATING_GROUPS) read at the cutoff d - H; none
    # for a market without operating data (NP, PJM): the features are then exactly the prices'.
    operating_groups: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        from energy_platform.forecasting.operating_features import parse_groups

        object.__setattr__(self, "operating_groups", parse_groups(self.operating_groups))
        if not isinstance(self.horizon_days, int) or self.horizon_days < 1:
            raise ForecastInputError(f"horizon must be at least 1 day, got {self.horizon_days!r}")
        if any(k < self.horizon_days for k in self.resolved_price_lags()):
            raise ForecastInputError(
                f"price lags {self.resolved_price_lags()} reach past the cutoff d-{self.horizon_days}"
            )
        if any(k < self.horizon_days - 1 for k in self.resolved_exog_lags()):
            raise ForecastInputError(
                f"exogenous lags {self.resolved_exog_lags()} reach past what is known at d-{self.horizon_days}"
            )

    def resolved_price_lags(self) -> tuple[int, ...]:
        if self.price_lags is not None:
            return tuple(sorted(set(self.price_lags)))
        h = self.horizon_days
        return (h, h + 1, h + 2, max(7, h + 3))

    def resolved_exog_lags(self) -> tuple[int, ...]:
        if self.exog_lags is not None:
            return tuple(sorted(set(self.exog_lags)))
        h = self.horizon_days
        return tuple(sorted({h - 1, h, max(7, h + 1)}))

    @property
    def max_lag(self) -> int:
        return max(self.resolved_price_lags() + self.resolved_exog_lags())

    def first_target(self, first_day: date) -> date:
        """The first target day whose lags all lie in data that starts on `first_day`."""
        return first_day + timedelta(days=self.max_lag)

    @property
    def complete_days(self) -> int:
        """Consecutive days of 24 prices the lags read, ending at the cutoff (target - H)."""
        return self.max_lag - self.horizon_days + 1

    def to_dict(self) -> dict:
        return {
            "horizon_days": self.horizon_days,
            "price_lags": list(self.resolved_price_lags()),
            "exog_lags": list(self.resolved_exog_lags()),
            "country": self.country,
            "operating_groups": list(self.operating_groups),
        }

    def operating_columns(self) -> list[str]:
        from energy_platform.forecasting.operating_features import OPERATING_GROUPS

        return [c for g in self.operating_groups for c in OPERATING_GROUPS[g]]

    @classmethod
    def from_dict(cls, d: dict) -> FeatureSpec:
        return cls(
            horizon_days=int(d["horizon_days"]),
            price_lags=tuple(d["price_lags"]),
            exog_lags=tuple(d["exog_lags"]),
            country=str(d["country"]),
            operating_groups=tuple(d.get("operating_groups", ())),
        )


@dataclass
class DailyPanel:
    """Hourly data as dense day x hour matrices; row i is day `start + i`."""

    start: date
    prices: np.ndarray
    exog: dict[str, np.ndarray] = field(default_factory=dict)
    # Operating features known at cutoff day `start + i` (row i), NaN when unknown; empty when
    # no operating data was given.
    operating: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def n_days(self) -> int:
        return self.prices.shape[0]

    @property
    def end(self) -> date:
        return self.start + timedelta(days=self.n_days - 1)

    def index_of(self, days: Iterable[date]) -> np.ndarray:
        return np.array([(d - self.start).days for d in days], dtype=np.int64)

    def day(self, i: int) -> date:
        return self.start + timedelta(days=int(i))

    def rows(self, matrix: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """`matrix[idx]`, with NaN rows for indices outside the panel."""
        out = np.full((len(idx), matrix.shape[1]), np.nan)
        ok = (idx >= 0) & (idx < matrix.shape[0])
        out[ok] = matrix[idx[ok]]
        return out


def _with_calendar(prices: pl.DataFrame) -> pl.DataFrame:
    if "ts" not in prices.columns or "price" not in prices.columns:
        raise ForecastInputError(f"hourly data needs columns 'ts' and 'price', got {prices.columns}")
    if not prices["price"].dtype.is_numeric():
        raise ForecastInputError(f"column 'price' must be numeric, got {prices['price'].dtype}")
    if not isinstance(prices.schema["ts"], pl.Datetime):
        raise ForecastInputError(f"column 'ts' must be a datetime, got {prices.schema['ts']}")
    bad = [c for c in prices.columns if c not in BASE_COLUMNS and not prices[c].dtype.is_numeric()]
    if bad:
        raise ForecastInputError(f"exogenous columns must be numeric: {bad}")
    return prices.with_columns(
        pl.col("ts").dt.date().alias("date"), pl.col("ts").dt.hour().cast(pl.Int32).alias("hour")
    )


def exogenous_names(prices: pl.DataFrame) -> list[str]:
    return [c for c in prices.columns if c not in BASE_COLUMNS]


def realised_prices(data: pl.DataFrame | DailyPanel) -> DailyPanel:
    """The prices a model's input carries, as a panel: the panel itself, an hourly frame pivoted,
    or feature-store rows' target columns (the realised prices of their target days)."""
    if isinstance(data, DailyPanel):
        return data
    if "target_date" not in data.columns:
        return daily_panel(data.select("ts", "price"))
    rows = data.sort("target_date")
    start, end = rows["target_date"].min(), rows["target_date"].max()
    prices = np.full(((end - start).days + 1, HOURS), np.nan)
    idx = rows["target_date"].to_physical().to_numpy().astype(np.int64) - (start - date(1970, 1, 1)).days
    prices[idx] = rows.select(TARGET_COLUMNS).cast(pl.Float64).fill_null(np.nan).to_numpy()
    return DailyPanel(start=start, prices=prices)


def daily_panel(prices: pl.DataFrame, operating=None) -> DailyPanel:
    """Pivot an hourly frame (`ts`, `price`, exogenous...) into dense day x 24 matrices, with the
    point-in-time operating features of every day as a cutoff when `operating` is given."""
    frame = _with_calendar(prices)
    if frame.height == 0:
        raise ForecastInputError("no hourly data given")
    if frame["ts"].is_duplicated().any():
        raise ForecastInputError(f"duplicate hours in the data, first: {frame.filter(pl.col('ts').is_duplicated())['ts'][0]}")
    start = frame["date"].min()
    end = frame["date"].max()
    n = (end - start).days + 1
    day_idx = frame["date"].to_physical().to_numpy().astype(np.int64) - (start - date(1970, 1, 1)).days
    hour = frame["hour"].to_numpy()

    def dense(col: str) -> np.ndarray:
        m = np.full((n, HOURS), np.nan)
        m[day_idx, hour] = frame[col].cast(pl.Float64).fill_nan(None).to_numpy()
        return m

    op: dict[str, np.ndarray] = {}
    if operating is not None:
        from energy_platform.forecasting.operating_features import operating_by_cutoff

        op = operating_by_cutoff(operating, start, n)
    return DailyPanel(start=start, prices=dense("price"), exog={c: dense(c) for c in exogenous_names(frame)}, operating=op)


@lru_cache(maxsize=16)
def _holiday_ordinals(country: str, first_year: int, last_year: int) -> frozenset[int]:
    try:
        cal = holidays.country_holidays(country, years=range(first_year, last_year + 1))
    except NotImplementedError as exc:
        raise ForecastInputError(f"unknown holiday country {country!r}") from exc
    return frozenset(d.toordinal() for d in cal)


NO_CALENDAR = "none"  # a market whose holiday calendar is not given: the holiday inputs stay 0


def check_calendar(country: str) -> str:
    """`country` if the `holidays` package knows it (or it is `none`); else the error, before any work."""
    holiday_flags([date(2020, 1, 1)], country)
    return country


def holiday_flags(days: Sequence[date] | np.ndarray, country: str) -> np.ndarray:
    ordinals = np.array([d.toordinal() for d in days], dtype=np.int64)
    if len(ordinals) == 0 or country == NO_CALENDAR:
        return np.zeros(len(ordinals))
    years = [date.fromordinal(int(o)).year for o in (ordinals.min(), ordinals.max())]
    known = np.array(sorted(_holiday_ordinals(country, years[0], years[1])), dtype=np.int64)
    return np.isin(ordinals, known).astype(float)


def in_calendar(rows: pl.DataFrame, country: str, horizon_days: int) -> pl.DataFrame:
    """Feature rows (`target_date`, ...) with their two holiday columns in `country`'s calendar: a
    model trained before the platform's calendar changed reads the holidays it learnt."""
    days = rows["target_date"].to_list()
    cutoffs = [d - timedelta(days=horizon_days) for d in days]
    return rows.with_columns(pl.Series("holiday", holiday_flags(days, country)),
                             pl.Series(f"holiday_lag{horizon_days}", holiday_flags(cutoffs, country)))


def feature_names(spec: FeatureSpec, exog: Sequence[str]) -> list[str]:
    names = [f"price_lag{k}_h{h:02d}" for k in spec.resolved_price_lags() for h in range(HOURS)]
    names += [f"{e}_lag{k}_h{h:02d}" for e in exog for k in spec.resolved_exog_lags() for h in range(HOURS)]
    names += [f"dow_{d}" for d in DOW_NAMES]
    names += ["holiday", f"holiday_lag{spec.horizon_days}"]
    names += spec.operating_columns()
    return names


def lag_column(column: str) -> tuple[str, int] | None:
    """(series, lag in days) of an hourly lag column `<series>_lag<k>_h<hh>` (`price_lag1_h05`,
    `load_lag0_h05`); None for any other column."""
    m = re.fullmatch(r"(.+)_lag(\d+)_h\d\d", column)
    return (m.group(1), int(m.group(2))) if m else None


def exogenous_in_features(columns: Sequence[str], spec: FeatureSpec) -> list[str]:
    """The exogenous series whose every lag column of `spec` is among feature-store `columns`,
    in their order there: what a model fitted from those rows reads."""
    lags = spec.resolved_exog_lags()
    found: dict[str, set[str]] = {}
    for column in columns:
        parsed = lag_column(column)
        if parsed and parsed[0] != "price":
            found.setdefault(parsed[0], set()).add(column)
    return [e for e, have in found.items() if have >= {f"{e}_lag{k}_h{h:02d}" for k in lags for h in range(HOURS)}]


def feature_matrix(panel: DailyPanel, spec: FeatureSpec, idx: np.ndarray) -> np.ndarray:
    """Features of the target days at panel indices `idx` (may lie past the panel's end)."""
    blocks = [panel.rows(panel.prices, idx - k) for k in spec.resolved_price_lags()]
    for name in panel.exog:
        blocks += [panel.rows(panel.exog[name], idx - k) for k in spec.resolved_exog_lags()]
    days = [panel.day(i) for i in idx]
    dow = np.zeros((len(idx), 7))
    dow[np.arange(len(idx)), [d.weekday() for d in days]] = 1.0
    cutoff_days = [d - timedelta(days=spec.horizon_days) for d in days]
    cal = np.column_stack([holiday_flags(days, spec.country), holiday_flags(cutoff_days, spec.country)])
    op = [_operating_column(panel, c, idx - spec.horizon_days) for c in spec.operating_columns()]
    return np.hstack([*blocks, dow, cal.reshape(len(idx), 2), *op])


def _operating_column(panel: DailyPanel, name: str, cutoff_idx: np.ndarray) -> np.ndarray:
    """The operating feature `name` known at each cutoff; NaN without data (never a guess)."""
    series = panel.operating.get(name)
    if series is None:
        return np.full((len(cutoff_idx), 1), np.nan)
    return panel.rows(series.reshape(-1, 1), cutoff_idx)


def target_matrix(panel: DailyPanel, idx: np.ndarray) -> np.ndarray:
    return panel.rows(panel.prices, idx)


def build_feature_frame(
    prices: pl.DataFrame,
    target_dates: Iterable[date],
    horizon_days: int,
    *,
    country: str = "CO",
    price_lags: Sequence[int] | None = None,
    exog_lags: Sequence[int] | None = None,
    operating=None,
    operating_groups: Sequence[str] | str | None = None,
) -> pl.DataFrame:
    """One row per target day: `target_date`, `cutoff_date`, flat features, `target_h00..23`.

    Features are raw (unscaled) so a feature table stays model-agnostic; each model fits its
    own scaling on its training window. Unknown values (missing data) are null. With
    `operating` (an `OperatingData`) the operating columns of `operating_groups` (default: all)
    are added, each as known at the row's cutoff; this is the one function behind the feature
    store, training, and the served model.
    """
    if operating_groups is None:
        operating_groups = "all" if operating is not None else ()
    spec = FeatureSpec(
        horizon_days=horizon_days,
        price_lags=tuple(price_lags) if price_lags is not None else None,
        exog_lags=tuple(exog_lags) if exog_lags is not None else None,
        country=country,
        operating_groups=operating_groups,
    )
    targets = list(target_dates)
    panel = daily_panel(prices, operating)
    idx = panel.index_of(targets)
    names = feature_names(spec, list(panel.exog))
    X = feature_matrix(panel, spec, idx)
    Y = target_matrix(panel, idx)
    cols: dict[str, object] = {
        "target_date": pl.Series("target_date", targets, dtype=pl.Date),
        "cutoff_date": pl.Series(
            "cutoff_date", [d - timedelta(days=horizon_days) for d in targets], dtype=pl.Date
        ),
    }
    cols.update({n: X[:, j] for j, n in enumerate(names)})
    cols.update({n: Y[:, h] for h, n in enumerate(TARGET_COLUMNS)})
    return pl.DataFrame(cols).with_columns(pl.col(pl.Float64).fill_nan(None))


class RobustAsinhScaler:
    """LEAR's "invariant" transform asinh((x - median) / MAD), fitted on training data only.

    With `per_column=False` one median/MAD is shared by all columns of a block (keeps lags of one
    series comparable); with `per_column=True` every column gets its own (as epftoolbox does).
    """

    def __init__(self, per_column: bool = True):
        self.per_column = per_column
        self.median: np.ndarray | None = None
        self.mad: np.ndarray | None = None

    def fit(self, x: np.ndarray) -> RobustAsinhScaler:
        axis = 0 if self.per_column else None
        med = np.nanmedian(x, axis=axis)
        mad = np.nanmedian(np.abs(x - med), axis=axis) * MAD_TO_SIGMA
        # A constant column (e.g. a flat price stretch) must not divide by zero.
        std = np.nanstd(x, axis=axis)
        mad = np.where(mad > 1e-12, mad, np.where(std > 1e-12, std, 1.0))
        self.median = np.atleast_1d(np.asarray(med, dtype=float))
        self.mad = np.atleast_1d(np.asarray(mad, dtype=float))
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        return np.arcsinh((x - self.median) / self.mad)

    def inverse(self, z: np.ndarray) -> np.ndarray:
        return np.sinh(z) * self.mad + self.median

    def to_state(self) -> dict:
        return {"per_column": self.per_column, "median": self.median.tolist(), "mad": self.mad.tolist()}

    @classmethod
    def from_state(cls, state: dict) -> RobustAsinhScaler:
        s = cls(per_column=bool(state["per_column"]))
        s.median = np.asarray(state["median"], dtype=float)
        s.mad = np.asarray(state["mad"], dtype=float)
        return s
