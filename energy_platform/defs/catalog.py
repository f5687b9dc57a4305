"""What the Dagster catalog says about each asset beyond its code: owners and column schemas.

Owners say whom to ask: the data platform team runs ingestion and publication, the forecasting
team the models and their monitoring. Column schemas are read from the warehouse DDL itself (an
in-memory DuckDB with `ensure_schema`), so the catalog cannot drift from the tables; descriptions
come from the analysts' column documentation where a warehouse column is published under its name.
"""

from __future__ import annotations

from functools import lru_cache

import dagster as dg
import duckdb

from energy_platform.warehouse.analytics import TABLES
from energy_platform.warehouse.schema import ensure_schema

DATA_PLATFORM = "team:data-platform"
FORECASTING = "team:forecasting"

# asset name -> (owner, the warehouse table it writes, or None)
CATALOG: dict[str, tuple[str, str | None]] = {
    "raw_prices": (DATA_PLATFORM, "raw.prices_hourly"),
    "raw_operating_daily": (DATA_PLATFORM, "raw.operating_daily"),
    "raw_hydrology": (DATA_PLATFORM, "raw.hydrology_monthly"),
    "raw_enso": (DATA_PLATFORM, "raw.enso_oni"),
    "features": (FORECASTING, None),  # columns follow the feature spec: see the materialization
    "forecaster_model": (FORECASTING, None),
    "champion_model": (FORECASTING, "ml.model_versions"),
    "predictions": (FORECASTING, "ml.predictions"),
    "forecast_accuracy": (FORECASTING, "monitoring.forecast_accuracy"),
    "analytics_snapshot": (DATA_PLATFORM, None),
}


def _column_docs(table: str) -> dict[str, str]:
    docs: dict[str, str] = {}
    for published in TABLES:
        if published.source == table:
            docs.update(published.columns)
    return docs


@lru_cache(maxsize=1)
def _schemas() -> dict[str, dg.TableSchema]:
    with duckdb.connect(":memory:") as conn:
        ensure_schema(conn)
        rows = conn.execute(
            "SELECT schema_name || '.' || table_name, column_name, data_type, is_nullable, comment "
            "FROM duckdb_columns() WHERE database_name = current_database() ORDER BY table_name, column_index"
        ).fetchall()
    columns: dict[str, list[dg.TableColumn]] = {}
    for table, name, dtype, nullable, comment in rows:
        columns.setdefault(table, []).append(dg.TableColumn(
            name, dtype, description=comment or _column_docs(table).get(name),
            constraints=dg.TableColumnConstraints(nullable=bool(nullable)),
        ))
    return {table: dg.TableSchema(columns=cols) for table, cols in columns.items()}


def column_schema(table: str) -> dg.TableSchema:
    return _schemas()[table]


def with_catalog(assets: list[dg.AssetsDefinition]) -> list[dg.AssetsDefinition]:
    """The assets with their owners and, where they write one table, its column schema."""

    def annotate(spec: dg.AssetSpec) -> dg.AssetSpec:
        name = spec.key.to_user_string()
        if name not in CATALOG:
            raise KeyError(f"asset {name} has no owner in energy_platform/defs/catalog.py: add it to CATALOG")
        owner, table = CATALOG[name]
        metadata = {"dagster/column_schema": column_schema(table), "dagster/table_name": table} if table else {}
        return spec.merge_attributes(owners=[owner], metadata=metadata)

    return [a.map_asset_specs(annotate) for a in assets]
