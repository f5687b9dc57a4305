"""The embedded sample: real XM hourly bolsa prices 2015-01-01..2024-12-31, shipped gzipped.

`as_of` lets a replay pretend the data ends on a given day, so the sample can stand in for the
live source when the platform's daily loop is replayed.
"""

from __future__ import annotations

from datetime import date
from importlib import resources

import polars as pl

from energy_platform.sources.csv_file import CsvSource

SAMPLE_FILE = "precio_bolsa_nacional_2015_2024.csv.gz"


def sample_path():
    return resources.files("energy_platform.sources") / "data" / SAMPLE_FILE


class SampleSource(CsvSource):
    def __init__(self, as_of: date | None = None):
        super().__init__(str(sample_path()), name="sample")
        self.as_of = as_of

    def last_date(self) -> date:
        last = super().last_date()
        return min(last, self.as_of) if self.as_of else last

    def hourly_prices(self, start: date, end: date) -> pl.DataFrame:
        return super().hourly_prices(start, min(end, self.last_date()))
