"""The Dagster layer: thin assets, checks, jobs, schedules and sensors over the domain modules."""

from __future__ import annotations

import dagster as dg

from energy_platform.defs.analytics import build_analytics_snapshot
from energy_platform.defs.ingestion import build_raw_price_checks, build_raw_prices
from energy_platform.defs.lifecycle import (
    build_champion_asset,
    build_features_asset,
    build_forecaster_model_asset,
    build_predictions_asset,
)
from energy_platform.defs.mlflow_resource import build_mlflow_resource
from energy_platform.defs.partitions import prediction_partitions, raw_price_partitions
from energy_platform.defs.resources import SourceResource, WarehouseResource
from energy_platform.defs.schedules import build_daily_ingest_schedule
from energy_platform.settings import Settings

INGEST_JOB = "ingest_prices"
FEATURES_JOB = "build_features"
TRAIN_JOB = "train_and_gate"
PREDICT_JOB = "predict"
PUBLISH_JOB = "publish_analytics"


def build_definitions(settings: Settings) -> dg.Definitions:
    h = settings.horizon_days
    raw_prices = build_raw_prices(raw_price_partitions(settings.source))
    features = build_features_asset(raw_prices, h)
    forecaster_model = build_forecaster_model_asset(features, h)
    champion_model = build_champion_asset(forecaster_model, settings.mlflow_tracking_uri)
    predictions = build_predictions_asset(champion_model, prediction_partitions(settings.source, h), h, settings.mlflow_tracking_uri)

    analytics_snapshot = build_analytics_snapshot([predictions, champion_model], settings.analytics_path)

    ingest_job = dg.define_asset_job(INGEST_JOB, selection=[raw_prices], description="Raw prices and their checks.")
    jobs = [
        ingest_job,
        dg.define_asset_job(FEATURES_JOB, selection=[features], description="Recompute the feature store."),
        dg.define_asset_job(TRAIN_JOB, selection=[forecaster_model, champion_model], description="Train a challenger and gate it."),
        dg.define_asset_job(PREDICT_JOB, selection=[predictions], description="The champion's forecasts for target days."),
        dg.define_asset_job(PUBLISH_JOB, selection=[analytics_snapshot], description="Republish analytics.duckdb."),
    ]
    return dg.Definitions(
        assets=[raw_prices, features, forecaster_model, champion_model, predictions, analytics_snapshot],
        asset_checks=build_raw_price_checks(raw_prices),
        jobs=jobs,
        schedules=[build_daily_ingest_schedule(ingest_job, live=settings.source == "xm")],
        resources={
            "warehouse": WarehouseResource(path=str(settings.warehouse_path)),
            "source": SourceResource(spec=settings.source),
            "mlflow_tracking": build_mlflow_resource(settings.mlflow_tracking_uri, str(settings.mlflow_artifacts)),
        },
    )
