"""Resources: where the warehouse lives and which source feeds it."""

from __future__ import annotations

from datetime import date

import dagster as dg

from energy_platform.sources import PriceSource, get_source
from energy_platform.sources.operating import OperatingSource, get_operating_source
from energy_platform.sources.sample import SampleSource
from energy_platform.tracking.registry import ModelRegistry

WAREHOUSE_POOL = "duckdb_warehouse"  # every DuckDB-writing step; limited to 1 in dagster.yaml


class WarehouseResource(dg.ConfigurableResource):
    """The pipeline's warehouse: a DuckDB file or a DuckLake catalog (`path` is its location, see
    warehouse/db.py); connections are opened per write, never held.

    Every asset, check and sensor of the platform takes this resource, so its set-up is where a
    run (or a sensor tick) checks the home's state (`state.check_state`) before any step writes: a
    damaged warehouse, an unreachable DuckLake or MLflow database fails at once, in one line.
    Sensors read and write the warehouse only through the methods below: on a DuckLake they work
    from any host the daemon runs on, without the run pool (the lake has no file lock).
    """

    path: str
    tracking_uri: str | None = None
    artifact_root: str | None = None
    dagster_pg_url: str | None = None  # set: the run's instance must be the PostgreSQL one (no silent SQLite)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        from energy_platform.profile import check_instance
        from energy_platform.state import check_state

        if context.instance is not None:
            check_instance(context.instance, self.dagster_pg_url)
        check_state(self.path, self.tracking_uri, self.artifact_root)

    def latest_price_day(self) -> date | None:
        from energy_platform.warehouse.prices import latest_day

        return latest_day(self.path)

    def record_alert(self, kind: str, message: str, *, dagster_run_id: str | None = None,
                     job_name: str | None = None, once: bool = False) -> None:
        from energy_platform.monitoring import record_alert

        record_alert(self.path, kind, message, dagster_run_id=dagster_run_id, job_name=job_name, once=once)


class SourceResource(dg.ConfigurableResource):
    """The active price source (`sample`, `xm`, `csv:<path>`); `as_of` caps the sample for replays."""

    spec: str = "sample"
    as_of: str | None = None
    xm_url: str | None = None
    price_floor: float | None = 0.0
    price_ceiling: float = 1e6
    oni_url: str | None = None
    operating_dir: str | None = None

    def get(self) -> PriceSource:
        if self.spec == "sample" and self.as_of:
            return SampleSource(as_of=date.fromisoformat(self.as_of))
        return get_source(self.spec, xm_url=self.xm_url, price_floor=self.price_floor, price_ceiling=self.price_ceiling)

    def operating(self) -> OperatingSource:
        """The operating data that goes with this price source (sources/operating.py), same `as_of`."""
        as_of = date.fromisoformat(self.as_of) if self.spec == "sample" and self.as_of else None
        return get_operating_source(
            self.spec, xm_url=self.xm_url, oni_url=self.oni_url, operating_dir=self.operating_dir, as_of=as_of
        )


class RegistryResource(dg.ConfigurableResource):
    """The model registry (MLflow): the one way assets and sensors reach versions and aliases."""

    tracking_uri: str
    artifact_root: str | None = None  # None: a tracking server keeps the artifacts
    price_floor: float | None = 0.0  # the market's lowest possible price; None for markets without one
    ui_url: str = "http://127.0.0.1:5000"  # the MLflow UI that metadata links open (Settings.mlflow_ui_url)
    dagster_ui_url: str = "http://127.0.0.1:3000"  # the Dagster UI that MLflow runs link back to (Settings.dagster_ui)

    def get(self) -> ModelRegistry:
        return ModelRegistry(self.tracking_uri, self.artifact_root)

    def run_link(self, run_id: str | None) -> dg.MetadataValue | str:
        """An MLflow run as a link the Dagster UI opens (the run id itself when there is none)."""
        from energy_platform.tracking.links import run_url

        return dg.MetadataValue.url(run_url(self.ui_url, run_id)) if run_id else ""

    def dagster_run_tags(self, run_id: str) -> dict[str, str]:
        """The tags an MLflow run gets to lead back to the Dagster run that made it: id and UI link."""
        from energy_platform.tracking.links import dagster_run_url

        return {"dagster_run_id": run_id, "dagster_run_url": dagster_run_url(self.dagster_ui_url, run_id)}
