"""Monitoring as Dagster asset checks and the realised-accuracy asset; thin over monitoring/."""

import json
from datetime import timedelta
from pathlib import Path

import dagster as dg
import polars as pl

from energy_platform import monitoring
from energy_platform.defs.automation import accuracy_condition
from energy_platform.defs.check_results import for_every_planned_partition
from energy_platform.defs.metadata import markdown_preview
from energy_platform.defs.resources import WAREHOUSE_POOL, RegistryResource, WarehouseResource
from energy_platform.errors import one_line
from energy_platform.tracking.links import prune_report_runs, run_url, try_log_report


class MonitoringResource(dg.ConfigurableResource):
    """Thresholds of the drift and accuracy checks, and where their HTML reports go."""

    reports_dir: str
    reports_keep_days: float | None = None  # older HTML reports are deleted (monitoring/retention.py); None: kept
    window_days: int = 28
    reference_days: int = 365
    warn_share: float = 0.3
    error_share: float = 0.6
    method: str = "wasserstein"
    threshold: float = 0.5
    rmae_warn_above: float = 0.9

    def report_path(self, check_name: str) -> Path:
        return monitoring.report_path(self.reports_dir, check_name)


def _prune_reports(monitor: MonitoringResource, registry: RegistryResource, mlflow: bool = True) -> dict:
    """Delete the reports older than the retention, here and (`mlflow`) in MLflow; a failure is
    reported in the metadata, never raised: the drift result matters more than the housekeeping."""
    out: dict = {"reports_keep_days": monitor.reports_keep_days}
    try:
        out["reports_deleted"] = len(monitoring.prune_reports(monitor.reports_dir, monitor.reports_keep_days))
        if mlflow:
            out["report_runs_deleted"] = prune_report_runs(registry.tracking_uri, monitor.reports_keep_days)
    except Exception as exc:  # a file another process holds, an MLflow backend hiccup
        out["reports_prune_error"] = f"{type(exc).__name__}: {one_line(exc)[:300]}"
    return out


def _drift_result(
    context, check_name: str, asset: str, inputs, monitor: MonitoringResource, warehouse: WarehouseResource,
    registry: RegistryResource,
) -> dg.AssetCheckResult:
    reference, current, columns, ref_range = inputs
    result = monitoring.evaluate_drift(
        reference, current, columns, warn_share=monitor.warn_share, error_share=monitor.error_share,
        report_path=monitor.report_path(check_name), method=monitor.method, threshold=monitor.threshold,
    )
    current_range = monitoring.date_range(current)
    severity = result.severity
    metadata = {
        "severity": severity,
        "drift_share": dg.MetadataValue.float(result.drift_share) if result.drift_share is not None else "n/a",
        "drifted_columns": dg.MetadataValue.json(result.drifted_columns),
        "columns_tested": result.n_columns,
        "reference": f"{ref_range[0]}..{ref_range[1]} ({result.reference_rows} rows)",
        "current": f"{current_range[0]}..{current_range[1]} ({result.current_rows} rows)" if current_range else "none",
        "method": f"{result.method} (threshold {result.threshold})",
    }
    report_url = None
    if result.report_path:  # in MLflow (served over http, opens from the Dagster UI); the local file kept too
        link, error = try_log_report(
            registry.tracking_uri, registry.artifact_root, registry.ui_url, result.report_path,
            run_name=f"{check_name} {current_range[1] if current_range else ''}".strip(),
            tags={"check": check_name, "asset": asset, "severity": severity, **registry.dagster_run_tags(context.run.run_id)},
            metrics={"drift_share": result.drift_share, "columns_drifted": len(result.drifted_columns)},
        )
        if link is not None:
            report_url = link.url
            metadata["report"] = dg.MetadataValue.url(link.url)
            metadata["mlflow_run"] = dg.MetadataValue.url(run_url(registry.ui_url, link.run_id, link.experiment_id))
            metadata["all_drift_reports"] = dg.MetadataValue.url(link.runs_url)
        metadata["report_file"] = dg.MetadataValue.path(str(Path(result.report_path).resolve()))
        if error:
            metadata["report_mlflow_error"] = error
        if monitor.reports_keep_days is not None:
            # not MLflow when the log just failed: an unreachable server would be waited for twice
            metadata.update(_prune_reports(monitor, registry, mlflow=error is None))
    monitoring.record_drift(warehouse.path, check_name, asset, result, ref_range, current_range, context.run.run_id, report_url)
    if result.report_error:
        metadata["report_error"] = result.report_error
    if severity == "not_enough_data":
        description = f"not enough data for a drift test ({result.reference_rows} reference, {result.current_rows} current rows)"
    else:
        description = f"{len(result.drifted_columns)}/{result.n_columns} columns drifted (share {result.drift_share:.2f})"
    return dg.AssetCheckResult(
        passed=severity == "pass",
        severity=dg.AssetCheckSeverity.ERROR if severity == "error" else dg.AssetCheckSeverity.WARN,
        description=description,
        metadata=metadata,
    )


def build_drift_checks(raw_prices, features, predictions) -> list[dg.AssetChecksDefinition]:
    def check(asset, kind: str, name: str, description: str) -> dg.AssetChecksDefinition:
        @dg.asset_check(asset=asset, name=name, pool=WAREHOUSE_POOL, description=description)
        def _check(context, warehouse: WarehouseResource, monitor: MonitoringResource,
                   registry: RegistryResource) -> dg.AssetCheckResult:
            champion = registry.get().champion() if kind == "features" else None
            training_range = (champion.data_start, champion.data_end) if champion and not champion.is_baseline else (None, None)
            inputs = monitoring.drift_check_inputs(kind, warehouse.path, monitor.window_days, monitor.reference_days, training_range)
            result = _drift_result(context, name, asset.key.to_user_string(), inputs, monitor, warehouse, registry)
            return for_every_planned_partition(context, result)

        return _check

    return [
        check(features, "features", "features_drift",
              "Evidently drift of the latest 28 days of features against the champion's training reference."),
        check(predictions, "predictions", "predictions_drift",
              "Evidently drift of the latest 28 days of forecasts against the forecasts before them."),
        check(raw_prices, "price", "price_drift",
              "Evidently drift of the latest 28 days of prices against the year before them."),
    ]


def build_accuracy_asset(predictions, raw_prices, partitions_def) -> dg.AssetsDefinition:
    @dg.asset(
        deps=[predictions, raw_prices],  # it reads ml.predictions and the realised prices in raw.prices_hourly
        partitions_def=partitions_def,
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool=WAREHOUSE_POOL,
        code_version="1",
        group_name="monitoring",
        kinds={"duckdb"},
        automation_condition=accuracy_condition(),
        description="Realised accuracy per forecast day and model version (ml.predictions against raw.prices_hourly), "
                    "once the day's prices arrived.",
    )
    def forecast_accuracy(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
        window = context.partition_time_window
        last = window.end.date() - timedelta(days=1)
        frame = monitoring.accuracy_for_days(warehouse.path, window.start.date(), last)
        written = monitoring.write_accuracy(warehouse.path, frame)
        summary = frame.group_by("model_version").agg(pl.len().alias("days"), pl.col("mae").mean(), pl.col("rmae").mean())
        return dg.MaterializeResult(metadata={
            "dagster/row_count": written,
            "target_dates": f"{window.start.date()}..{last}",
            "by_model_version": markdown_preview(summary),
        })

    @dg.asset_check(asset=forecast_accuracy, pool=WAREHOUSE_POOL,
                    description="Rolling 28-day rMAE of the served forecasts: WARN past a threshold, ERROR when no better than the weekly naive.")
    def rolling_rmae(context, warehouse: WarehouseResource, monitor: MonitoringResource) -> dg.AssetCheckResult:
        return for_every_planned_partition(context, _rolling_result(warehouse, monitor))

    return forecast_accuracy, rolling_rmae


def _rolling_result(warehouse: WarehouseResource, monitor: MonitoringResource) -> dg.AssetCheckResult:
    end = monitoring.latest_scored_day(warehouse.path)
    if end is None:
        return dg.AssetCheckResult(passed=False, severity=dg.AssetCheckSeverity.WARN, description="not enough data: no realised accuracy yet")
    rolling = monitoring.rolling_rmae(warehouse.path, end, monitor.window_days)
    if rolling.rmae is None or rolling.days < 7:
        return dg.AssetCheckResult(passed=False, severity=dg.AssetCheckSeverity.WARN,
                                   description=f"not enough data: {rolling.days} day(s) with realised accuracy", metadata={"days": rolling.days})
    level = monitoring.classify_rolling(rolling.rmae, monitor.rmae_warn_above)
    return dg.AssetCheckResult(
        passed=level == "pass",
        severity=dg.AssetCheckSeverity.ERROR if level == "error" else dg.AssetCheckSeverity.WARN,
        description=f"rolling {monitor.window_days}-day rMAE {rolling.rmae:.3f} over {rolling.days} days ({level})",
        metadata={
            "rmae": dg.MetadataValue.float(rolling.rmae),
            "mae": dg.MetadataValue.float(rolling.mae or float("nan")),
            "naive_w_mae": dg.MetadataValue.float(rolling.naive_w_mae or float("nan")),
            "days": rolling.days,
            "window": f"{rolling.start}..{rolling.end}",
            "per_version": dg.MetadataValue.json(json.loads(json.dumps(rolling.per_version, default=str))),
        },
    )

