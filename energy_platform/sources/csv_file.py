"""Hourly CSV files in the epftoolbox format: timestamp, price, then exogenous columns.

Strict on purpose: a file that would silently shift hours, drop days or carry an impossible
value is refused with the file, line and problem named, because a wrong value in training data
is invisible later (an `inf` once reached the warehouse and flowed into features and training).

Decisions, each with its reason:
- Timestamps are naive local hours, `YYYY-MM-DD HH:MM:SS` (epftoolbox's) or ISO 8601's other
  spellings of it ('T' for the space, no seconds); one with a time zone is refused rather than
  converted (which zone the platform should read it in is the file's owner's call), and so is a
  row off the hour (quarter-hourly data is not hourly data with gaps).
- Part-days at the file's ends (an export cut at the current hour) are left out, with a
  warning: the platform stores, forecasts and scores whole days. A gap inside is refused.
- A header is required. A file whose first line parses as a timestamp and a number is refused
  rather than read as header-less: the format names its exogenous columns in the header, and a
  file starting with data is as often one cut from the top or glued from pieces as a deliberate
  header-less export. The error says to add the header line.
- Header names are checked, since the format is positional and a column swap would store load
  as price: the first column is unnamed or a time name (date, timestamp, ...), the second names
  a price (price, precio, LMP, ...), no later column names a price.
- Every hour needs a finite price: an empty cell, NaN or inf is refused (the warehouse keeps
  null only for hours the live source did not publish). Exogenous cells may be empty, never
  non-finite.
- Except the days ahead: a file with exogenous columns may end with days after its last priced
  hour whose price is empty and whose exogenous forecasts are given (tomorrow's load and wind
  forecasts, known today). They are what a forecast of tomorrow reads (`forecasting/features.py`:
  exogenous lag H - 1), so they are kept, with a null price, and each row must carry an exogenous
  value. A day cut mid-day (priced to the current hour) is a day ahead too: its priced hours are a
  part-day, left out with a warning.
- `floor` (default 0.0, Colombia's bolsa has no negative prices) refuses prices below it;
  `floor=None` for markets with negative prices (PJM has 93 such hours in 2013-2018).
- `ceiling` (default 1e6) refuses absurd magnitudes: 1e6 is 200x the highest day-ahead cap we
  know of (EU SDAC +4,000 EUR/MWh, ERCOT 5,000 USD/MWh) and ~350x Colombia's highest price on
  record in COP/kWh, so only a corrupt cell or a wrong unit reaches it. The warehouse check warns
  much earlier (ceiling / 100: 10,000 COP/kWh). A market priced in a smaller unit (COP/MWh: XM's
  2015 peak is 2.8e6) sets `ENERGY_PLATFORM_PRICE_CEILING` (the file and the checks follow it).
"""

from __future__ import annotations

import logging
import re
from datetime import date, datetime, timedelta
from pathlib import Path

import polars as pl

from energy_platform.sources.base import BASE_COLUMNS, SourceError, with_calendar_columns
from energy_platform.sources.csv_text import read_csv_text

log = logging.getLogger(__name__)

TS_FORMAT = "%Y-%m-%d %H:%M:%S"
TS_WANTED = "YYYY-MM-DD HH:MM[:SS], space or 'T', no time zone"
# ISO 8601's other spellings of the same naive hour, rewritten to TS_FORMAT before parsing
_TS_SPELLINGS = ((r"^(\d{4}-\d{2}-\d{2})T", "${1} "), (r"^(\d{4}-\d{2}-\d{2} \d{2}:\d{2})$", "${1}:00"))
DEFAULT_FLOOR = 0.0
DEFAULT_CEILING = 1e6
_TIME_NAME = re.compile(r"date|time|fecha|hora|hour|period|^ts$", re.IGNORECASE)
_PRICE_NAME = re.compile(r"price|precio|\blmp\b|\bspot\b", re.IGNORECASE)
_HEADER_HINT = "want a header 'timestamp,price[,exogenous...]'"


class CsvFormatError(SourceError):
    """The CSV file breaks the hourly format; the message names file, line and problem."""


def _clean_name(name: str, index: int) -> str:
    name = name.strip()
    if index == 0:
        return "ts"
    if index == 1:
        return "price"
    return name.lower().replace(" ", "_") or f"exog_{index}"


def _normalised_ts(ts: pl.Series) -> pl.Series:
    for pattern, replacement in _TS_SPELLINGS:
        ts = ts.str.replace(pattern, replacement)
    return ts


def _is_timestamp(text: str) -> bool:
    try:
        datetime.strptime(_normalised_ts(pl.Series([text.strip()]))[0], TS_FORMAT)
        return True
    except ValueError:
        return False


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def _check_header(path: Path, names: list[str]) -> None:
    """Refuse a missing header (data on line 1) and header names that contradict the format."""
    fail = lambda problem: CsvFormatError(f"{path}: line 1: {problem}")  # noqa: E731
    if len(names) < 2:
        raise fail(f"expected at least two columns, got {names}; {_HEADER_HINT}")
    first, second = names[0].strip(), names[1].strip()
    if _is_timestamp(first) and _is_number(second):
        raise fail(
            f"the first line is data ({first!r}, {second!r}), not a header: the file has no header "
            f"line or lost it; add one ({_HEADER_HINT})"
        )
    if first and not _TIME_NAME.search(first):
        raise fail(f"first column is named {first!r}: it must be the timestamp (unnamed or e.g. 'Date'); {_HEADER_HINT}")
    if not _PRICE_NAME.search(second):
        raise fail(f"second column is named {second!r}: it must be the price (e.g. 'Price'); {_HEADER_HINT}")
    for name in names[2:]:
        if _PRICE_NAME.search(name):
            raise fail(f"column {name.strip()!r} names a price but only the second column is the price; {_HEADER_HINT}")
    cleaned = [_clean_name(n, i) for i, n in enumerate(names)]
    dupes = sorted({n for n in cleaned if cleaned.count(n) > 1})
    if dupes:
        raise fail(f"duplicate column name(s) {dupes}")


def _first_bad(mask: pl.Series) -> int | None:
    return int(mask.arg_true()[0]) if mask.any() else None


def _check_prices(path: Path, raw: pl.Series, values: pl.Series, floor: float | None, ceiling: float,
                  ahead: pl.Series) -> None:
    """Every price present, finite, at or above `floor`, below `ceiling` in magnitude; rows of the
    days `ahead` (no price yet, exogenous forecasts only) are not prices."""
    rules = [
        (raw.is_null() | (raw == ""), "empty price: every hour needs a value (leave no cell blank)"),
        (values.is_nan() | values.is_infinite(), "non-finite price {raw!r}"),
    ]
    if floor is not None:
        rules.append(
            (values < floor, f"price {{value}} is below the floor {floor:g} (a market with negative prices: "
                             "ENERGY_PLATFORM_PRICE_FLOOR=none, or `backtest --price-floor none`)")
        )
    rules.append((values.abs() >= ceiling, f"implausible price {{value}} (magnitude >= {ceiling:g}: a corrupt cell or a wrong unit)"))
    for mask, problem in rules:
        mask = mask.fill_null(False) & ~ahead
        i = _first_bad(mask)
        if i is not None:
            count = int(mask.sum())
            more = f" ({count - 1} more such rows)" if count > 1 else ""
            text = problem.format(raw=raw[i], value=values[i])
            raise CsvFormatError(f"{path}: line {i + 2}: column 'price': {text}{more}")


def read_hourly_csv(
    path: str | Path, *, floor: float | None = DEFAULT_FLOOR, ceiling: float = DEFAULT_CEILING,
    notes: list[str] | None = None,
) -> pl.DataFrame:
    """Read and validate an hourly price CSV (plain or .gz); see the module docstring for the rules.

    What is read but left out (part-days at the file's ends) is logged and, given `notes`, appended
    to it: the ingestion run reports it where its operator looks (the run's log and metadata)."""
    path = Path(path)
    if not path.exists():
        raise SourceError(f"{path}: file not found")
    if not ceiling > 0:  # inf: no bound (the partitions read the dates only)
        raise ValueError(f"ceiling must be a positive number, got {ceiling}")
    frame = read_csv_text(path, CsvFormatError, empty_hint=f"{_HEADER_HINT} and one row per hour")
    _check_header(path, frame.columns)
    header = frame.columns
    frame = frame.rename({c: _clean_name(c, i) for i, c in enumerate(frame.columns)})
    derived = [c for c in frame.columns[2:] if c in BASE_COLUMNS]
    if derived:  # it would be overwritten by the calendar column of the same name
        raise CsvFormatError(f"{path}: line 1: exogenous column {derived[0]!r} has the name of a column derived from the "
                             f"timestamp ({', '.join(BASE_COLUMNS)}): rename it, or leave it out")
    frame = frame.with_columns(pl.all().str.strip_chars())
    blank = frame.select(pl.all_horizontal(pl.all().fill_null("").eq("")).alias("blank"))["blank"]
    trailing = blank.reverse().cum_min().reverse()  # blank lines at the end: an editor's newline
    i = _first_bad(blank & ~trailing)
    if i is not None:
        raise CsvFormatError(f"{path}: line {i + 2}: an empty line (no timestamp, no price)")
    frame = frame.filter(~trailing)
    if frame.height == 0:
        raise CsvFormatError(f"{path}: line 2: no data rows after the header {header}")
    empty = [c for c in frame.columns[2:] if frame[c].fill_null("").eq("").all()]
    if empty:  # a trailing comma on every line, a series the export left blank: nothing to read
        note = f"{path}: exogenous column(s) {', '.join(map(repr, empty))} empty on every row: left out"
        log.warning(note)
        if notes is not None:
            notes.append(note)
        frame = frame.drop(empty)
    ts = _normalised_ts(frame["ts"]).str.strptime(pl.Datetime("us"), TS_FORMAT, strict=False)
    i = _first_bad(ts.is_null())
    if i is not None:
        raise CsvFormatError(f"{path}: line {i + 2}: unparsable timestamp {frame['ts'][i]!r} (want {TS_WANTED})")
    # named here, not later as a count of missing hours: a quarter-hourly file is not "0 missing hours"
    i = _first_bad(ts.dt.minute().ne(0) | ts.dt.second().ne(0) | ts.dt.microsecond().ne(0))
    if i is not None:
        raise CsvFormatError(f"{path}: line {i + 2}: timestamp {frame['ts'][i]!r} is not on the hour (one row per hour wanted)")
    ahead = _days_ahead(path, frame, ts, notes)
    numeric = {}
    for col in frame.columns[1:]:
        values = frame[col].cast(pl.Float64, strict=False)
        i = _first_bad(values.is_null() & frame[col].is_not_null() & (frame[col] != ""))
        if i is not None:
            raise CsvFormatError(f"{path}: line {i + 2}: column {col!r}: non-numeric value {frame[col][i]!r}")
        if col == "price":
            _check_prices(path, frame[col], values, floor, ceiling, ahead)
        else:
            i = _first_bad((values.is_nan() | values.is_infinite()).fill_null(False))
            if i is not None:
                raise CsvFormatError(f"{path}: line {i + 2}: column {col!r}: non-finite value {frame[col][i]!r}")
        numeric[col] = values
    numeric["price"] = pl.Series("price", numeric["price"]).set(ahead, None)  # a cut day's first prices: a part-day
    frame = pl.DataFrame({"ts": ts, **numeric})
    i = _first_bad(frame["ts"].is_duplicated())
    if i is not None:
        raise CsvFormatError(f"{path}: line {i + 2}: duplicate hour {frame['ts'][i]}")
    frame = frame.sort("ts")
    expected = pl.datetime_range(frame["ts"].min(), frame["ts"].max(), "1h", eager=True)
    if len(expected) != frame.height:
        missing = expected.filter(~expected.is_in(frame["ts"].implode()))
        shown = ", ".join(str(x) for x in missing.head(5).to_list())
        raise CsvFormatError(f"{path}: {len(missing)} missing hours, first: {shown}")
    return with_calendar_columns(_whole_days(path, frame, notes))


def _days_ahead(path: Path, frame: pl.DataFrame, ts: pl.Series, notes: list[str] | None = None) -> pl.Series:
    """The rows after the file's last whole priced day, when the file has exogenous columns and
    rows without a price at its end: the days ahead, whose forecasts are known before their
    prices. An export cut mid-day leaves that day's first hours priced: they are left out (a
    part-day, as in a prices-only file) and the day is a day ahead. All False for a prices-only file."""
    empty = frame["price"].is_null() | (frame["price"] == "")
    if frame.width <= 2 or not empty.any() or empty.all():
        return pl.Series([False] * frame.height)
    last_priced = ts.filter(~empty).max()
    if not (ts > last_priced).any():
        return pl.Series([False] * frame.height)
    first_ahead = last_priced + timedelta(hours=1)
    if last_priced.hour != 23:  # the day of the cut: its priced hours are a part-day
        first_ahead = datetime.combine(last_priced.date(), datetime.min.time())
        note = (f"{path}: the part-day {last_priced.date()} is left out of the prices ({last_priced.hour + 1} priced "
                "hours); its exogenous forecasts are kept as a day ahead")
        log.warning(note)
        if notes is not None:
            notes.append(note)
    ahead = ts >= first_ahead
    exog = frame.select(pl.all_horizontal([pl.col(c).is_null() | (pl.col(c) == "") for c in frame.columns[2:]]))
    i = _first_bad(ahead & exog.to_series())
    if i is not None:
        raise CsvFormatError(f"{path}: line {i + 2}: column 'price': empty price: every hour needs a value "
                             "(a day ahead of the prices carries its exogenous forecasts)")
    return ahead


def _whole_days(path: Path, frame: pl.DataFrame, notes: list[str] | None = None) -> pl.DataFrame:
    """The file's whole days. An export cut mid-day (up to the current hour, or from the first
    hour published) is common; the platform stores, forecasts and scores days, and a part-day
    would fail the warehouse's 24-hours check, which blocks every ingestion run after it."""
    first, last = frame["ts"][0], frame["ts"][-1]
    start = first if first.hour == 0 else datetime.combine(first.date() + timedelta(days=1), datetime.min.time())
    end = last if last.hour == 23 else datetime.combine(last.date(), datetime.min.time()) - timedelta(hours=1)
    if start > end:
        raise CsvFormatError(f"{path}: no whole day of 24 hours between {first} and {last}")
    if (start, end) != (first, last):
        note = f"{path}: the part-days at its ends are left out ({start}..{end} read of {first}..{last})"
        log.warning(note)
        if notes is not None:
            notes.append(note)
    return frame.filter(pl.col("ts").is_between(start, end))


class CsvSource:
    """A source over one hourly CSV file, read once and sliced per request.

    `floor`/`ceiling` are the price bounds of `read_hourly_csv`; the file is first read when a
    date or a price is asked for, so a bad file fails the asset that reads it, not the import.
    """

    local = True

    def __init__(
        self,
        path: str | Path,
        name: str | None = None,
        *,
        floor: float | None = DEFAULT_FLOOR,
        ceiling: float = DEFAULT_CEILING,
    ):
        self.path = Path(path)
        self.name = name or f"csv:{self.path}"
        self.floor = floor
        self.ceiling = ceiling
        self._frame: pl.DataFrame | None = None
        self.notes: list[str] = []  # what reading the file left out (part-days), for the ingestion run to report

    @property
    def frame(self) -> pl.DataFrame:
        if self._frame is None:
            self._frame = read_hourly_csv(self.path, floor=self.floor, ceiling=self.ceiling, notes=self.notes)
        return self._frame

    def first_date(self) -> date:
        return self.frame["date"].min()

    def last_date(self) -> date:
        """The last day with prices (the days ahead of them carry exogenous forecasts only)."""
        priced = self.frame.filter(pl.col("price").is_not_null())
        last = priced["date"].max()
        # A partial last day is not a day the source "has".
        if priced.filter(pl.col("date") == last).height < 24:
            last = last - timedelta(days=1)
        return last

    def data_end(self) -> date:
        """The last day with any row: after `last_date` when the file carries days ahead."""
        ahead = self.frame.filter(pl.col("price").is_null())["date"]
        return max(ahead.max(), self.last_date()) if ahead.len() else self.last_date()

    def hourly_prices(self, start: date, end: date) -> pl.DataFrame:
        return self.frame.filter(pl.col("date").is_between(start, end))
