"""Where hourly prices come from: `sample` (embedded), `xm` (live API) or `csv:<path>`."""

from __future__ import annotations

from energy_platform.sources.base import PriceSource, SourceError
from energy_platform.sources.csv_file import DEFAULT_CEILING, DEFAULT_FLOOR, CsvFormatError, CsvSource, read_hourly_csv
from energy_platform.sources.sample import SampleSource


def get_source(spec: str, xm_url: str | None = None, price_floor: float | None = DEFAULT_FLOOR,
               price_ceiling: float = DEFAULT_CEILING) -> PriceSource:
    """Build the source named by an `ENERGY_PLATFORM_SOURCE` value (`xm_url` overrides settings).

    `price_floor` applies to `csv:` files (`ENERGY_PLATFORM_PRICE_FLOOR`; None for markets with
    negative prices) and `price_ceiling` (`ENERGY_PLATFORM_PRICE_CEILING`) to `csv:` files; the
    sample and XM carry Colombia's floor of 0.
    """
    if spec == "sample":
        return SampleSource()
    if spec == "xm":
        from energy_platform.sources.xm import XmSource

        return XmSource(base_url=xm_url)
    if spec.startswith("csv:") and len(spec) > 4:
        return CsvSource(spec[4:], floor=price_floor, ceiling=price_ceiling)
    raise SourceError(f"unknown source {spec!r}: use 'sample', 'xm' or 'csv:<path>'")


__all__ = ["CsvFormatError", "CsvSource", "PriceSource", "SampleSource", "SourceError", "get_source", "read_hourly_csv"]
