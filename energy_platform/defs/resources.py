"""Resources: where the warehouse lives and which source feeds it."""

from __future__ import annotations

from datetime import date

import dagster as dg

from energy_platform.sources import PriceSource, get_source
from energy_platform.sources.operating import OperatingSource, get_operating_source
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
    oni_url: str | None = None
    operating_dir: str | None = None

    def get(self) -> PriceSource:
        if self.spec == "sample" and self.as_of:
            return SampleSource(as_of=date.fromisoformat(self.as_of))
        return get_source(self.spec, xm_url=self.xm_url)

    def operating(self) -> OperatingSource:
        """The operating data that goes with this price source (sources/operating.py), same `as_of`."""
        as_of = date.fromisoformat(self.as_of) if self.spec == "sample" and self.as_of else None
        return get_operating_source(
            self.spec, xm_url=self.xm_url, oni_url=self.oni_url, operating_dir=self.operating_dir, as_of=as_of
        )
