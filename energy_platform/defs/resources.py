"""Resources: where the warehouse lives and which source feeds it."""

from __future__ import annotations

from datetime import date

import dagster as dg

from energy_platform.sources import PriceSource, get_source
from energy_platform.sources.sample import SampleSource

WAREHOUSE_POOL = "duckdb_warehouse"  # every DuckDB-writing step; limited to 1 in dagster.yaml


class WarehouseResource(dg.ConfigurableResource):
    """The pipeline's DuckDB file; connections are opened per write, never held."""

    path: str


class SourceResource(dg.ConfigurableResource):
    """The active price source (`sample`, `xm`, `csv:<path>`); `as_of` caps the sample for replays."""

    spec: str = "sample"
    as_of: str | None = None
    xm_url: str | None = None
    price_floor: float | None = 0.0

    def get(self) -> PriceSource:
        if self.spec == "sample" and self.as_of:
            return SampleSource(as_of=date.fromisoformat(self.as_of))
        return get_source(self.spec, xm_url=self.xm_url, price_floor=self.price_floor)
