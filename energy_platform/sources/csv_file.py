"""Hourly CSV files in the epftoolbox format: timestamp, price, then exogenous columns.

Strict on purpose: a file that would silently shift hours or drop days is refused with the
file, line and problem named, because a wrong hour in training data is invisible later.
"""

from __future__ import annotations

import gzip
import io
from datetime import date, timedelta
from pathlib import Path

import polars as pl

from energy_platform.sources.base import SourceError, with_calendar_columns

TS_FORMAT = "%Y-%m-%d %H:%M:%S"


def _clean_name(name: str, index: int) -> str:
    name = name.strip()
    if index == 0:
        return "ts"
    if index == 1:
        return "price"
    return name.lower().replace(" ", "_") or f"exog_{index}"


def read_hourly_csv(path: str | Path) -> pl.DataFrame:
    """Read and validate an hourly price CSV (plain or .gz)."""
    path = Path(path)
    if not path.exists():
        raise SourceError(f"{path}: file not found")
    raw = path.read_bytes()
    if path.suffix == ".gz":
        raw = gzip.decompress(raw)
    try:
        frame = pl.read_csv(io.BytesIO(raw), infer_schema=False)
    except Exception as exc:  # polars raises several types for unreadable files
        raise SourceError(f"{path}: not a readable CSV ({exc})") from exc
    if frame.width < 2:
        raise SourceError(
            f"{path}: line 1: expected a header 'timestamp,price[,exogenous...]', got {frame.columns}"
        )
    frame = frame.rename({c: _clean_name(c, i) for i, c in enumerate(frame.columns)})
    frame = frame.with_columns(pl.all().str.strip_chars())
    ts = frame["ts"].str.strptime(pl.Datetime("us"), TS_FORMAT, strict=False)
    bad_ts = ts.is_null() & frame["ts"].is_not_null()
    bad_ts = bad_ts | frame["ts"].is_null()
    if bad_ts.any():
        i = int(bad_ts.arg_true()[0])
        raise SourceError(
            f"{path}: line {i + 2}: unparsable timestamp {frame['ts'][i]!r} (want {TS_FORMAT})"
        )
    numeric = {}
    for col in frame.columns[1:]:
        values = frame[col].cast(pl.Float64, strict=False)
        bad = values.is_null() & frame[col].is_not_null() & (frame[col] != "")
        if bad.any():
            i = int(bad.arg_true()[0])
            raise SourceError(f"{path}: line {i + 2}: column {col!r}: non-numeric value {frame[col][i]!r}")
        numeric[col] = values
    frame = pl.DataFrame({"ts": ts, **numeric})
    dup = frame["ts"].is_duplicated()
    if dup.any():
        i = int(dup.arg_true()[0])
        raise SourceError(f"{path}: line {i + 2}: duplicate hour {frame['ts'][i]}")
    frame = frame.sort("ts")
    expected = pl.datetime_range(frame["ts"].min(), frame["ts"].max(), "1h", eager=True)
    if len(expected) != frame.height:
        missing = expected.filter(~expected.is_in(frame["ts"].implode()))
        shown = ", ".join(str(x) for x in missing.head(5).to_list())
        raise SourceError(f"{path}: {len(missing)} missing hours, first: {shown}")
    if frame["ts"].dt.minute().ne(0).any() or frame["ts"].dt.second().ne(0).any():
        raise SourceError(f"{path}: timestamps must be on the hour")
    return with_calendar_columns(frame)


class CsvSource:
    """A source over one hourly CSV file, read once and sliced per request."""

    def __init__(self, path: str | Path, name: str | None = None):
        self.path = Path(path)
        self.name = name or f"csv:{self.path}"
        self._frame: pl.DataFrame | None = None

    @property
    def frame(self) -> pl.DataFrame:
        if self._frame is None:
            self._frame = read_hourly_csv(self.path)
        return self._frame

    def first_date(self) -> date:
        return self.frame["date"].min()

    def last_date(self) -> date:
        last = self.frame["date"].max()
        # A partial last day is not a day the source "has".
        if self.frame.filter(pl.col("date") == last).height < 24:
            last = last - timedelta(days=1)
        return last

    def hourly_prices(self, start: date, end: date) -> pl.DataFrame:
        return self.frame.filter(pl.col("date").is_between(start, end))
