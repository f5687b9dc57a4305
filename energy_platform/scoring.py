"""One definition of forecast accuracy for the whole platform: the backtest, the realised accuracy
of served forecasts, the promotion gate and the dashboard all score through this module.

Input is a long forecast frame, one row per (group, target day, hour): `actual`, `forecast` (the
point forecast, p50 for the forecaster) and `naive_w` (the weekly naive p[d-7, h], the field's
rMAE denominator), optionally `p10`/`p90`. Every score is pooled over hours:

    rMAE = sum |actual - forecast| / sum |actual - naive_w|   over the same hours,

never a mean of daily ratios (a few calm days with a tiny naive error would inflate that). rMAE
is null when any scored hour lacks its naive value (it would not be comparable) or the naive's
error is zero. `pool` combines stored daily scores (mae x hours) into the same number, so a
28-day rMAE from `monitoring.forecast_accuracy` equals the rMAE of those 28 x 24 hours.

Polars only (no PyTorch): the dashboard and the monitoring code import it.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

LOWER, UPPER = 0.1, 0.9  # the band's nominal quantiles: coverage should be 0.8


def _pinball(q: float, col: str) -> pl.Expr:
    err = pl.col("actual") - pl.col(col)
    return pl.max_horizontal(q * err, (q - 1) * err)


def score(frame: pl.DataFrame, by: Sequence[str] = ("model",)) -> pl.DataFrame:
    """Pooled scores per group: hours, days, mae, rmse, smape, naive_w_mae, rmae, and when the
    frame has a band, pinball (mean over 0.1/0.5/0.9) and coverage_80."""
    missing = {"actual", "forecast", "naive_w", "target_date"} - set(frame.columns)
    if missing:
        raise ValueError(f"a forecast frame needs columns {sorted(missing)}")
    by = list(by)
    rows = frame.filter(pl.col("actual").is_not_null() & pl.col("forecast").is_not_null())
    abs_err = (pl.col("actual") - pl.col("forecast")).abs()
    naive_err = (pl.col("actual") - pl.col("naive_w")).abs()
    den = pl.col("actual").abs() + pl.col("forecast").abs()
    aggs = [
        pl.len().cast(pl.Int32).alias("hours"),
        pl.col("target_date").n_unique().cast(pl.Int32).alias("days"),
        abs_err.mean().alias("mae"),
        ((pl.col("actual") - pl.col("forecast")) ** 2).mean().sqrt().alias("rmse"),
        pl.when(den > 0).then(2 * abs_err / den).otherwise(0.0).mean().alias("smape"),
        pl.when(pl.col("naive_w").null_count() == 0).then(naive_err.mean()).alias("naive_w_mae"),
    ]
    band = {"p10", "p90"} <= set(frame.columns)
    if band:
        p50 = "p50" if "p50" in frame.columns else "forecast"
        aggs += [
            ((_pinball(LOWER, "p10") + _pinball(0.5, p50) + _pinball(UPPER, "p90")) / 3).mean().alias("pinball"),
            ((pl.col("actual") >= pl.col("p10")) & (pl.col("actual") <= pl.col("p90"))).mean().alias("coverage_80"),
        ]
    out = rows.group_by(by, maintain_order=True).agg(aggs) if by else rows.select(aggs)
    return out.with_columns(
        pl.when(pl.col("naive_w_mae") > 0).then(pl.col("mae") / pl.col("naive_w_mae")).alias("rmae")
    )


def pool(daily: pl.DataFrame, by: Sequence[str] = ()) -> pl.DataFrame:
    """Stored daily scores (target_date, hours, mae, naive_w_mae, optional coverage_80) pooled
    into one row per group, with the definitions of `score`. Days without a naive error are left
    out of the rMAE but not of the MAE."""
    by = list(by)
    with_naive = pl.col("naive_w_mae").is_not_null()
    aggs = [
        pl.col("target_date").n_unique().cast(pl.Int32).alias("days"),
        pl.col("target_date").min().alias("first_day"),
        pl.col("target_date").max().alias("last_day"),
        pl.col("hours").sum().cast(pl.Int32).alias("hours"),
        ((pl.col("mae") * pl.col("hours")).sum() / pl.col("hours").sum()).alias("mae"),
        ((pl.col("mae") * pl.col("hours")).filter(with_naive).sum()).alias("_model_abs"),
        ((pl.col("naive_w_mae") * pl.col("hours")).filter(with_naive).sum()).alias("_naive_abs"),
        ((pl.col("hours")).filter(with_naive).sum()).alias("_naive_hours"),
    ]
    if "coverage_80" in daily.columns:
        aggs.append(((pl.col("coverage_80") * pl.col("hours")).sum() / pl.col("hours").sum()).alias("coverage_80"))
    out = daily.group_by(by, maintain_order=True).agg(aggs) if by else daily.select(aggs)
    return out.with_columns(
        pl.when(pl.col("_naive_abs") > 0).then(pl.col("_model_abs") / pl.col("_naive_abs")).alias("rmae"),
        pl.when(pl.col("_naive_hours") > 0).then(pl.col("_naive_abs") / pl.col("_naive_hours")).alias("naive_w_mae"),
    ).drop("_model_abs", "_naive_abs", "_naive_hours")



def pool_trailing(daily: pl.DataFrame, days: int, by: Sequence[str] = ()) -> pl.Series:
    """For each stored daily row, the pooled rMAE of its group's rows in [target_date - days + 1,
    target_date] (as `pool` would give on that window), aligned with `daily`'s rows."""
    by = list(by)
    keyed = daily.with_row_index("_row").with_columns(
        pl.when(pl.col("naive_w_mae").is_not_null()).then(pl.col("mae") * pl.col("hours")).otherwise(0.0).alias("_m"),
        pl.when(pl.col("naive_w_mae").is_not_null()).then(pl.col("naive_w_mae") * pl.col("hours")).otherwise(0.0).alias("_n"),
    ).sort([*by, "target_date"])
    sums = keyed.rolling(index_column="target_date", period=f"{days}d", group_by=by or None).agg(
        pl.col("_row").last(), pl.col("_m").sum(), pl.col("_n").sum()
    )
    ratio = sums.select("_row", pl.when(pl.col("_n") > 0).then(pl.col("_m") / pl.col("_n")).alias("_trailing"))
    return daily.with_row_index("_row").join(ratio, on="_row", how="left").sort("_row")["_trailing"].alias(f"rmae_{days}d")
