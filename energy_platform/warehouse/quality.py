"""Data-quality properties of the stored raw prices, one function per property.

Each returns a `CheckOutcome`; the Dagster layer only translates it into an asset check result,
so the rules are testable on a plain DuckDB file. Hard rules (a missing hour, a null or
non-finite price, a duplicated hour, a price below the floor or absurd) fail at "error" and the
Dagster layer makes them blocking; soft ones (an unusual but possible price, staleness) warn.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Literal

from energy_platform.settings import DEFAULT_PRICE_UNIT
from energy_platform.warehouse.db import connect

MAX_EXAMPLES = 10
PLAUSIBLE_MAX_PRICE = 10_000.0  # COP/kWh; the scarcity-era peak is ~2,800
ABSURD_PRICE = 1e6  # a corrupt value or a wrong unit, never a price: same bound as the CSV reader


@dataclass(frozen=True)
class CheckOutcome:
    passed: bool
    severity: Literal["warn", "error"]
    description: str
    metadata: dict = field(default_factory=dict)


def _fetch(path: str | Path, sql: str, params: list | None = None) -> list[tuple]:
    with connect(path, read_only=True) as conn:
        return conn.execute(sql, params or []).fetchall()


def every_day_has_24_hours(path: str | Path) -> CheckOutcome:
    """Every day between the first and last stored day has exactly 24 rows with a price."""
    rows = _fetch(
        path,
        """
        WITH bounds AS (SELECT min(date) AS lo, max(date) AS hi FROM raw.prices_hourly),
        days AS (
            SELECT d::DATE AS day FROM bounds, range(lo::TIMESTAMP, hi::TIMESTAMP + INTERVAL 1 DAY, INTERVAL 1 DAY) t(d)
        )
        SELECT day, coalesce(count(p.price), 0) AS hours
        FROM days LEFT JOIN raw.prices_hourly p ON p.date = days.day
        GROUP BY day HAVING coalesce(count(p.price), 0) <> 24 ORDER BY day
        """,
    )
    examples = {str(day): int(hours) for day, hours in rows[:MAX_EXAMPLES]}
    if not rows:
        return CheckOutcome(True, "error", "Every stored day has 24 priced hours.", {"incomplete_days": 0})
    return CheckOutcome(
        False,
        "error",
        f"{len(rows)} day(s) without 24 priced hours, first: {', '.join(examples)}",
        {"incomplete_days": len(rows), "examples (day: priced hours)": examples},
    )


def no_null_or_nonfinite_price(path: str | Path) -> CheckOutcome:
    rows = _fetch(
        path,
        "SELECT ts FROM raw.prices_hourly WHERE price IS NULL OR NOT isfinite(price) ORDER BY ts",
    )
    examples = [str(r[0]) for r in rows[:MAX_EXAMPLES]]
    if not rows:
        return CheckOutcome(True, "error", "No null or non-finite price.", {"bad_hours": 0})
    return CheckOutcome(
        False, "error", f"{len(rows)} hour(s) with a null or non-finite price", {"bad_hours": len(rows), "examples": examples}
    )


def no_duplicate_hours(path: str | Path) -> CheckOutcome:
    """Each hour is stored once and its `ts` agrees with its `date` and `hour`.

    The primary key is (date, hour); a `ts` that disagrees with them would put two rows on one
    timestamp, which features and forecasts key on.
    """
    rows = _fetch(
        path,
        """
        SELECT ts, count(*) AS n, bool_or(ts <> date + hour * INTERVAL 1 HOUR) AS inconsistent
        FROM raw.prices_hourly GROUP BY ts
        HAVING count(*) > 1 OR bool_or(ts <> date + hour * INTERVAL 1 HOUR) ORDER BY ts
        """,
    )
    examples = {str(r[0]): f"{r[1]} row(s){', ts disagrees with date/hour' if r[2] else ''}" for r in rows[:MAX_EXAMPLES]}
    if not rows:
        return CheckOutcome(True, "error", "Each hour is stored once, with a consistent timestamp.", {"bad_hours": 0})
    return CheckOutcome(
        False, "error", f"{len(rows)} hour(s) stored twice or with a timestamp that disagrees with date/hour",
        {"bad_hours": len(rows), "examples": examples},
    )


def prices_within_plausible_bounds(
    path: str | Path, upper: float = PLAUSIBLE_MAX_PRICE, floor: float | None = 0.0, absurd: float = ABSURD_PRICE,
    unit: str = DEFAULT_PRICE_UNIT,
) -> CheckOutcome:
    """0 < p < upper, else WARN; ERROR when p is null, non-finite, below `floor` or |p| >= `absurd`.

    `floor=None` is for markets with negative prices: a negative price then only warns. `unit` only
    labels the message (the bounds are numbers: 10,000 is implausible in COP/kWh and in EUR/MWh).
    """
    rows = _fetch(
        path,
        """
        SELECT ts, price,
               (price IS NULL OR NOT isfinite(price) OR price < coalesce(?, '-inf'::DOUBLE) OR abs(price) >= ?) AS hard
        FROM raw.prices_hourly
        WHERE price IS NULL OR NOT isfinite(price) OR price <= 0 OR price >= ?
        ORDER BY hard DESC, ts
        """,
        [floor, absurd, upper],
    )
    hard = sum(1 for r in rows if r[2])
    examples = {str(r[0]): r[1] for r in rows[:MAX_EXAMPLES]}
    floor_text = "none" if floor is None else f"{floor:g}"
    meta = {
        "out_of_bounds_hours": len(rows), "negative_null_or_nan_hours": hard, "bounds": f"0 < p < {upper:,.6g}",
        "hard_bounds": f"floor {floor_text} <= p < {absurd:g}, finite", "examples": examples,
    }
    if not rows:
        return CheckOutcome(True, "warn", f"All prices within 0 < p < {upper:,.6g} {unit}.", meta)
    severity = "error" if hard else "warn"
    return CheckOutcome(
        False, severity,
        f"{len(rows)} hour(s) outside 0 < p < {upper:,.6g} {unit} ({hard} null, non-finite, below the floor {floor_text} or >= {absurd:g})",
        meta,
    )


def latest_partition_fresh(path: str | Path, expected_last: date, warn_lag_days: int = 0, error_lag_days: int = 2) -> CheckOutcome:
    """The latest stored day against the last day the source should have (its expected lag)."""
    latest = _fetch(path, "SELECT max(date) FROM raw.prices_hourly")[0][0]
    if latest is None:
        return CheckOutcome(False, "error", "No prices stored yet.", {"expected_last_date": str(expected_last)})
    lag = (expected_last - latest).days
    meta = {"latest_stored_date": str(latest), "expected_last_date": str(expected_last), "lag_days": lag}
    if lag <= warn_lag_days:
        return CheckOutcome(True, "warn", f"Latest stored day {latest} is as fresh as the source allows.", meta)
    severity = "error" if lag > error_lag_days else "warn"
    return CheckOutcome(False, severity, f"Latest stored day {latest} is {lag} day(s) behind {expected_last}.", meta)
