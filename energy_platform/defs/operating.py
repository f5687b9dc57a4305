"""`raw_operating_daily`, `raw_hydrology`, `raw_enso` and their checks: the thin Dagster face of
warehouse/operating.py.

Partitioning (see the README): the daily series shares raw_prices' monthly partitions, so the
ingest job backfills both in one run and the daily run fetches only yesterday; the two monthly
series are unpartitioned, because all of them is ~120 and ~900 rows, fetched in one go (ONI is
one file) or from the first missing month on (XM hydrology), and a partition per month would only
add Dagster bookkeeping.
"""


from datetime import timedelta

import dagster as dg
from pydantic import Field

from energy_platform.defs.metadata import markdown_preview
from energy_platform.defs.resources import WAREHOUSE_POOL, SourceResource, WarehouseResource
from energy_platform.warehouse import operating_quality as quality
from energy_platform.warehouse.quality import CheckOutcome
from energy_platform.warehouse.operating import (
    OperatingIngest,
    ingest_hydrology,
    ingest_operating_daily,
    ingest_oni,
)

# Prices run first in the ingest job: a failing NOAA or XM operating read must not delay them.
COMMON = {"pool": WAREHOUSE_POOL, "group_name": "ingestion", "kinds": {"duckdb", "polars"}, "op_tags": {"dagster/priority": "-1"}}


class OperatingConfig(dg.Config):
    full_refresh: bool = Field(
        default=False, description="Re-download the whole window, not only the days or months still missing."
    )


def _result(outcome: CheckOutcome) -> dg.AssetCheckResult:
    severity = dg.AssetCheckSeverity.ERROR if outcome.severity == "error" else dg.AssetCheckSeverity.WARN
    return dg.AssetCheckResult(
        passed=outcome.passed, severity=severity, description=outcome.description, metadata=outcome.metadata
    )


def _materialize(report: OperatingIngest, source: SourceResource, **extra) -> dg.MaterializeResult:
    key = "date" if report.kind == "operating_daily" else "month"
    preview = report.frame.sort(key, descending=True) if report.rows_written else None
    metadata = {
        "dagster/row_count": report.rows_written,
        "fetched_range": f"{report.fetched[0]}..{report.fetched[1]}" if report.fetched else "none",
        "source": source.spec,
        **extra,
    }
    if report.note:
        metadata["note"] = report.note
    elif preview is None:
        metadata["note"] = "no new rows: nothing was missing, or the source has nothing newer yet"
    if preview is not None:
        metadata["preview (latest written)"] = markdown_preview(preview)
    return dg.MaterializeResult(metadata=metadata)


def build_raw_operating_daily(partitions_def: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    @dg.asset(
        partitions_def=partitions_def,
        backfill_policy=dg.BackfillPolicy.single_run(),
        code_version="1",
        description="Daily SIN demand and generation (GWh) etc. in raw.operating_daily, one month per partition; day d known on d+1.",
        **COMMON,
    )
    def raw_operating_daily(
        context: dg.AssetExecutionContext, config: OperatingConfig, warehouse: WarehouseResource, source: SourceResource
    ) -> dg.MaterializeResult:
        window = context.partition_time_window
        start, end = window.start.date(), window.end.date() - timedelta(days=1)
        report = ingest_operating_daily(warehouse.path, source.operating(), start, end, full_refresh=config.full_refresh)
        context.log.info(f"operating daily {start}..{end}: fetched {report.fetched}, wrote {report.rows_written} rows")
        return _materialize(report, source, window=f"{start}..{end}")

    return raw_operating_daily


def build_raw_hydrology() -> dg.AssetsDefinition:
    @dg.asset(
        code_version="1",
        description="Monthly SIN reservoir level (%) and inflows (% of historical mean) in raw.hydrology_monthly; month m known from the 1st of m+1.",
        **COMMON,
    )
    def raw_hydrology(config: OperatingConfig, warehouse: WarehouseResource, source: SourceResource) -> dg.MaterializeResult:
        return _materialize(ingest_hydrology(warehouse.path, source.operating(), full_refresh=config.full_refresh), source)

    return raw_hydrology


def build_raw_enso() -> dg.AssetsDefinition:
    @dg.asset(
        code_version="1",
        description="NOAA's Oceanic Nino Index by centre month in raw.enso_oni, re-read whole (NOAA revises it); usable from the 15th of m+2.",
        **COMMON,
    )
    def raw_enso(warehouse: WarehouseResource, source: SourceResource) -> dg.MaterializeResult:
        return _materialize(ingest_oni(warehouse.path, source.operating()), source)

    return raw_enso


def _checks_for(asset: dg.AssetsDefinition, kind: str, label: str) -> list[dg.AssetChecksDefinition]:
    """One check per property; the hard ones block downstream assets in the same run."""

    @dg.asset_check(asset=asset, name=f"{label}_unique", blocking=True, description=f"No {label} key is stored twice (ERROR).")
    def unique(warehouse: WarehouseResource) -> dg.AssetCheckResult:
        return _result(quality.unique_keys(warehouse.path, kind))

    @dg.asset_check(
        asset=asset, name=f"{label}_within_plausible_ranges", blocking=True,
        description="ERROR for an impossible value (negative, non-finite, % outside 0..100, wrong season); WARN for an unusual one.",
    )
    def ranges(warehouse: WarehouseResource) -> dg.AssetCheckResult:
        return _result(quality.within_plausible_ranges(warehouse.path, kind))

    @dg.asset_check(asset=asset, name=f"{label}_values_present", description="WARN for stored rows whose main values are empty.")
    def present(warehouse: WarehouseResource) -> dg.AssetCheckResult:
        return _result(quality.required_values_present(warehouse.path, kind))

    @dg.asset_check(asset=asset, name=f"{label}_missing_periods", description="WARN for days or months with no row (left missing, never filled).")
    def missing(warehouse: WarehouseResource) -> dg.AssetCheckResult:
        return _result(quality.missing_periods(warehouse.path, kind))

    return [unique, ranges, present, missing]


def build_operating_checks(
    raw_operating_daily: dg.AssetsDefinition, raw_hydrology: dg.AssetsDefinition, raw_enso: dg.AssetsDefinition
) -> list[dg.AssetChecksDefinition]:
    return [
        *_checks_for(raw_operating_daily, "operating_daily", "operating_days"),
        *_checks_for(raw_hydrology, "hydrology_monthly", "hydrology_months"),
        *_checks_for(raw_enso, "enso_oni", "oni_months"),
    ]
