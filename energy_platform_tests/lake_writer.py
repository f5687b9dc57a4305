"""A writer process of the DuckLake concurrency test: imports only what a write needs (spawned)."""

from __future__ import annotations

from datetime import date

from energy_platform.sources.sample import SampleSource
from energy_platform.warehouse.prices import replace_prices


def write_january(location: str, writer: int, times: int = 2) -> int:
    frame = SampleSource().hourly_prices(date(2024, 1, 1), date(2024, 1, 31))
    for _ in range(times):
        replace_prices(location, frame, date(2024, 1, 1), date(2024, 1, 31), f"writer-{writer}")
    return writer
