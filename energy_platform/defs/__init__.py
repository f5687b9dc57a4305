"""The Dagster layer: thin assets, checks, jobs, schedules and sensors over the domain modules.

What drives what: the daily schedule ingests yesterday's prices; declarative automation
(`AutomationCondition.eager()`) carries the change downstream (features, predictions of the
newest day, realised accuracy, the analytics file) and promotes after a training; training runs
on the weekly schedule and when a drift or accuracy check fails at ERROR (sensor); failed runs
are recorded by a run-failure sensor. All of it runs by default for the live source only.
"""

from __future__ import annotations

import dagster as dg

from energy_platform.defs.analytics import build_analytics_snapshot
from energy_platform.defs.catalog import with_catalog
from energy_platform.defs.console import console
from energy_platform.defs.ingestion import build_raw_price_checks, build_raw_prices
from energy_platform.defs.lifecycle import (
    build_champion_asset,
    build_features_asset,
    build_forecaster_model_asset,
    build_predictions_asset,
)
from energy_platform.defs.mlflow_resource import build_mlflow_resource
from energy_platform.defs.monitoring import MonitoringResource, build_accuracy_asset, build_drift_checks
from energy_platform.defs.operating import (
    build_operating_checks,
    build_raw_enso,
    build_raw_hydrology,
    build_raw_operating_daily,
)
from energy_platform.defs.partitions import (
    prediction_partitions,
    raw_price_partitions,
    realised_partitions,
    source_dates,
)
from energy_platform.defs.resources import RegistryResource, SourceResource, WarehouseResource
from energy_platform.defs.schedules import build_daily_ingest_schedule, build_weekly_retraining_schedule
from energy_platform.defs.sensors import build_failure_sensor, build_lease_reaper_sensor, build_retrain_sensor
from energy_platform.orchestration import leased_in_process_executor
from energy_platform.settings import Settings

INGEST_JOB = "ingest_prices"
FEATURES_JOB = "build_features"
TRAIN_JOB = "train_and_gate"
PREDICT_JOB = "predict"
ACCURACY_JOB = "realised_accuracy"
PUBLISH_JOB = "publish_analytics"


def build_definitions(settings: Settings) -> dg.Definitions:
    h, live = settings.horizon_days, settings.source == "xm"
    artifact_root = str(settings.mlflow_artifact_root) if settings.mlflow_artifact_root else None  # None: a tracking server's store
    registry = RegistryResource(tracking_uri=settings.mlflow_tracking_uri, artifact_root=artifact_root,
                                price_floor=settings.price_floor, ui_url=settings.mlflow_ui_url, dagster_ui_url=settings.dagster_ui)
    dates = source_dates(settings.source)  # a file source is read once for all its partitions
    tz = settings.timezone  # the market's days: partitions and the schedules' mornings
    raw_prices = build_raw_prices(raw_price_partitions(dates, tz), settings.price_unit)
    operating = [build_raw_operating_daily(raw_prices.partitions_def), build_raw_hydrology(), build_raw_enso()]
    # the market's holiday calendar: the feature store's rows and the models trained from them
    features = build_features_asset(raw_prices, operating, h, settings.country)
    forecaster_model = build_forecaster_model_asset(features, raw_prices, operating, h, settings.country)
    champion_model = build_champion_asset(forecaster_model, raw_prices, operating, h)
    day_partitions = prediction_partitions(dates, h, tz)
    predictions = build_predictions_asset(champion_model, features, raw_prices, day_partitions, h)
    forecast_accuracy, rolling_rmae = build_accuracy_asset(predictions, raw_prices, realised_partitions(dates, h, tz))
    analytics_snapshot = build_analytics_snapshot([predictions, champion_model, forecast_accuracy], settings.analytics_path,
                                                  settings.price_unit)
    drift_checks = build_drift_checks(raw_prices, features, predictions)

    ingest_job = dg.define_asset_job(INGEST_JOB, selection=[raw_prices, *operating], description="Raw prices, operating data and their checks.")
    # features first: training reads the feature store, which must have caught up with the prices
    train_job = dg.define_asset_job(TRAIN_JOB, selection=[features, forecaster_model, champion_model],
                                    description="Bring the feature store up to date, train a challenger and gate it.")
    jobs = [
        ingest_job,
        train_job,
        dg.define_asset_job(FEATURES_JOB, selection=[features], description="Recompute the feature store."),
        dg.define_asset_job(PREDICT_JOB, selection=[predictions], description="The champion's forecasts for target days."),
        dg.define_asset_job(ACCURACY_JOB, selection=[forecast_accuracy], description="Realised accuracy of forecast days."),
        dg.define_asset_job(PUBLISH_JOB, selection=[analytics_snapshot], description="Republish analytics.duckdb."),
    ]
    schedules = [
        build_daily_ingest_schedule(ingest_job, live=live, timezone=tz, partitions_def=raw_prices.partitions_def),
        build_weekly_retraining_schedule(train_job, live=live, timezone=tz, horizon_days=h),
    ]
    error_checks = [c.check_key for c in drift_checks] + [dg.AssetCheckKey(forecast_accuracy.key, "rolling_rmae")]
    sensors = [
        build_retrain_sensor(train_job, error_checks, live, h),
        build_failure_sensor(live),
        build_lease_reaper_sensor(),
        dg.AutomationConditionSensorDefinition(
            "platform_automation", target=dg.AssetSelection.all(),
            default_status=dg.DefaultSensorStatus.RUNNING if live else dg.DefaultSensorStatus.STOPPED,
        ),
    ]
    return dg.Definitions(
        # Runs launched by the UI, schedules and sensors execute their steps in the run's own process:
        # a step subprocess re-imports torch, MLflow and Evidently (~25 s each here), while the steps
        # are serialised by the warehouse pool anyway (README "Speed": UI vs CLI figures). The run
        # holds a lease, so a run whose worker was killed (a container restart) gives its pool slot back.
        executor=leased_in_process_executor,
        loggers={"console": console},
        assets=with_catalog([raw_prices, features, forecaster_model, champion_model, predictions, forecast_accuracy,
                             analytics_snapshot, *operating]),
        asset_checks=[*build_raw_price_checks(raw_prices, settings.price_unit), *drift_checks, rolling_rmae, *build_operating_checks(*operating)],
        jobs=jobs,
        schedules=schedules,
        sensors=sensors,
        resources={
            "warehouse": WarehouseResource(
                path=str(settings.warehouse_path), tracking_uri=settings.mlflow_tracking_uri,
                artifact_root=artifact_root, dagster_pg_url=settings.dagster_pg_url,
            ),
            "source": SourceResource(
                spec=settings.source, xm_url=settings.xm_base_url, price_floor=settings.price_floor,
                price_ceiling=settings.price_ceiling,
                oni_url=settings.oni_url, operating_dir=settings.operating_dir,
            ),
            "mlflow_tracking": build_mlflow_resource(registry),
            "registry": registry,
            "monitor": MonitoringResource(reports_dir=str(settings.reports_dir), reports_keep_days=settings.reports_keep_days),
        },
    )
