"""NOAA CPC's Oceanic Niño Index text file (`oni.ascii.txt`), fetched and parsed strictly.

The file is a header `SEAS YR TOTAL ANOM` then one line per three-month season, e.g.
`  DJF 1950  24.72  -1.53`: the season, the year of its centre month, the mean sea temperature
of the Niño 3.4 region and its anomaly, which is the ONI. We keep the centre month, the season
and the anomaly, the same shape as `oni_monthly.csv`. NOAA revises past values when its
climatology is updated, so the whole file is re-read on every run.
"""

from __future__ import annotations

import math
import time
from datetime import date

import httpx
import polars as pl

from energy_platform.sources.base import SourceError
from energy_platform.sources.operating_files import ONI_BOUNDS, ONI_SCHEMA, SEASONS, check_value

DEFAULT_ONI_URL = "https://www.cpc.ncep.noaa.gov/data/indices/oni.ascii.txt"
HEADER = ["SEAS", "YR", "TOTAL", "ANOM"]
_CENTRE_MONTH = {season: i + 1 for i, season in enumerate(SEASONS)}


def parse_oni_text(text: str, origin: str = "oni.ascii.txt") -> pl.DataFrame:
    """`month` (centre month, first day), `season`, `oni`; any malformed line is refused by number."""
    lines = text.splitlines()
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is None:
        raise SourceError(f"{origin}: empty file")
    if lines[first].split() != HEADER:
        raise SourceError(f"{origin}: line {first + 1}: expected header {' '.join(HEADER)!r}, got {lines[first].strip()!r}")
    months: list[date] = []
    seasons: list[str] = []
    values: list[float] = []
    seen: set[date] = set()
    for n, line in enumerate(lines[first + 1 :], start=first + 2):
        fields = line.split()
        if not fields:
            continue
        where = f"{origin}: line {n}"
        if len(fields) != 4:
            raise SourceError(f"{where}: expected 4 fields 'SEAS YR TOTAL ANOM', got {line.strip()!r}")
        season, year, total, anom = fields
        if season not in _CENTRE_MONTH:
            raise SourceError(f"{where}: unknown season {season!r} (want one of {', '.join(SEASONS)})")
        if not (year.isdigit() and len(year) == 4):
            raise SourceError(f"{where}: unparsable year {year!r}")
        try:
            sst, oni = float(total), float(anom)
        except ValueError:
            raise SourceError(f"{where}: non-numeric value in {line.strip()!r}") from None
        if not math.isfinite(sst):
            raise SourceError(f"{where}: non-finite TOTAL {total!r}")
        problem = check_value(oni, "oni", ONI_BOUNDS["oni"])
        if problem:
            raise SourceError(f"{where}: ANOM: {problem}")
        month = date(int(year), _CENTRE_MONTH[season], 1)
        if month in seen:
            raise SourceError(f"{where}: duplicate season {season} {year}")
        seen.add(month)
        months.append(month)
        seasons.append(season)
        values.append(oni)
    return pl.DataFrame({"month": months, "season": seasons, "oni": values}, schema=ONI_SCHEMA).sort("month")


def fetch_oni(url: str, timeout: float = 30.0, attempts: int = 3, backoff_seconds: float = 1.0) -> pl.DataFrame:
    """GET the ONI text file and parse it; transient failures (timeouts, 5xx) are retried."""
    last = "no attempt made"
    for attempt in range(attempts):
        try:
            response = httpx.get(url, timeout=timeout, follow_redirects=True)
        except httpx.TransportError as exc:
            last = f"{type(exc).__name__}: {exc}"
        else:
            if response.status_code == 200:
                return parse_oni_text(response.text, origin=url)
            last = f"HTTP {response.status_code}"
            if response.status_code < 500:
                break
        if attempt + 1 < attempts:
            time.sleep(backoff_seconds * 2**attempt)
    raise SourceError(f"ONI {url}: could not be read ({last})")
