"""The Dagster layer: thin assets, checks, jobs, schedules and sensors over the domain modules."""

from __future__ import annotations

import dagster as dg

from energy_platform.defs.ingestion import build_raw_price_checks, build_raw_prices
from energy_platform.defs.partitions import raw_price_partitions
from energy_platform.defs.resources import SourceResource, WarehouseResource
from energy_platform.defs.schedules import build_daily_ingest_schedule
from energy_platform.settings import Settings

INGEST_JOB = "ingest_prices"


def build_definitions(settings: Settings) -> dg.Definitions:
    raw_prices = build_raw_prices(raw_price_partitions(settings.source))
    checks = build_raw_price_checks(raw_prices)
    ingest_job = dg.define_asset_job(
        INGEST_JOB, selection=dg.AssetSelection.assets(raw_prices), description="Raw prices and their checks."
    )
    return dg.Definitions(
        assets=[raw_prices],
        asset_checks=checks,
        jobs=[ingest_job],
        schedules=[build_daily_ingest_schedule(ingest_job, live=settings.source == "xm")],
        resources={
            "warehouse": WarehouseResource(path=str(settings.warehouse_path)),
            "source": SourceResource(spec=settings.source),
        },
    )
