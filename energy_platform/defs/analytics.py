"""`analytics_snapshot`: the thin Dagster face of warehouse/analytics.py (publish, then report)."""

from pathlib import Path

import dagster as dg
import polars as pl

from energy_platform.defs.automation import after_any_update
from energy_platform.defs.metadata import markdown_preview
from energy_platform.defs.resources import WAREHOUSE_POOL, WarehouseResource
from energy_platform.settings import DEFAULT_PRICE_UNIT
from energy_platform.warehouse.analytics import publish_analytics
from energy_platform.warehouse.db import is_lake


def build_analytics_snapshot(deps: list, analytics_path: str | Path | None = None,
                             price_unit: str = DEFAULT_PRICE_UNIT) -> dg.AssetsDefinition:
    """The analysts' file, republished after `deps`. `analytics_path` defaults to
    `analytics.duckdb` next to the warehouse, which is `Settings.analytics_path`; `price_unit`
    (`Settings.price_unit`) is written into it for its readers."""

    @dg.asset(
        deps=deps,
        pool=WAREHOUSE_POOL,  # it reads the warehouse: never while a writer holds its lock
        code_version="3",
        group_name="access",
        automation_condition=after_any_update(),
        kinds={"duckdb"},
        description="analytics.duckdb: read-only snapshot for analysts and the dashboard, swapped in atomically.",
    )
    def analytics_snapshot(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
        if not analytics_path and is_lake(warehouse.path):
            raise dg.Failure("a DuckLake warehouse has no folder to put analytics.duckdb beside: pass analytics_path")
        target = Path(analytics_path) if analytics_path else Path(warehouse.path).with_name("analytics.duckdb")
        summary = publish_analytics(warehouse.path, target, price_unit=price_unit)
        context.log.info(f"published {target} in {summary['seconds']} s")
        tables = pl.DataFrame({"table": list(summary["tables"]), "rows": list(summary["tables"].values())})
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": summary["tables"].get("forecasts", 0),
                "path": dg.MetadataValue.path(summary["path"]),
                "published_at": summary["published_at"],
                "seconds": summary["seconds"],
                "bytes": summary["bytes"],
                "tables": markdown_preview(tables, rows=20),
            }
        )

    return analytics_snapshot
