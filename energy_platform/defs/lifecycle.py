"""The model lifecycle as assets: feature store, training, the promotion gate, daily predictions.

Each asset's `deps` are exactly the tables it reads: features <- raw prices + the three operating
tables; forecaster_model <- features.daily (the fit) + raw prices and operating data (its recent
backtest and the check that the logged pyfunc reproduces it from a request); champion_model <-
raw prices and operating data (it runs the artifacts on requests); predictions <- features.daily
(the forecaster's rows) + raw prices (the persistence baseline's history, and the realised prices
the adaptive band compares its own earlier partitions' bands with).
"""

from datetime import timedelta

import dagster as dg
import polars as pl
from pydantic import Field

from energy_platform.daily_forecast import CannotServeError, forecast_or_fall_back
from energy_platform.defs.automation import features_condition
from energy_platform.defs.metadata import markdown_preview
from energy_platform.defs.resources import WAREHOUSE_POOL, RegistryResource, WarehouseResource
from energy_platform.forecasting.errors import ForecastInputError
from energy_platform.forecasting.features import check_calendar
from energy_platform.forecasting.operating_features import format_groups
from energy_platform.tracking.gate import GateInputError, run_gate
from energy_platform.tracking.registry import MIN_FRESH_DAYS
from energy_platform.tracking.training import TrainingParams, left_out_text, log_and_register, train_candidate
from energy_platform.warehouse.features import (
    FeatureStoreError,
    read_features,
    read_operating_data,
    refresh_features,
)
from energy_platform.warehouse.model_versions import record_champion_change
from energy_platform.warehouse.predictions import write_predictions
from energy_platform.warehouse.prices import latest_day, read_prices

FEATURES_CODE_VERSION = "3"  # 2: operating features (issue 12); 3: a monthly value two publications overdue is unknown
# training code: 2 tail epochs and the naive blend (session 2); 3 fits from features.daily, operating groups,
# plausibility bound, overnight smoothing (issue 12); 4 LEAR in the median for H >= 2 (issue 12, session 5);
# 5 the adaptive band on in the H >= 2 preset (issue 12, session 6); 6 the nights' own blend towards naive_d
# in the H >= 2 preset and ENSO in the default operating groups (issue 12, session 7); 7 a group known on
# under a year of the window's days is left out of the fit, and hydrology joins ENSO in the default (issue 12, session 9);
# 8 a group the window's newest day does not know is left out of the fit (issue 12, session 10);
# 9 LEAR's weight in the median fitted on the validation slice for H >= 2 (issue 12, session 12)
TRAINING_CODE_VERSION = "9"
# 2: the forecaster forecasts from its features.daily row; 3: its band adapted to the stored misses (adaptive_band)
PREDICTIONS_CODE_VERSION = "3"


class FeaturesConfig(dg.Config):
    full_recompute: bool = Field(False, description="Recompute every target day, not only new and recent ones.")
    refresh_days: int = Field(14, description="Recent target days recomputed on every run (their actuals arrive late).")


def build_features_asset(raw_prices: dg.AssetsDefinition, operating: list[dg.AssetsDefinition], horizon_days: int,
                         country: str = "CO") -> dg.AssetsDefinition:
    @dg.asset(
        deps=[raw_prices, *operating],
        pool=WAREHOUSE_POOL,
        code_version=FEATURES_CODE_VERSION,
        group_name="ml",
        kinds={"duckdb", "polars"},
        automation_condition=features_condition(operating),
        description=f"Feature store features.daily: one point-in-time row per target day (H={horizon_days}): price lags, "
                    "calendar, operating features (demand, hydrology, ENSO) as known at the cutoff, realised prices.",
    )
    def features(context: dg.AssetExecutionContext, config: FeaturesConfig, warehouse: WarehouseResource) -> dg.MaterializeResult:
        try:
            check_calendar(country)
        except ForecastInputError as exc:
            raise dg.Failure(f"ENERGY_PLATFORM_COUNTRY: {exc} (a country code of the `holidays` package, or none)") from exc
        try:
            frame = refresh_features(warehouse.path, horizon_days, full_recompute=config.full_recompute, refresh_days=config.refresh_days,
                                     country=country)
        except (FeatureStoreError, ForecastInputError) as exc:
            raise dg.Failure(str(exc)) from exc
        written = frame.height
        targets = frame["target_date"]
        return dg.MaterializeResult(metadata={
            "dagster/row_count": written,
            "target_dates": f"{targets.min()}..{targets.max()}",
            "holidays": country,
            "feature_columns": len([c for c in frame.columns if c not in ("target_date", "cutoff_date") and not c.startswith("target_h")]),
            "preview": markdown_preview(frame.select(frame.columns[:8]).tail(5)),
        })

    return features


class TrainingConfig(dg.Config):
    window_days: int = Field(1456, ge=1, description="Training window (days), the paper's 4 years.")
    backtest_weeks: int = Field(4, ge=1, description="Recent weeks of the walk-forward backtest that scores the candidate.")
    recalibrate_every: int = Field(7, ge=1, description="Days between refits in that backtest.")
    seed: int = 0
    max_epochs: int | None = Field(None, ge=1, description="Override the forecaster's epoch cap (tests use tiny values).")
    n_members: int | None = Field(None, ge=1, description="Override the ensemble size.")
    learning_rate: float | None = Field(None, gt=0, allow_inf_nan=False, description="Override the optimiser's learning rate.")
    blend_naive: bool | None = Field(None, description="Override the forecaster's blend towards the latest known day (on by default).")
    lear_weight: float | None = Field(None, ge=0, le=1, allow_inf_nan=False,
                                      description="Override the weight of LEAR in the forecaster's median (0.3 for H >= 2; 0 = off); "
                                                  "with fit_lear_weight, the largest weight the fit may choose.")
    fit_lear_weight: bool | None = Field(None, description="Override whether LEAR's weight is fitted on the validation slice, in 0, 0.1, ... "
                                                           "lear_weight (on for H >= 2).")
    price_floor: float | None = Field(None, allow_inf_nan=False,
                                      description="Override the lowest possible price no quantile goes below; default: the "
                                                  "platform's (ENERGY_PLATFORM_PRICE_FLOOR: 0, the bolsa is never negative; "
                                                  "none for a market with negative prices).")
    operating_min_days: int | None = Field(None, ge=0, description="Override the days of known values an operating group needs in the "
                                                          "training window to be read (365; fewer: the fit goes without it).")
    operating_groups: str = Field("default", description="Operating inputs: 'default' (chosen on validation, among those with data), "
                                                         "'none', 'all' or e.g. 'demand,hydrology'.")


def model_overrides(config: TrainingConfig, market_floor: float | None, country: str = "CO") -> dict[str, object]:
    """The forecaster settings a training config overrides, the price floor (the config's, else
    the market's, the one ingestion and the predictions' validation use: a model trained with 0 on
    a market with negative prices would forecast none of them) and the market's holiday calendar,
    the feature store's."""
    given = {"max_epochs": config.max_epochs, "n_members": config.n_members, "lr": config.learning_rate,
             "blend_naive": config.blend_naive, "lear_weight": config.lear_weight, "fit_lear_weight": config.fit_lear_weight,
             "operating_min_days": config.operating_min_days}
    overrides: dict[str, object] = {k: v for k, v in given.items() if v is not None}
    overrides["price_floor"] = config.price_floor if config.price_floor is not None else market_floor
    overrides["country"] = country
    return overrides


def _groups(requested: str, operating) -> tuple[str, ...]:
    from energy_platform.forecasting.models import default_operating_groups
    from energy_platform.forecasting.operating_features import parse_groups

    if requested == "default":
        return default_operating_groups(operating)
    groups = parse_groups(requested)
    lacking = [g for g in groups if g not in operating.available_groups()]
    if lacking:
        raise dg.Failure(f"operating group(s) {lacking} requested but their raw tables are empty: materialize the operating assets")
    return groups


def build_forecaster_model_asset(features: dg.AssetsDefinition, raw_prices: dg.AssetsDefinition,
                                 operating: list[dg.AssetsDefinition], horizon_days: int, country: str = "CO") -> dg.AssetsDefinition:
    @dg.asset(
        deps=[features, raw_prices, *operating],
        code_version=TRAINING_CODE_VERSION,
        group_name="ml",
        kinds={"pytorch", "mlflow"},
        description="Train the forecaster from features.daily, backtest it on recent weeks, log to MLflow, register as `challenger`.",
    )
    def forecaster_model(
        context: dg.AssetExecutionContext, config: TrainingConfig, warehouse: WarehouseResource, mlflow_tracking: dg.ResourceParam[object],
        registry: RegistryResource,
    ) -> dg.MaterializeResult:
        """`mlflow_tracking` is dagster-mlflow's tracker: requiring it starts this Dagster run's MLflow run."""
        overrides = model_overrides(config, registry.price_floor, country)
        prices = read_prices(warehouse.path, exogenous=True)  # a file's exogenous series, and its day ahead
        operating = read_operating_data(warehouse.path)
        overrides["operating_groups"] = _groups(config.operating_groups, operating)
        params = TrainingParams(horizon_days, config.window_days, config.backtest_weeks, config.recalibrate_every, config.seed, overrides)
        features = read_features(warehouse.path)
        try:
            candidate = train_candidate(prices, params, features=features, operating=operating)
            registered = log_and_register(candidate, prices, TRAINING_CODE_VERSION, operating=operating,
                                          **registry.dagster_run_tags(context.run_id))
        except BaseException:
            mlflow_tracking.end_run(status="FAILED")
            raise
        m = registered.metrics
        left_out = left_out_text(candidate.forecaster)
        if left_out != "none":
            context.log.warning(f"the fit left out operating data: {left_out}")
        return dg.MaterializeResult(metadata={
            "model_version": registered.version,
            "mlflow_run_id": registered.run_id,
            "mlflow_run": registry.run_link(registered.run_id),
            # no rMAE when the weekly naive is exact over the backtest (a price flat for weeks): the gate refuses it
            "backtest_rmae": dg.MetadataValue.float(m.get("backtest_rmae", float("nan"))),
            # none when the backtest scored NaN (a model forecasting NaN): the gate refuses it, the version stays on record
            "backtest_mae": dg.MetadataValue.float(m.get("backtest_mae", float("nan"))),
            "backtest_pinball": dg.MetadataValue.float(m.get("backtest_pinball", float("nan"))),
            "backtest_coverage_80": dg.MetadataValue.float(m.get("backtest_coverage_80", float("nan"))),
            "train_range": f"{candidate.train_start}..{candidate.train_end}",
            "data_fingerprint": candidate.fingerprint["sha256"],
            "fit_seconds": dg.MetadataValue.float(candidate.fit_seconds),
            "model_uri": registered.model_uri,
            # those the fit read: a group known on fewer than operating_min_days of the window's days is left out
            "operating_groups": format_groups(candidate.forecaster.spec.operating_groups),
            "operating_groups_left_out": left_out,
            **({EXOGENOUS: candidate.exogenous.note} if candidate.exogenous.note else {}),
        })

    return forecaster_model


EXOGENOUS = "exogenous series"  # forecaster_model's metadata: which of a file's series the model reads, and why not the others


class GateConfig(dg.Config):
    # a negative margin promoted a challenger worse than the champion; 0 fresh days compared nothing (helper F, session 19)
    margin: float = Field(0.01, ge=0.0, description="rMAE the challenger must gain over the champion to replace it (>= 0).")
    min_days: int = Field(MIN_FRESH_DAYS, ge=1, description="Days after the champion's training data needed to compare the two (>= 1).")


def build_champion_asset(forecaster_model: dg.AssetsDefinition, raw_prices: dg.AssetsDefinition,
                         operating: list[dg.AssetsDefinition], horizon_days: int) -> dg.AssetsDefinition:
    @dg.asset(
        deps=[forecaster_model, raw_prices, *operating],
        pool=WAREHOUSE_POOL,
        code_version="3",
        group_name="ml",
        kinds={"mlflow"},
        automation_condition=dg.AutomationCondition.eager(),
        description="Promotion gate: runs the challenger's artifact, then promotes it only if it beats the weekly naive, "
                    "persistence and the champion; the persistence baseline serves when nothing sound would.",
    )
    def champion_model(context: dg.AssetExecutionContext, config: GateConfig, warehouse: WarehouseResource,
                       registry: RegistryResource) -> dg.MaterializeResult:
        reg = registry.get()
        try:
            decision, before = run_gate(reg, read_prices(warehouse.path, exogenous=True), horizon_days, config.margin, config.min_days,
                                        registry.price_floor, dagster_tags=registry.dagster_run_tags(context.run_id),
                                        operating=read_operating_data(warehouse.path))
        except GateInputError as exc:
            raise dg.Failure(str(exc)) from exc
        if decision.new_champion:
            record_champion_change(warehouse.path, decision.new_champion, before.version if before else None, decision.reason)
        reg.mirror(warehouse.path)
        served = reg.champion()
        context.log.info(f"gate: {decision.label}: {decision.reason}")
        floats = {k: dg.MetadataValue.float(v) for k, v in {
            "challenger_rmae": decision.challenger_rmae,
            "persistence_rmae": decision.persistence_rmae,
            "challenger_rmae_compared": decision.compared.challenger_rmae,
            "champion_rmae": decision.compared.champion_rmae,
        }.items() if v is not None}
        return dg.MaterializeResult(metadata={
            "decision": decision.label,
            "reason": decision.reason,
            "challenger_version": decision.challenger_version,
            "champion_version_before": before.version if before else "none",
            "compared_days": decision.compared.days,
            "champion_version": served.version if served else "none",
            "champion_kind": served.kind if served else "none",
            **floats,
        })

    return champion_model


def _unknown_label(unknown: dict) -> str:
    """`2024-09-02: hydrology; 2024-09-03: hydrology,enso`, or `none`."""
    return "; ".join(f"{day}: {format_groups(groups)}" for day, groups in unknown.items()) or "none"


def _band_metadata(band: dict) -> dict[str, object]:
    """The adaptive band's metadata: what was done, and the adjustment of each target day."""
    meta: dict[str, object] = {"adaptive_band": band["status"]}
    if band["status"] == "off":
        return meta
    per_day = band["per_day"]
    meta["adaptive_band"] = (f"{band['status']}: {band['days_adjusted']}/{band['days']} day(s) adjusted "
                             f"(step {band['step']}, {band['mode']}{', per side' if band['sides'] else ''}; needs {band['min_days']} known days)")
    last = per_day.row(per_day.height - 1, named=True)
    meta["band_adjustment (last day)"] = (f"lower side {last['band_adjustment_low']:+.3f}, upper side "
                                          f"{last['band_adjustment_high']:+.3f} band widths" if last["band_adjusted"] else "none")
    meta["band_adjustment"] = markdown_preview(per_day.tail(31), rows=31)
    return meta


def build_predictions_asset(
    champion_model: dg.AssetsDefinition, features: dg.AssetsDefinition, raw_prices: dg.AssetsDefinition,
    partitions_def: dg.PartitionsDefinition, horizon_days: int,
) -> dg.AssetsDefinition:
    @dg.asset(
        deps=[champion_model, features, raw_prices],
        partitions_def=partitions_def,
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool=WAREHOUSE_POOL,
        code_version=PREDICTIONS_CODE_VERSION,
        group_name="ml",
        kinds={"duckdb", "mlflow"},
        automation_condition=dg.AutomationCondition.eager(),
        description="The champion's 24 hourly forecasts (with the 10-90 band) per target day, in ml.predictions: the "
                    "forecaster from the target day's features.daily row (its band adapted to the misses of the bands "
                    "issued before, known at the cutoff), the persistence baseline from raw prices; "
                    "with no champion yet, the persistence baseline is promoted and serves.",
    )
    def predictions(context: dg.AssetExecutionContext, warehouse: WarehouseResource, registry: RegistryResource) -> dg.MaterializeResult:
        reg = registry.get()
        window = context.partition_time_window
        first, last = window.start.date(), window.end.date() - timedelta(days=1)
        stored = latest_day(warehouse.path)
        if stored is None or last - timedelta(days=horizon_days) > stored:
            raise dg.Failure(f"cannot forecast {last}: it needs the prices of {last - timedelta(days=horizon_days)}, and the "
                             f"latest stored day is {stored} (the source is behind, or that day is not ingested yet); "
                             f"the data can forecast up to {stored + timedelta(days=horizon_days) if stored else 'nothing'}")
        champion, promoted_because = reg.ensure_champion(read_prices(warehouse.path), horizon_days, registry.price_floor,
                                                         dagster_tags=registry.dagster_run_tags(context.run_id))
        if promoted_because:
            context.log.warning(f"{champion.describe()} promoted: {promoted_because}")
            record_champion_change(warehouse.path, champion.version, None, promoted_because)
        try:
            daily = forecast_or_fall_back(warehouse.path, reg, champion, first, last, horizon_days, registry.price_floor,
                                          context.run_id, stored, registry.dagster_run_tags(context.run_id))
        except CannotServeError as exc:
            raise dg.Failure(str(exc)) from exc
        served, frame, champion = daily.served, daily.served.frame, daily.champion
        if daily.fell_back:
            context.log.warning(f"{champion.describe()} promoted: {daily.fell_back}")
        for warning in served.warnings:
            context.log.warning(warning)
        if served.unknown:
            context.log.warning(
                f"operating data unknown at the cutoff, read as missing by the forecast: {_unknown_label(served.unknown)} "
                "(materialize the operating assets; a source two publications late stays unknown)"
            )
        written, kept = write_predictions(warehouse.path, frame)
        if kept:
            context.log.warning(
                f"kept the stored forecasts of {kept[0]}..{kept[-1]} ({len(kept)} day(s)) of another v{champion.version}: "
                "the registry numbers its versions anew (the registered model deleted, or mlflow.db replaced); "
                "restore mlflow.db from a backup to keep the version history whole")
        reg.mirror(warehouse.path)
        digest = str(frame.select("target_date", "hour", "forecast", "p10", "p90", "model_version").hash_rows().sum())
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": written,
                "target_dates": f"{first}..{last}",
                "model_version": champion.version,
                "model_kind": champion.kind,
                "served_by": champion.describe(),
                "mlflow_run_id": champion.run_id or "",
                "mlflow_run": registry.run_link(champion.run_id),
                **_band_metadata(served.band),
                "operating_inputs_unknown": _unknown_label(served.unknown),
                **({"served_by_baseline (no day ahead of the prices)": ", ".join(map(str, served.by_baseline))}
                   if served.by_baseline else {}),
                "forecast (last day)": markdown_preview(
                    frame.filter(pl.col("target_date") == last).select("hour", "p10", "forecast", "p90"), rows=24
                ),
            },
            data_version=dg.DataVersion(f"v{champion.version}-{digest}"),
        )

    return predictions
