"""Data-quality properties of the stored operating data, one function per property.

Hard problems (a duplicate key, a value that cannot be true) are ERROR; soft ones (an unusual
but possible value, a missing day or month, a total XM left empty) are WARN. Missing periods are
reported, never filled. Each returns a `CheckOutcome` for the Dagster layer to translate.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from energy_platform.sources.publication import STALE_AFTER_MONTHS, decision_day, hydrology_stale_on, oni_stale_on
from energy_platform.warehouse.operating import TABLES
from energy_platform.warehouse.prices import latest_day
from energy_platform.warehouse.quality import MAX_EXAMPLES, CheckOutcome, _fetch


@dataclass(frozen=True)
class Range:
    """`hard`: outside it a value cannot be true (ERROR); `soft`: outside it, unusual (WARN)."""

    column: str
    hard: tuple[float, float]
    soft: tuple[float, float]


RANGES = {
    "operating_daily": [
        Range("demand_gwh", (0.0, 1_000.0), (100.0, 350.0)),  # 2015-2024: 135..244 GWh/day
        Range("generation_gwh", (0.0, 1_000.0), (100.0, 350.0)),
        Range("unserved_demand_mwh", (0.0, 1e6), (0.0, 20_000.0)),
        Range("exports_gwh", (0.0, 1_000.0), (0.0, 30.0)),
        Range("imports_gwh", (0.0, 1_000.0), (0.0, 30.0)),
    ],
    "hydrology_monthly": [
        Range("inflows_pct_of_historical_mean", (0.0, 1_000.0), (20.0, 300.0)),  # 2015-2024: 46..173 %
        Range("reservoir_useful_volume_pct", (0.0, 100.0), (10.0, 100.0)),  # 2015-2024: 31..87 %
    ],
    "enso_oni": [Range("oni", (-5.0, 5.0), (-3.0, 3.0))],  # record: -2.0..+2.6 degC since 1950
}
REQUIRED = {
    "operating_daily": ["demand_gwh", "generation_gwh"],
    "hydrology_monthly": ["inflows_pct_of_historical_mean", "reservoir_useful_volume_pct"],
    "enso_oni": ["oni"],
}
SEASONS_SQL = "['DJF','JFM','FMA','MAM','AMJ','MJJ','JJA','JAS','ASO','SON','OND','NDJ']"


def unique_keys(path: str | Path, kind: str) -> CheckOutcome:
    """No day or month is stored twice (the primary key says so; this proves it on the data)."""
    table = TABLES[kind]
    rows = _fetch(path, f"SELECT {table.key}, count(*) FROM {table.name} GROUP BY 1 HAVING count(*) > 1 ORDER BY 1")
    if not rows:
        return CheckOutcome(True, "error", f"Every {table.key} of {table.name} is stored once.", {"duplicate_keys": 0})
    examples = {str(k): n for k, n in rows[:MAX_EXAMPLES]}
    return CheckOutcome(False, "error", f"{len(rows)} duplicated {table.key}(s) in {table.name}", {"duplicate_keys": len(rows), "examples": examples})


def within_plausible_ranges(path: str | Path, kind: str) -> CheckOutcome:
    """Every value inside its hard range (else ERROR) and, preferably, its soft range (else WARN)."""
    table = TABLES[kind]
    hard_sql, soft_sql = [], []
    for r in RANGES[kind]:
        c = r.column
        hard_sql.append(f"({c} IS NOT NULL AND (NOT isfinite({c}) OR {c} < {r.hard[0]} OR {c} > {r.hard[1]}))")
        soft_sql.append(f"({c} < {r.soft[0]} OR {c} > {r.soft[1]})")
        if kind == "operating_daily" and c in REQUIRED[kind]:
            hard_sql.append(f"({c} = 0)")  # no day of the SIN has zero demand or generation
    if kind == "enso_oni":  # the season must be the one centred on the month
        hard_sql.append(f"(season <> {SEASONS_SQL}[month(month)])")
    hard, soft = " OR ".join(hard_sql), " OR ".join(soft_sql)
    columns = ", ".join(r.column for r in RANGES[kind])
    rows = _fetch(
        path,
        f"SELECT {table.key}, {columns}, ({hard}) AS hard FROM {table.name} "
        f"WHERE ({hard}) OR coalesce({soft}, FALSE) ORDER BY hard DESC, {table.key}",
    )
    n_hard = sum(1 for r in rows if r[-1])
    bounds = {r.column: f"hard {r.hard[0]:g}..{r.hard[1]:g}, usual {r.soft[0]:g}..{r.soft[1]:g}" for r in RANGES[kind]}
    examples = {str(r[0]): dict(zip([x.column for x in RANGES[kind]], r[1:-1], strict=True)) for r in rows[:MAX_EXAMPLES]}
    meta = {"outside_usual_range": len(rows), "impossible": n_hard, "bounds": bounds, "examples": examples}
    if not rows:
        return CheckOutcome(True, "warn", f"Every value of {table.name} is within its usual range.", meta)
    severity = "error" if n_hard else "warn"
    return CheckOutcome(False, severity, f"{len(rows)} row(s) of {table.name} outside the usual range ({n_hard} impossible)", meta)


def required_values_present(path: str | Path, kind: str, severity: str = "warn") -> CheckOutcome:
    """The main values of every stored row are present (XM leaves an incomplete day's total empty)."""
    table = TABLES[kind]
    cols = REQUIRED[kind]
    rows = _fetch(path, f"SELECT {table.key}, {', '.join(cols)} FROM {table.name} WHERE {' OR '.join(f'{c} IS NULL' for c in cols)} ORDER BY 1")
    if not rows:
        return CheckOutcome(True, severity, f"No stored row of {table.name} lacks {', '.join(cols)}.", {"rows_with_nulls": 0})
    examples = {str(r[0]): [c for c, v in zip(cols, r[1:], strict=True) if v is None] for r in rows[:MAX_EXAMPLES]}
    return CheckOutcome(
        False, severity, f"{len(rows)} row(s) of {table.name} without {' or '.join(cols)} (left empty, never filled)",
        {"rows_with_nulls": len(rows), "examples (key: empty columns)": examples},
    )


def missing_periods(path: str | Path, kind: str) -> CheckOutcome:
    """Days (or months) between the first and last stored one that have no row: reported, never filled.

    For hydrology, months averaged over fewer days than the month has are reported too.
    """
    table = TABLES[kind]
    step = "1 DAY" if table.key == "date" else "1 MONTH"
    unit = "day" if table.key == "date" else "month"
    rows = _fetch(
        path,
        f"""
        WITH bounds AS (SELECT min({table.key}) AS lo, max({table.key}) AS hi FROM {table.name}),
        periods AS (SELECT p::DATE AS k FROM bounds, range(lo::TIMESTAMP, hi::TIMESTAMP + INTERVAL {step}, INTERVAL {step}) t(p))
        SELECT k FROM periods LEFT JOIN {table.name} s ON s.{table.key} = periods.k WHERE s.{table.key} IS NULL ORDER BY k
        """,
    )
    missing = [str(r[0]) for r in rows]
    short: list[str] = []
    if kind == "hydrology_monthly":
        short = [
            f"{r[0]} ({r[1]} days)"
            for r in _fetch(path, "SELECT month, days_observed FROM raw.hydrology_monthly WHERE days_observed < day(last_day(month)) ORDER BY 1")
        ]
    meta = {f"missing_{unit}s": len(missing), "examples": missing[:MAX_EXAMPLES]}
    if kind == "hydrology_monthly":
        meta.update({"incomplete_months": len(short), "incomplete_examples": short[:MAX_EXAMPLES]})
    if not missing and not short:
        return CheckOutcome(True, "warn", f"No {unit} is missing between the first and last stored one of {table.name}.", meta)
    parts = [f"{len(missing)} {unit}(s) missing" + (f", first: {', '.join(missing[:5])}" if missing else "")] if missing else []
    if short:
        parts.append(f"{len(short)} month(s) averaged over part of the month: {', '.join(short[:5])}")
    return CheckOutcome(False, "warn", f"{table.name}: " + "; ".join(parts) + " (left missing, never filled)", meta)


STALE_ON = {"hydrology_monthly": hydrology_stale_on, "enso_oni": oni_stale_on}


def current_at_latest_prices(path: str | Path, kind: str) -> CheckOutcome:
    """The newest stored value is still read by the forecast made the morning after the newest
    price day: a daily series holds that day, a monthly one is not two publications overdue
    (`publication.STALE_AFTER_MONTHS`). WARN otherwise: the forecasts go on reading the series as
    missing and a fit leaves it out, so a stopped source must be seen, not found in the accuracy."""
    table = TABLES[kind]
    newest = _fetch(path, f"SELECT max({table.key}) FROM {table.name}")[0][0]
    prices_end = latest_day(path)
    meta = {"newest": str(newest), "newest_price_day": str(prices_end)}
    if newest is None or prices_end is None:
        return CheckOutcome(True, "warn", f"Nothing to compare: {table.name} or raw.prices_hourly is empty.", meta)
    morning = decision_day(prices_end)
    if kind == "operating_daily":
        current, rule = newest >= prices_end, f"the newest price day {prices_end}"
    else:
        stale_on = pl.select(STALE_ON[kind](pl.lit(newest))).item()
        current, rule = morning < stale_on, f"{STALE_AFTER_MONTHS} newer months overdue from {stale_on}"
        meta["unknown_from"] = str(stale_on)
    if current:
        return CheckOutcome(True, "warn", f"{table.name} is current: its newest {table.key} {newest} is read on {morning}.", meta)
    return CheckOutcome(
        False, "warn",
        f"{table.name} has stopped: its newest {table.key} is {newest} ({rule}); the forecast of {morning} reads it as "
        "missing and a fit leaves it out (materialize the operating assets)",
        meta,
    )

