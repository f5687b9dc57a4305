"""The three operating-data CSV files, read strictly (the shared folder's format).

`operating_daily.csv` (date, demand_gwh, generation_gwh, unserved_demand_mwh, exports_gwh,
imports_gwh), `hydrology_monthly.csv` (month YYYY-MM, inflows_pct_of_historical_mean,
reservoir_useful_volume_pct) and `oni_monthly.csv` (month = centre month, oni, season). A file
that would put a wrong number into features is refused with its file, line and problem named:
non-numeric, non-finite, negative or out-of-range values, bad dates, duplicates, a season that
does not match its month. A missing day or month is allowed and stays missing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from energy_platform.sources.base import SourceError
from energy_platform.sources.csv_text import read_csv_text

OPERATING_DAILY_FILE = "operating_daily.csv"
HYDROLOGY_FILE = "hydrology_monthly.csv"
ONI_FILE = "oni_monthly.csv"

DAILY_SCHEMA = {
    "date": pl.Date,
    "demand_gwh": pl.Float64,
    "generation_gwh": pl.Float64,
    "unserved_demand_mwh": pl.Float64,
    "exports_gwh": pl.Float64,
    "imports_gwh": pl.Float64,
}
HYDROLOGY_SCHEMA = {
    "month": pl.Date,
    "inflows_pct_of_historical_mean": pl.Float64,
    "reservoir_useful_volume_pct": pl.Float64,
    "days_observed": pl.Int32,  # daily values behind the mean; null when the source gave the mean
}
ONI_SCHEMA = {"month": pl.Date, "season": pl.String, "oni": pl.Float64}

SEASONS = ("DJF", "JFM", "FMA", "MAM", "AMJ", "MJJ", "JJA", "JAS", "ASO", "SON", "OND", "NDJ")
"""Three-month seasons by centre month: DJF is centred on January, NDJ on December."""


@dataclass(frozen=True)
class Bounds:
    """Hard limits of a value: outside them it cannot be true, so the file is refused."""

    required: bool
    low: float
    high: float


DAILY_BOUNDS = {
    # SIN demand is ~130-250 GWh/day: kWh read as GWh fails the top, MWh or TWh the bottom (they were stored with a WARN)
    "demand_gwh": Bounds(True, 10.0, 1_000.0),
    "generation_gwh": Bounds(True, 10.0, 1_000.0),
    "unserved_demand_mwh": Bounds(False, 0.0, 1e6),
    "exports_gwh": Bounds(False, 0.0, 1_000.0),
    "imports_gwh": Bounds(False, 0.0, 1_000.0),
}
HYDROLOGY_BOUNDS = {
    "inflows_pct_of_historical_mean": Bounds(True, 0.0, 1_000.0),
    "reservoir_useful_volume_pct": Bounds(True, 0.0, 100.0),
}
ONI_BOUNDS = {"oni": Bounds(True, -5.0, 5.0)}  # the record is about -2.1..+2.7 °C


def check_value(value: float | None, column: str, bounds: Bounds) -> str | None:
    """The problem with one value, or None if it is acceptable."""
    if value is None:
        return "missing value" if bounds.required else None
    if not math.isfinite(value):
        return f"non-finite value {value!r}"
    if value == 0 and bounds.low > 0:  # stored, it stopped every later forecast at the blocking check (session 19)
        return "value 0: no day has zero demand or generation (a missing value sent as 0)"
    if not bounds.low <= value <= bounds.high:
        return f"value {value!r} outside {bounds.low:g}..{bounds.high:g}"
    return None


def _read_text_csv(path: Path, expected: list[str]) -> pl.DataFrame:
    if not path.exists():
        raise SourceError(f"{path}: file not found")
    frame = read_csv_text(path, SourceError)
    columns = [c.strip() for c in frame.columns]
    if sorted(columns) != sorted(expected):
        raise SourceError(f"{path}: line 1: expected columns {expected}, got {columns}")
    frame.columns = columns
    return frame.select(expected).with_columns(pl.all().str.strip_chars())


_KEY_PATTERNS = {"date": (r"^\d{4}-\d{2}-\d{2}$", "%Y-%m-%d", "", "YYYY-MM-DD"), "month": (r"^\d{4}-\d{2}$", "%Y-%m-%d", "-01", "YYYY-MM")}


def _parse_key(frame: pl.DataFrame, path: Path, column: str) -> pl.Series:
    """The key column (`date` or `month`) as dates; unparsable or duplicate keys are refused."""
    pattern, fmt, suffix, shown = _KEY_PATTERNS[column]
    text = frame[column]
    parsed = (text + suffix).str.strptime(pl.Date, fmt, strict=False)
    bad = parsed.is_null() | ~text.str.contains(pattern).fill_null(False)
    if bad.any():
        i = int(bad.arg_true()[0])
        raise SourceError(f"{path}: line {i + 2}: column {column!r}: unparsable {column} {text[i]!r} (want {shown})")
    dup = ~parsed.is_first_distinct()
    if dup.any():
        i = int(dup.arg_true()[0])
        raise SourceError(f"{path}: line {i + 2}: duplicate {column} {text[i]}")
    return parsed


def _parse_numbers(frame: pl.DataFrame, path: Path, bounds: dict[str, Bounds]) -> dict[str, pl.Series]:
    out = {}
    for column, limits in bounds.items():
        text = frame[column]
        values = text.cast(pl.Float64, strict=False)
        bad = values.is_null() & text.is_not_null() & (text != "")
        if bad.any():
            i = int(bad.arg_true()[0])
            raise SourceError(f"{path}: line {i + 2}: column {column!r}: non-numeric value {text[i]!r}")
        # Vectorised screen, then the first offending row is named.
        suspicious = values.is_null() | values.is_nan() | values.is_infinite() | (values < limits.low) | (values > limits.high)
        for i in suspicious.arg_true().to_list():
            problem = check_value(values[i], column, limits)
            if problem:
                raise SourceError(f"{path}: line {i + 2}: column {column!r}: {problem}")
        out[column] = values
    return out


def read_operating_daily_csv(path: str | Path) -> pl.DataFrame:
    """`operating_daily.csv` (plain or .gz) as a frame of DAILY_SCHEMA, sorted by date."""
    path = Path(path)
    frame = _read_text_csv(path, list(DAILY_SCHEMA))
    day = _parse_key(frame, path, "date")
    numbers = _parse_numbers(frame, path, DAILY_BOUNDS)
    return pl.DataFrame({"date": day, **numbers}, schema=DAILY_SCHEMA).sort("date")


def read_hydrology_csv(path: str | Path) -> pl.DataFrame:
    """`hydrology_monthly.csv` (plain or .gz); `month` is stored as the month's first day."""
    path = Path(path)
    columns = [c for c in HYDROLOGY_SCHEMA if c != "days_observed"]
    frame = _read_text_csv(path, ["month", *columns[1:]])
    month = _parse_key(frame, path, "month")
    numbers = _parse_numbers(frame, path, HYDROLOGY_BOUNDS)
    return (
        pl.DataFrame({"month": month, **numbers})
        .with_columns(pl.lit(None, pl.Int32).alias("days_observed"))
        .select(list(HYDROLOGY_SCHEMA))
        .sort("month")
    )


def read_oni_csv(path: str | Path) -> pl.DataFrame:
    """`oni_monthly.csv` (plain or .gz): centre month, season, ONI; the season must fit the month."""
    path = Path(path)
    frame = _read_text_csv(path, ["month", "oni", "season"])
    month = _parse_key(frame, path, "month")
    numbers = _parse_numbers(frame, path, ONI_BOUNDS)
    expected = month.dt.month().replace_strict(dict(enumerate(SEASONS, start=1)), return_dtype=pl.String)
    wrong = frame["season"] != expected
    if wrong.any():
        i = int(wrong.arg_true()[0])
        raise SourceError(
            f"{path}: line {i + 2}: season {frame['season'][i]!r} does not match centre month "
            f"{frame['month'][i]} (want {expected[i]!r})"
        )
    return pl.DataFrame({"month": month, "season": frame["season"], **numbers}, schema=ONI_SCHEMA).sort("month")
