"""Where operating data comes from, chosen by the same `ENERGY_PLATFORM_SOURCE` as prices.

- `sample`: the shared files embedded in the package (gzipped), capped at a replay's `as_of` by
  the publication rules of `sources/publication.py`;
- `xm`: XM's API for demand, generation and hydrology, NOAA's text file for ONI;
- `csv:<file>`: `operating_daily.csv`, `hydrology_monthly.csv`, `oni_monthly.csv` beside the
  price file. `ENERGY_PLATFORM_OPERATING_DIR`, when set, names the folder instead, for any source.
  A file that is not there gives an empty series and a note saying so, never a failure: prices
  alone still make a platform.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Protocol

import polars as pl

from energy_platform.sources import publication
from energy_platform.sources.base import SourceError
from energy_platform.sources.operating_files import (
    DAILY_SCHEMA,
    HYDROLOGY_FILE,
    HYDROLOGY_SCHEMA,
    ONI_FILE,
    ONI_SCHEMA,
    OPERATING_DAILY_FILE,
    read_hydrology_csv,
    read_oni_csv,
    read_operating_daily_csv,
)

KINDS = ("operating_daily", "hydrology_monthly", "enso_oni")
FILES = {"operating_daily": OPERATING_DAILY_FILE, "hydrology_monthly": HYDROLOGY_FILE, "enso_oni": ONI_FILE}
SAMPLE_FILES = {kind: f"colombia_{name}.gz" for kind, name in FILES.items()}
SCHEMAS = {"operating_daily": DAILY_SCHEMA, "hydrology_monthly": HYDROLOGY_SCHEMA, "enso_oni": ONI_SCHEMA}
READERS = {"operating_daily": read_operating_daily_csv, "hydrology_monthly": read_hydrology_csv, "enso_oni": read_oni_csv}
HISTORY_START = date(2015, 1, 1)


class OperatingSource(Protocol):
    """Daily operating data, monthly hydrology and ONI; `note(kind)` says why a series is empty."""

    name: str

    def last_date(self) -> date: ...

    def operating_daily(self, start: date, end: date) -> pl.DataFrame: ...

    def hydrology_monthly(self, first_month: date, last_month: date) -> pl.DataFrame: ...

    def oni_monthly(self) -> pl.DataFrame: ...

    def note(self, kind: str) -> str | None: ...


def last_complete_month(last_day: date) -> date:
    """First day of the newest month whose every day is <= `last_day`."""
    next_day = last_day + timedelta(days=1)
    month = last_day.replace(day=1)
    if next_day.month == last_day.month:  # the month is still running
        month = (month - timedelta(days=1)).replace(day=1)
    return month


class FileOperatingSource:
    """The three CSV files (plain or .gz), each optional; read once, sliced per request.

    `as_of` (the last day of data, as in a replay) keeps only what was published by the next
    morning: days <= as_of, hydrology months ended by then, ONI usable by then.
    """

    def __init__(self, paths: dict[str, Path | None], name: str, as_of: date | None = None):
        self.paths = paths
        self.name = name
        self.as_of = as_of
        self._frames: dict[str, pl.DataFrame] = {}

    def _frame(self, kind: str) -> pl.DataFrame:
        if kind not in self._frames:
            path = self.paths.get(kind)
            frame = pl.DataFrame(schema=SCHEMAS[kind]) if path is None else READERS[kind](path)
            if self.as_of is not None:
                frame = frame.filter(_known_on(kind) <= publication.decision_day(self.as_of))
            self._frames[kind] = frame
        return self._frames[kind]

    def note(self, kind: str) -> str | None:
        if self.paths.get(kind) is None:
            return (
                f"no {FILES[kind]} for source {self.name}: the series stays empty "
                "(set ENERGY_PLATFORM_OPERATING_DIR to a folder holding it)"
            )
        return None

    def last_date(self) -> date:
        frame = self._frame("operating_daily")
        if frame.is_empty():
            return self.as_of or HISTORY_START - timedelta(days=1)
        return frame["date"].max()

    def operating_daily(self, start: date, end: date) -> pl.DataFrame:
        return self._frame("operating_daily").filter(pl.col("date").is_between(start, end))

    def hydrology_monthly(self, first_month: date, last_month: date) -> pl.DataFrame:
        return self._frame("hydrology_monthly").filter(pl.col("month").is_between(first_month, last_month))

    def oni_monthly(self) -> pl.DataFrame:
        return self._frame("enso_oni")


def _known_on(kind: str) -> pl.Expr:
    if kind == "operating_daily":
        return publication.daily_known_on("date")
    if kind == "hydrology_monthly":
        return publication.hydrology_known_on("month")
    return publication.oni_known_on("month")


def sample_paths() -> dict[str, Path]:
    root = resources.files("energy_platform.sources") / "data"
    return {kind: Path(str(root / name)) for kind, name in SAMPLE_FILES.items()}


def folder_paths(folder: str | Path, named: str | None = None) -> dict[str, Path | None]:
    """The operating files present in `folder` (plain or .gz); absent ones are None. With `named`
    (the setting or flag that gave the folder), a folder that does not exist or holds none of
    them is refused: a mistyped path ran the platform without operating data, silently."""
    folder = Path(folder)
    out: dict[str, Path | None] = {}
    for kind, name in FILES.items():
        candidates = [folder / name, folder / f"{name}.gz"]
        out[kind] = next((p for p in candidates if p.is_file()), None)
    if named and not folder.is_dir():
        raise SourceError(f"{named} {folder} is not a folder")
    if named and not any(out.values()):
        raise SourceError(f"{named} {folder} holds none of {', '.join(FILES.values())} (plain or .gz)")
    return out


class XmOperatingSource:
    """XM's API (demand, generation, hydrology) and NOAA's ONI file; data to yesterday in Bogota."""

    name = "xm"

    def __init__(self, base_url: str, oni_url: str, today: date | None = None, client=None):
        from energy_platform.sources.xm import BOGOTA, XmClient

        self.client = client or XmClient(base_url)
        self.oni_url = oni_url
        self._today = today or datetime.now(BOGOTA).date()

    def note(self, kind: str) -> str | None:
        return None

    def last_date(self) -> date:
        return self._today - timedelta(days=1)

    def operating_daily(self, start: date, end: date) -> pl.DataFrame:
        from energy_platform.sources.xm_operating import fetch_operating_daily

        end = min(end, self.last_date())
        if end < start:
            return pl.DataFrame(schema=DAILY_SCHEMA)
        return fetch_operating_daily(self.client, start, end)

    def hydrology_monthly(self, first_month: date, last_month: date) -> pl.DataFrame:
        from energy_platform.sources.xm_operating import fetch_hydrology_monthly

        last_month = min(last_month, last_complete_month(self.last_date()))
        if last_month < first_month:
            return pl.DataFrame(schema=HYDROLOGY_SCHEMA)
        return fetch_hydrology_monthly(self.client, first_month, last_month)

    def oni_monthly(self) -> pl.DataFrame:
        from energy_platform.sources.noaa_oni import fetch_oni

        return fetch_oni(self.oni_url)


def get_operating_source(
    spec: str,
    *,
    xm_url: str | None = None,
    oni_url: str | None = None,
    operating_dir: str | None = None,
    as_of: date | None = None,
    today: date | None = None,
) -> OperatingSource:
    """The operating source that goes with the price source `spec` (see the module docstring)."""
    if operating_dir:
        return FileOperatingSource(folder_paths(operating_dir, "ENERGY_PLATFORM_OPERATING_DIR"), name=f"csv:{operating_dir}",
                                   as_of=as_of)
    if spec == "sample":
        return FileOperatingSource(sample_paths(), name="sample", as_of=as_of)
    if spec == "xm":
        from energy_platform.sources.noaa_oni import DEFAULT_ONI_URL

        if xm_url is None:  # lazy: reading settings creates the platform's home folders
            from energy_platform.settings import get_settings

            xm_url = get_settings().xm_base_url
        return XmOperatingSource(xm_url, oni_url or DEFAULT_ONI_URL, today=today)
    if spec.startswith("csv:") and len(spec) > 4:
        folder = Path(spec[4:]).parent
        return FileOperatingSource(folder_paths(folder), name=f"csv:{folder}", as_of=as_of)
    raise SourceError(f"unknown source {spec!r}: use 'sample', 'xm' or 'csv:<path>'")
