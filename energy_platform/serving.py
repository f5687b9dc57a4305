"""Batch serving: the champion's forecast of one target day from the warehouse's history.

The model is the registered pyfunc, so the predictions asset, `mlflow models serve` and a
notebook all run the same preprocessing. Inputs are checked here first so that a day with
missing history fails naming the dates instead of forecasting from a gap.

A model that reads a file's exogenous series (load, wind forecasts) gets them on each hourly row,
and the rows of the day after the cutoff with its forecasts and a null price. A model that reads
operating data gets, on each hourly row of its request, the day's demand and
generation and the month's hydrology and ONI (`hourly_operating_columns`), null where unknown:
the REST shape. The predictions asset serves the forecaster from its `features.daily` row
instead (`forecast_from_features`): the same `build_feature_frame`, stored once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

import polars as pl

from energy_platform.forecasting.operating_features import (
    OPERATING_GROUPS,
    OperatingData,
    format_groups,
    hourly_operating_columns,
    operating_inputs,
)
from energy_platform.forecasting.request_history import complete_days_needed
from energy_platform.warehouse.prices import read_prices


class IncompleteInputsError(ValueError):
    """The history a forecast needs is not complete in the warehouse."""


def history_window(prices: pl.DataFrame, target: date, horizon_days: int, history_days: int,
                   complete_days: int | None = None) -> pl.DataFrame:
    """Hourly history ending at the cutoff (target - H), covering `history_days` days before the target.

    The last `complete_days` days up to the cutoff (all of them when None) must hold 24 prices;
    older days only carry operating values (a model reading ENSO asks for 200 days), so an unknown
    price there is a row with a null price, never a refusal, and the window starts at the first
    stored day when the data begins later (a shorter request, as the README allows)."""
    cutoff = target - timedelta(days=horizon_days)
    first = target - timedelta(days=history_days)
    need_from = first if complete_days is None else max(first, cutoff - timedelta(days=complete_days - 1))
    window = prices.filter(pl.col("date").is_between(first, cutoff))
    complete = set(window.filter(pl.col("price").is_not_null()).group_by("date").len().filter(pl.col("len") == 24)["date"].to_list())
    needed = [need_from + timedelta(days=i) for i in range((cutoff - need_from).days + 1)]
    missing = [d for d in needed if d not in complete]
    if missing:
        shown = ", ".join(str(d) for d in missing[:10]) + (" …" if len(missing) > 10 else "")
        raise IncompleteInputsError(
            f"cannot forecast {target}: {len(missing)} day(s) of history without 24 prices: {shown}"
        )
    if need_from == first:
        return window.sort("ts")
    start = min(window["date"].min(), need_from)
    hours = pl.datetime_range(datetime.combine(start, time()), datetime.combine(cutoff, time(23)), "1h", eager=True)
    grid = pl.DataFrame({"ts": hours.cast(window.schema["ts"])})
    return grid.join(window.drop("date", "hour"), on="ts", how="left").with_columns(
        pl.col("ts").dt.date().alias("date"), pl.col("ts").dt.hour().cast(window.schema["hour"]).alias("hour"),
    ).select(window.columns)


def forecaster_of(model):
    """The MLPForecaster inside a pyfunc (loaded or in memory), or None (the persistence baseline)."""
    python_model = getattr(model, "python_model", None)
    if python_model is None and hasattr(model, "unwrap_python_model"):
        python_model = model.unwrap_python_model()
    return getattr(python_model, "forecaster", None)


def operating_groups_of(model) -> tuple[str, ...]:
    forecaster = forecaster_of(model)
    return tuple(forecaster.spec.operating_groups) if forecaster is not None else ()


def exogenous_of(model) -> list[str]:
    """The exogenous series a pyfunc's forecaster reads (none for the persistence baseline)."""
    forecaster = forecaster_of(model)
    return forecaster.exogenous if forecaster is not None else []


def request_frame(model, history: pl.DataFrame, operating: OperatingData | None) -> pl.DataFrame:
    """The REST request for `history`: `ts`, `price` and the exogenous and operating columns the model reads."""
    groups = operating_groups_of(model)
    frame = history.select("ts", "price", *exogenous_of(model))
    if not groups:
        return frame
    return hourly_operating_columns(frame, operating or OperatingData.empty(), groups).with_columns(
        pl.col(c).cast(pl.Float64) for c in operating_inputs(groups)
    )


def forecast_day(model, prices: pl.DataFrame, target: date, horizon_days: int, history_days: int,
                 operating: OperatingData | None = None) -> pl.DataFrame:
    """24 rows `target_date, hour, ts, forecast, p10, p50, p90, feature_cutoff` from a pyfunc model."""
    forecaster = forecaster_of(model)
    complete_days = None if forecaster is None else complete_days_needed(forecaster)
    history = history_window(prices, target, horizon_days, history_days, complete_days)
    if exogenous_of(model):  # and the day ahead of the cutoff: its exogenous forecasts, never its prices
        ahead = target - timedelta(days=horizon_days - 1)
        history = pl.concat([history, prices.filter(pl.col("date") == ahead).with_columns(pl.lit(None, pl.Float64).alias("price"))
                             .select(history.columns)])
    out = pl.from_pandas(model.predict(request_frame(model, history, operating).to_pandas()))
    out = out.with_columns(pl.col("ts").cast(pl.Datetime("us")))
    days = out["ts"].dt.date().unique().to_list()
    if days != [target] or out.height != 24:
        raise RuntimeError(f"model answered for {days} with {out.height} rows, expected 24 hours of {target}")
    return out.select(
        pl.lit(target).alias("target_date"),
        pl.col("ts").dt.hour().cast(pl.Int32).alias("hour"),
        "ts", "forecast", "p10", "p50", "p90",
        pl.lit(target - timedelta(days=horizon_days)).alias("feature_cutoff"),
    )


def forecast_range(warehouse_path, model, start: date, end: date, horizon_days: int, history_days: int) -> pl.DataFrame:
    """`forecast_day` for every target day of [start, end], reading the history they need once."""
    targets = pl.date_range(start, end, "1d", eager=True).to_list()
    prices = read_prices(warehouse_path, start - timedelta(days=history_days), end)
    return pl.concat([forecast_day(model, prices, d, horizon_days, history_days) for d in targets])


def features_for(forecaster, warehouse_path, start: date, end: date) -> tuple[pl.DataFrame, str | None]:
    """The `features.daily` rows `forecaster` reads to forecast [start, end], and a warning when
    the store's holiday calendar is not the one it was trained with (ENERGY_PLATFORM_COUNTRY
    changed since): it then reads its own calendar's holiday columns until a model of the new
    one replaces it, rather than holidays it never learnt.

    The rows begin a lookback before `start`: their realised prices (`target_h..`) are what the
    plausibility rule's "lowest price of the 365 days up to the cutoff" reads. With the target
    days' rows alone it saw only the minima remembered at training, so a champion kept through a
    price collapse held every median above prices the market had already printed."""
    from energy_platform.forecasting.features import in_calendar
    from energy_platform.forecasting.plausibility import lookback_days
    from energy_platform.warehouse.features import read_features_and_calendar

    since, _ = lookback_days(start - timedelta(days=forecaster.spec.horizon_days))  # the first target's cutoff
    rows, calendar = read_features_and_calendar(warehouse_path, since, end)
    own = forecaster.spec.country
    if calendar is None or calendar == own or rows.is_empty():
        return rows, None
    return in_calendar(rows, own, forecaster.spec.horizon_days), (
        f"features.daily holds the {calendar} holiday calendar, the champion was trained with {own}: "
        f"it reads its own until a model of {calendar} replaces it")


def days_without_exogenous(forecaster, features: pl.DataFrame, start: date, end: date) -> dict[date, list[str]]:
    """Per target day of [start, end] whose `features.daily` row lacks only exogenous inputs (the
    file did not carry that day ahead of its prices), the series it lacks. Such a day cannot be
    forecast by this forecaster; its prices are all there, so persistence can serve it."""
    from energy_platform.forecasting.features import feature_names, lag_column

    exog = forecaster.exogenous
    if not exog:
        return {}
    op = set(forecaster.spec.operating_columns())
    names = [n for n in feature_names(forecaster.spec, exog) if n not in op]
    rows = features.filter(pl.col("target_date").is_between(start, end))
    out: dict[date, list[str]] = {}
    for row in rows.iter_rows(named=True):
        series = {(lag_column(n) or ("", 0))[0] for n in names if row.get(n) is None}
        if series and series <= set(exog):
            out[row["target_date"]] = [e for e in exog if e in series]
    return out


def forecast_from_features(forecaster, features: pl.DataFrame, start: date, end: date, horizon_days: int,
                           skip: set[date] | frozenset[date] = frozenset()) -> pl.DataFrame:
    """The forecaster's 24 hours of every target day of [start, end] but `skip` from its
    `features.daily` row (same columns as `forecast_day`); a day without its row fails naming it."""
    frames = []
    for target in [d for d in pl.date_range(start, end, "1d", eager=True).to_list() if d not in skip]:
        q = forecaster.predict(features, target)
        frames.append(q.select(
            pl.lit(target).alias("target_date"),
            pl.col("hour").cast(pl.Int32),
            (pl.lit(target).cast(pl.Datetime("us")) + pl.duration(hours=pl.col("hour"))).alias("ts"),
            "forecast", "p10", "p50", "p90",
            pl.lit(target - timedelta(days=horizon_days)).alias("feature_cutoff"),
        ))
    return pl.concat(frames)


def unknown_operating_groups(forecaster, features: pl.DataFrame, start: date, end: date) -> dict[date, list[str]]:
    """Per target day of [start, end], the operating groups the forecaster reads that its
    `features.daily` row does not know (a late or stopped source): the forecast goes on, reading
    them as missing, and the operator should know."""
    groups = forecaster.spec.operating_groups
    rows = features.filter(pl.col("target_date").is_between(start, end)).sort("target_date")
    out: dict[date, list[str]] = {}
    for row in rows.iter_rows(named=True):
        lacking = [g for g in groups if any(row.get(c) is None for c in OPERATING_GROUPS[g])]
        if lacking:
            out[row["target_date"]] = lacking
    return out


def adaptive_band(warehouse_path, forecaster, frame: pl.DataFrame, horizon_days: int,
                  floor: float | None) -> tuple[pl.DataFrame, dict[str, object]]:
    """The forecaster's adaptive 10-90 band (`forecasting/adaptive_band.py`) on `frame`, the
    forecasts of a range of target days, from the platform's own history: the bands stored in
    `ml.predictions` for the days up to each cutoff joined with their realised prices.

    Returns the frame (p10/p90 replaced where adjusted; median untouched) and what was done:
    `status` ("off", "adjusted", "partly adjusted" or "fallback: raw band"), the settings, and
    per target day the adjustment theta (band widths) and the known days behind it."""
    from energy_platform.forecasting import plausibility
    from energy_platform.forecasting.adaptive_band import adjust_frame, settings_of
    from energy_platform.forecasting.features import daily_panel
    from energy_platform.warehouse.predictions import read_issued_bands

    settings = settings_of(forecaster)
    if not settings.enabled or frame.is_empty():
        return frame, {"status": "off"}
    first, last = frame["target_date"].min(), frame["target_date"].max()
    history = read_issued_bands(warehouse_path, last - timedelta(days=horizon_days))
    lookback = plausibility.LOOKBACK_DAYS + horizon_days
    prices = read_prices(warehouse_path, first - timedelta(days=lookback), last)
    actual = prices.select(pl.col("date").alias("target_date"), pl.col("hour").cast(pl.Int32), pl.col("price").alias("actual"))
    lowest: dict[date, float] = {}
    if prices.height:
        panel = daily_panel(prices)
        targets = frame["target_date"].unique().to_list()
        lowest = dict(zip(targets, plausibility.lowest_before_each(panel.start, panel.prices, targets, horizon_days), strict=True))
    batch = frame.with_columns(pl.col("hour").cast(pl.Int32)).join(actual, on=["target_date", "hour"], how="left")
    adjusted, per_day = adjust_frame(batch, history, horizon_days, settings, floor=floor, lowest=lowest)
    n_adj = int(per_day["band_adjusted"].sum())
    status = ("adjusted" if n_adj == per_day.height else "fallback: raw band" if n_adj == 0 else "partly adjusted")
    info: dict[str, object] = {
        "status": status, "step": settings.step, "mode": settings.mode, "sides": settings.sides, "min_days": settings.min_days,
        "days_adjusted": n_adj, "days": per_day.height, "per_day": per_day,
    }
    return adjusted.select(frame.columns), info


@dataclass
class Served:
    """What `serve_days` forecast, and what the operator should hear about it."""

    frame: pl.DataFrame  # target_date, hour, ts, forecast, p10, p50, p90, feature_cutoff, operating_unknown, model_version, mlflow_run_id
    band: dict[str, object] = field(default_factory=lambda: {"status": "off"})
    unknown: dict[date, list[str]] = field(default_factory=dict)  # per day, the operating groups read as missing
    by_baseline: list[date] = field(default_factory=list)  # the days persistence served (no day ahead of the prices)
    warnings: list[str] = field(default_factory=list)


def serve_days(warehouse_path, registry, champion, first: date, last: date, horizon_days: int, floor: float | None,
               dagster_tags: dict[str, str] | None = None) -> Served:
    """The champion's forecasts of every target day of [first, last], ready to store.

    A forecaster reads its `features.daily` rows and gets its adaptive band; an older pyfunc
    reads raw history. A day whose row lacks only a file's exogenous series (the file carried
    no day ahead that morning) is served by the persistence baseline, named on its rows: a desk
    needs a forecast, and persistence needs prices only. Raises ForecastInputError when a day
    cannot be forecast at all."""
    model = registry.load(champion)
    forecaster = forecaster_of(model)
    served = Served(frame=pl.DataFrame())
    if forecaster is None:
        frame = forecast_range(warehouse_path, model, first, last, horizon_days, champion.history_days)
    else:  # the feature store is the source: the target day's row
        rows, calendar_note = features_for(forecaster, warehouse_path, first, last)
        if calendar_note:
            served.warnings.append(f"v{champion.version}: {calendar_note}")
        no_exog = days_without_exogenous(forecaster, rows, first, last)
        served.by_baseline = sorted(no_exog)
        frame = None
        if len(no_exog) < (last - first).days + 1:
            frame = forecast_from_features(forecaster, rows, first, last, horizon_days, skip=set(no_exog))
            # the band adapted to its realised misses known at each cutoff (the stored predictions + prices)
            frame, served.band = adaptive_band(warehouse_path, forecaster, frame, horizon_days, floor)
            served.unknown = unknown_operating_groups(forecaster, rows, first, last)
        if no_exog:
            baseline = registry.ensure_baseline(read_prices(warehouse_path), horizon_days, floor, dagster_tags=dagster_tags)
            series = sorted({e for s in no_exog.values() for e in s})
            served.warnings.append(f"{baseline.describe()} serves {', '.join(map(str, served.by_baseline))}: the file carried "
                                   f"no day ahead with {', '.join(series)}, which {champion.describe()} reads")
    frames = [] if frame is None else [_named(frame, champion, served.unknown)]
    if served.by_baseline:
        model = registry.load(baseline)
        frames += [_named(forecast_range(warehouse_path, model, d, d, horizon_days, baseline.history_days), baseline, {})
                   for d in served.by_baseline]
    served.frame = pl.concat(frames, how="vertical_relaxed").sort("target_date", "hour")
    return served


def cannot_serve_message(exc: Exception, first: date, last: date, prices_to: date | None, features_to: date | None) -> str:
    """Why [first, last] cannot be served, and where to look: a feature store behind the prices
    is most often held back by a blocking check of the raw prices, not by a missing run."""
    message = f"cannot forecast {first}..{last}: {exc}"
    if features_to is not None and prices_to is not None and features_to < last:
        message += (f"; features.daily ends at target day {features_to}, behind the prices stored to {prices_to}: a "
                    "blocking check of raw_prices holds it back until the data are mended (see the last ingestion "
                    "run), or materialize features")
    return message


def _named(frame: pl.DataFrame, card, unknown: dict[date, list[str]]) -> pl.DataFrame:
    """`frame` with the version that served it and the operating groups it read as missing (as
    everywhere else: model_versions.operating_groups, tags)."""
    return frame.with_columns(
        pl.col("target_date").replace_strict({d: format_groups(g) for d, g in unknown.items()}, default=None,
                                             return_dtype=pl.Utf8).alias("operating_unknown"),
        pl.lit(card.version).alias("model_version"),
        pl.lit(card.run_id or "").alias("mlflow_run_id"),
    )
