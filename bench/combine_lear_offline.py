"""Offline (session 5): MAE of w * forecaster p50 + (1 - w) * lear against naive_d, from hourly forecasts.

    python bench/combine_lear_offline.py FORECASTER.parquet LEAR.parquet [FORECASTER2.parquet LEAR2.parquet ...]

FORECASTER.parquet: `validate_forecaster.py --naive --forecasts-out`; LEAR.parquet: the backtest CLI with
`--models lear,naive_d --forecasts-out` over the same (validation) days. The band is shifted with the median.
"""

import sys

import numpy as np
import polars as pl

KEY = ["target_date", "hour"]


def load(fc_path: str, lear_path: str) -> pl.DataFrame:
    fc = pl.read_parquet(fc_path)
    lear = pl.read_parquet(lear_path).filter(pl.col("model") == "lear").select(*KEY, pl.col("forecast").alias("lear"))
    net = fc.filter(pl.col("model") == "forecaster").select(*KEY, "actual", pl.col("p50").alias("fc"), "p10", "p90")
    naive = fc.filter(pl.col("model") == "naive_d").select(*KEY, pl.col("forecast").alias("naive"))
    return net.join(naive, on=KEY).join(lear, on=KEY).sort(KEY)


def main(paths: list[str]) -> None:
    for fc_path, lear_path in zip(paths[0::2], paths[1::2], strict=True):
        d = load(fc_path, lear_path)
        y, fc, le, nv, lo, hi = (d[c].to_numpy() for c in ("actual", "fc", "lear", "naive", "p10", "p90"))
        base = np.abs(y - nv).mean()
        print(f"{fc_path}: naive_d MAE {base:.3f}, forecaster {np.abs(y - fc).mean() / base:.4f}, "
              f"lear {np.abs(y - le).mean() / base:.4f} (x naive_d MAE), coverage {((y >= lo) & (y <= hi)).mean():.3f}")
        for w in (0.9, 0.8, 0.7, 0.6, 0.5, 0.4):
            c = np.maximum(w * fc + (1 - w) * le, 0)
            shift = c - fc
            cov = ((y >= lo + shift) & (y <= hi + shift)).mean()
            print(f"  w_forecaster {w:.1f}: MAE {np.abs(y - c).mean():.3f}, x naive_d {np.abs(y - c).mean() / base:.4f}, coverage {cov:.3f}")


if __name__ == "__main__":
    main(sys.argv[1:])
