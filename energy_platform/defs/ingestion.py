"""`raw_prices` and its data-quality checks: the thin Dagster face of warehouse/ingest.py."""


from datetime import timedelta

import dagster as dg
import polars as pl
from pydantic import Field

from energy_platform.defs.check_results import for_every_planned_partition
from energy_platform.defs.metadata import markdown_preview
from energy_platform.defs.resources import WAREHOUSE_POOL, SourceResource, WarehouseResource
from energy_platform.settings import DEFAULT_PRICE_UNIT
from energy_platform.sources.base import exogenous_columns
from energy_platform.warehouse import quality
from energy_platform.warehouse.ingest import ingest_range
from energy_platform.warehouse.prices import days_ahead
from energy_platform.warehouse.quality import CheckOutcome

# raw_prices' metadata entries naming a source's exogenous columns and its days ahead of the prices
# (their forecasts of tomorrow); the demo prints them too
EXOGENOUS_STORED = "exogenous columns stored"
DAYS_AHEAD = "days ahead of the prices"
LEFT_OUT = "read but left out"  # and what the source left out of what it read (a file's part-days)


class RawPricesConfig(dg.Config):
    full_refresh: bool = Field(
        default=False,
        description="Re-download every day of the partition window, not only days missing hours.",
    )


REVISED = "revised_in_source"  # the metadata naming stored hours a local source now prices otherwise


def revised_note(report, spec: str) -> str | None:
    """One line on the stored hours the source now prices otherwise, or None."""
    revised = report.revised
    if revised is None or revised.is_empty():
        return None
    first = revised.row(0, named=True)
    return (f"{revised['date'].n_unique()} stored day(s) ({revised.height} hours) differ from {spec} now, first "
            f"{first['date']} hour {first['hour']}: stored {first['stored']}, source {first['source']}; the stored prices "
            "stand (a run fetches only missing days): materialize raw_prices with full_refresh: true for those months "
            "to take the source's")


def build_raw_prices(partitions_def: dg.PartitionsDefinition, price_unit: str = DEFAULT_PRICE_UNIT) -> dg.AssetsDefinition:
    @dg.asset(
        partitions_def=partitions_def,
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool=WAREHOUSE_POOL,
        code_version="1",
        group_name="ingestion",
        kinds={"duckdb", "polars"},
        description=f"Hourly market price ({price_unit}; XM: the national bolsa price) in raw.prices_hourly, one month per partition.",
    )
    def raw_prices(
        context: dg.AssetExecutionContext,
        config: RawPricesConfig,
        warehouse: WarehouseResource,
        source: SourceResource,
    ) -> dg.MaterializeResult:
        window = context.partition_time_window
        start, end = window.start.date(), window.end.date() - timedelta(days=1)
        src = source.get()
        report = ingest_range(warehouse.path, src, start, end, full_refresh=config.full_refresh)
        context.log.info(f"{source.spec}: window {start}..{end}, fetched {report.fetched}, wrote {report.rows_written} rows")
        for note in src.notes:
            context.log.warning(note)
        revised = revised_note(report, source.spec)
        if revised:
            context.log.warning(revised)
        # A file's load or wind forecasts go to raw.exogenous_hourly; the days ahead of its prices
        # (tomorrow's forecasts) are what lets a model read them (forecaster_model says whether it does).
        exog = exogenous_columns(report.frame)  # none when nothing was fetched
        ahead = report.frame.filter(days_ahead(report.frame))["date"].unique().sort().to_list() if exog else []
        if exog:
            context.log.info(f"{source.spec}: {EXOGENOUS_STORED} in raw.exogenous_hourly: {', '.join(exog)}; "
                             f"{DAYS_AHEAD}: {', '.join(map(str, ahead)) or 'none'}")
        priced = report.frame.filter(~days_ahead(report.frame)) if report.frame.height else report.frame
        daily = (
            priced.group_by("date")
            .agg(
                pl.len().alias("hours"),
                pl.col("price").min().alias("min"),
                pl.col("price").mean().alias("mean"),
                pl.col("price").max().alias("max"),
            )
            .sort("date", descending=True)
            if priced.height
            else pl.DataFrame({"note": ["nothing new to fetch: every day of the window is complete"
                                        + ("; the day ahead's exogenous forecasts were refreshed" if ahead else "")]})
        )
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": report.rows_written,
                "window": f"{start}..{end}",
                "fetched_range": str(report.fetched[0]) + ".." + str(report.fetched[1]) if report.fetched else "none",
                "source": source.spec,
                "preview (latest days written)": markdown_preview(daily),
                **({EXOGENOUS_STORED: ", ".join(exog), DAYS_AHEAD: ", ".join(map(str, ahead)) or "none"} if exog else {}),
                **({LEFT_OUT: "; ".join(src.notes)} if src.notes else {}),
                **({REVISED: revised} if revised else {}),
            }
        )

    return raw_prices


def _result(outcome: CheckOutcome) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        passed=outcome.passed,
        severity=dg.AssetCheckSeverity.ERROR if outcome.severity == "error" else dg.AssetCheckSeverity.WARN,
        description=outcome.description,
        metadata=outcome.metadata,
    )


def build_raw_price_checks(raw_prices: dg.AssetsDefinition, price_unit: str = DEFAULT_PRICE_UNIT) -> list[dg.AssetChecksDefinition]:
    """Hard rules are blocking: when one fails at ERROR, nothing downstream of `raw_prices`
    materializes in the same run (and the run fails); soft ones (WARN) only report."""

    def answer(context: dg.AssetCheckExecutionContext, outcome: CheckOutcome) -> dg.AssetCheckResult:
        return for_every_planned_partition(context, _result(outcome))

    @dg.asset_check(asset=raw_prices, blocking=True, description="Every day between the first and last stored day has 24 priced hours (blocking).")
    def every_day_has_24_hours(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource) -> dg.AssetCheckResult:
        return answer(context, quality.every_day_has_24_hours(warehouse.path))

    @dg.asset_check(asset=raw_prices, blocking=True, description="No null, NaN or infinite price is stored (blocking).")
    def no_null_or_nonfinite_price(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource) -> dg.AssetCheckResult:
        return answer(context, quality.no_null_or_nonfinite_price(warehouse.path))

    @dg.asset_check(asset=raw_prices, blocking=True, description="Each hour is stored once, its timestamp agreeing with date and hour (blocking).")
    def no_duplicate_hours(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource) -> dg.AssetCheckResult:
        return answer(context, quality.no_duplicate_hours(warehouse.path))

    @dg.asset_check(
        asset=raw_prices, blocking=True,
        description=f"0 < price < ENERGY_PLATFORM_PRICE_CEILING / 100 (10,000 {price_unit} by default): WARN outside; "
                    "ERROR (blocking) if null, non-finite, below the source's floor or at the ceiling (1e6 by default).",
    )
    def prices_within_plausible_bounds(
        context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource, source: SourceResource
    ) -> dg.AssetCheckResult:
        return answer(context, quality.prices_within_plausible_bounds(
            warehouse.path, upper=source.price_ceiling / 100, floor=source.price_floor, absurd=source.price_ceiling, unit=price_unit))

    @dg.asset_check(asset=raw_prices, description="The latest stored day is the last day the source can have.")
    def latest_partition_fresh(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource, source: SourceResource) -> dg.AssetCheckResult:
        return answer(context, quality.latest_partition_fresh(warehouse.path, source.get().last_date()))

    return [
        every_day_has_24_hours, no_null_or_nonfinite_price, no_duplicate_hours, prices_within_plausible_bounds,
        latest_partition_fresh,
    ]
