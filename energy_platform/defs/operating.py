"""`raw_operating_daily`, `raw_hydrology`, `raw_enso` and their checks: the thin Dagster face of
warehouse/operating.py.

Partitioning (see the README): the daily series shares raw_prices' monthly partitions, so the
ingest job backfills both in one run and the daily run fetches only yesterday; the two monthly
series are unpartitioned, because all of them is ~120 and ~900 rows, fetched in one go (ONI is
one file) or from the first missing month on (XM hydrology), and a partition per month would only
add Dagster bookkeeping. (No `from __future__ import annotations`: Dagster reads the config
annotation at definition time.)
"""

from datetime import timedelta

import dagster as dg
from pydantic import Field

from energy_platform.defs.check_results import for_every_planned_partition
from energy_platform.defs.metadata import markdown_preview
from energy_platform.defs.resources import WAREHOUSE_POOL, SourceResource, WarehouseResource
from energy_platform.warehouse import operating_quality as quality
from energy_platform.warehouse.operating import (
    OperatingIngest,
    ingest_hydrology,
    ingest_oni,
    ingest_operating_daily,
)
from energy_platform.warehouse.quality import CheckOutcome

# Prices run first in the ingest job: a failing NOAA or XM operating read must not delay them.
COMMON = {
    "pool": WAREHOUSE_POOL,
    "group_name": "ingestion",
    "kinds": {"duckdb", "polars"},
    "op_tags": {"dagster/priority": "-1"},
}


class OperatingConfig(dg.Config):
    full_refresh: bool = Field(
        default=False, description="Re-download the whole window, not only the days or months still missing."
    )


def _result(outcome: CheckOutcome, asset: dg.AssetsDefinition, name: str) -> dg.AssetCheckResult:
    severity = dg.AssetCheckSeverity.ERROR if outcome.severity == "error" else dg.AssetCheckSeverity.WARN
    return dg.AssetCheckResult(
        asset_key=asset.key, check_name=name, passed=outcome.passed, severity=severity,
        description=outcome.description, metadata=outcome.metadata,
    )


def _materialize(report: OperatingIngest, source: SourceResource, **extra) -> dg.MaterializeResult:
    key = "date" if report.kind == "operating_daily" else "month"
    preview = report.frame.sort(key, descending=True) if report.rows_written else None
    metadata = {
        "dagster/row_count": report.rows_written,
        "rows_changed": report.rows_changed,  # new or revised; the others were read again unchanged
        "fetched_range": f"{report.fetched[0]}..{report.fetched[1]}" if report.fetched else "none",
        "source": source.spec,
        **extra,
    }
    if report.note:
        metadata["note"] = report.note
    elif report.kind == "enso_oni" and report.frame.is_empty():  # read whole each time: nothing is never "nothing new"
        metadata["note"] = "the source answered no season at all (a header only?): the stored ONI stays; the next run asks again"
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
        context.log.info(f"operating daily {start}..{end}: fetched {report.fetched}, stored {report.rows_written} rows, "
                         f"{report.rows_changed} new or revised")
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


# (suffix, rule, blocking, description): one property per check.
RULES = [
    ("unique", quality.unique_keys, True, "No key is stored twice (ERROR)."),
    ("within_plausible_ranges", quality.within_plausible_ranges, True,
     "ERROR for an impossible value (negative, non-finite, % outside 0..100, wrong ONI season); WARN for an unusual one."),
    ("values_present", quality.required_values_present, False, "WARN for stored rows whose main values are empty (never filled)."),
    ("missing_periods", quality.missing_periods, False, "WARN for days or months with no row (left missing, never filled)."),
    ("current", quality.current_at_latest_prices, False,
     "WARN when the newest value is no longer read by the forecast after the newest price day (a stopped or late source)."),
]


def _checks_for(asset: dg.AssetsDefinition, kind: str, label: str) -> dg.AssetChecksDefinition:
    """The five checks of one asset in one step: one property each in the UI, one step's overhead
    in every ingest run (Dagster's per-step bookkeeping costs more than these queries)."""
    specs = [
        dg.AssetCheckSpec(f"{label}_{suffix}", asset=asset, blocking=blocking, description=description)
        for suffix, _, blocking, description in RULES
    ]

    @dg.multi_asset_check(specs=specs, name=f"{label}_checks")
    def checks(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource):
        for suffix, rule, _, _ in RULES:
            result = _result(rule(warehouse.path, kind), asset, f"{label}_{suffix}")
            yield for_every_planned_partition(context, result)

    return checks


def build_operating_checks(
    raw_operating_daily: dg.AssetsDefinition, raw_hydrology: dg.AssetsDefinition, raw_enso: dg.AssetsDefinition
) -> list[dg.AssetChecksDefinition]:
    return [
        _checks_for(raw_operating_daily, "operating_daily", "operating_days"),
        _checks_for(raw_hydrology, "hydrology_monthly", "hydrology_months"),
        _checks_for(raw_enso, "enso_oni", "oni_months"),
    ]
