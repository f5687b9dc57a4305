"""Issue 12 item 3: choose the forecaster's output stage on validation periods, all variants from one run.

The output stage (member averaging, naive_d blend, smoothing across hours, the conformal band,
the plausibility clamp) acts on the nets' outputs only, so one walk-forward run that records,
at every refit, the early-stopped nets' validation-slice outputs and, for every test day, each
net's raw output, lets every output-stage variant be scored on exactly the same nets. The
scoring below calls the model's own functions (calibration.offset/apply, plausibility.smooth_profile
/clamp, MLPForecaster._blend_weight), and the variant equal to the model's configuration
reproduces its forecasts exactly (checked on every run: `replay_max_abs_diff`).

    PYTHONPATH=. .venv/bin/python bench/trust_output_stage.py --period co_2022
    PYTHONPATH=. .venv/bin/python bench/trust_output_stage.py --period np_val

Periods are validate_forecaster.py's (never a test period). One JSON line per variant goes to
bench/results/trust_variants.jsonl; the recorded arrays to --record (npz) if asked.
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import pickle
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from validate_forecaster import PERIODS, TEST_STARTS

from energy_platform.forecasting import calibration, metrics, plausibility
from energy_platform.forecasting.backtest import backtest
from energy_platform.forecasting.base import prediction_features, training_set
from energy_platform.forecasting.features import DailyPanel, daily_panel
from energy_platform.forecasting.model import MLPForecaster
from energy_platform.forecasting.models import make_model
from energy_platform.forecasting.plausibility import lowest_before_each
from energy_platform.sources import SampleSource, read_hourly_csv

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "results" / "trust_variants.jsonl"


class Recorder:
    """Wraps a fitted-in-place MLPForecaster, recording what the output stage needs."""

    def __init__(self, model: MLPForecaster):
        self.m = model
        self.name, self.horizon_days, self.has_intervals, self.reads_exogenous = model.name, model.horizon_days, True, True
        self.fits: list[dict] = []
        self.preds: list[dict] = []

    def min_window_days(self, n_exog: int = 0) -> int:
        return self.m.min_window_days(n_exog)

    def _nets(self, nets, x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            xt = torch.tensor(self.m._scale_x(x), dtype=torch.float32)
            return np.stack([net(xt).numpy() for net in nets])

    def fit(self, panel: DailyPanel, train_end: date, window_days: int) -> None:
        m = self.m
        m.fit(panel, train_end, window_days)
        cfg = m.config
        data = training_set(panel, m.spec, train_end, window_days, cfg.min_train_days + cfg.val_days)
        xv = data.X[-cfg.val_days:]
        self.fits.append(dict(
            base_val=self._nets(m._bases, xv), naive=m._naive_scaled(xv),
            y=m._price_scaler.transform(data.Y[-cfg.val_days:]), scaler=copy.deepcopy(m._price_scaler),
            blend=m._blend, shift=m._interval_shift,
        ))

    def predict(self, panel: DailyPanel, target: date):
        out = self.m.predict(panel, target)
        x = prediction_features(panel, self.m.spec, target, self.m._exog)
        self.preds.append(dict(
            fit=len(self.fits) - 1, members=self._nets(self.m._members, x)[:, 0], bases=self._nets(self.m._bases, x)[:, 0],
            naive=self.m._naive_scaled(x)[0], out=out.select("p10", "p50", "p90").to_numpy(),
        ))
        return out


def _blended(q: np.ndarray, naive: np.ndarray, w: float) -> np.ndarray:
    return q + ((w - 1.0) * (q[..., 1] - naive))[..., None]


def score_variant(rec: Recorder, v: dict, actual, weekly, days, lowest, floor) -> tuple[dict, np.ndarray]:
    n_members = v.get("members")
    fits = []
    for f in rec.fits:
        base = f["base_val"][:n_members].mean(0)
        w = MLPForecaster._blend_weight(base, f["naive"], f["y"]) if rec.m.config.blend_naive else 1.0
        val = plausibility.smooth_profile(_blended(base, f["naive"], w), v["smooth"], v.get("last_hour", 23))
        shift = calibration.offset(val, f["y"], v["conformal"], v["halflife"])
        fits.append((w, shift))
    qs, spreads = [], []
    for p, low in zip(rec.preds, lowest, strict=False):
        w, shift = fits[p["fit"]]
        scaler = rec.fits[p["fit"]]["scaler"]
        mem, bas = p["members"][:n_members], p["bases"][:n_members]
        seeds = (mem + bas) / 2 if v["snapshot"] else mem  # what each seed contributes
        q = seeds.mean(0)
        spreads.append(float(scaler.inverse(seeds[..., 1]).std(0).mean()))
        q = plausibility.smooth_profile(_blended(q, p["naive"], w), v["smooth"], v.get("last_hour", 23))
        q = scaler.inverse(calibration.apply(q, shift, v["conformal"]))
        if v.get("p10_bound"):  # what-if: the band's lower edge bounded like the median
            q = q.copy()
            q[..., 0] = np.maximum(q[..., 0], plausibility.median_bound(low)) if np.isfinite(low) else q[..., 0]
        qs.append(plausibility.clamp(q, low, floor) if v.get("clamp", True) else q)
    q = np.stack(qs)
    cov_q = metrics.coverage_by_quarter(days, actual, q[..., 0], q[..., 2])
    row = {
        "mae": metrics.mae(actual, q[..., 1]), "rmae": metrics.rmae(actual, q[..., 1], weekly),
        "pinball": metrics.pinball(actual, q[..., 0], q[..., 1], q[..., 2]),
        "coverage_80": metrics.coverage(actual, q[..., 0], q[..., 2]),
        "coverage_80_by_quarter": cov_q, "quarter_max_dev": max(abs(c - 0.8) for c in cov_q.values()),
        "jaggedness_ratio": metrics.jaggedness_ratio(actual, q[..., 1]),
        "below_floor_share": metrics.below_floor_share(q[..., 0], q[..., 1], np.repeat(lowest, 24), floor),
        "seed_spread": float(np.mean(spreads)),
    }
    return row, q


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--period", choices=PERIODS, required=True)
    ap.add_argument("--variant", default="{}", help="JSON overrides of MLPConfig for the recorded nets")
    ap.add_argument("--label", default="")
    ap.add_argument("--record", type=Path, help="pickle the recorded nets' outputs here (re-score with --rescore)")
    ap.add_argument("--rescore", type=Path, help="score a grid on a recording instead of running the backtest")
    ap.add_argument("--grid", default=None, help="JSON {key: [values]} replacing the default grid")
    args = ap.parse_args()
    p = PERIODS[args.period]
    start, end = date.fromisoformat(p["start"]), date.fromisoformat(p["end"])
    assert end < TEST_STARTS[args.period.split("_")[0]] and end < date.fromisoformat(p.get("test_start", "9999-12-31"))
    panel = daily_panel(read_hourly_csv(p["csv"], floor=None) if p["csv"] else SampleSource().frame)
    overrides = json.loads(args.variant)
    floor_kw = {"price_floor": p["floor"]} if "floor" in p else {}
    every = p.get("every", 1)
    if args.rescore:
        with args.rescore.open("rb") as fh:
            rec, result, wall, overrides = pickle.load(fh)
        model = rec.m
    else:
        model = make_model("forecaster", horizon_days=p["horizon"], seed=0, **{**floor_kw, **overrides})
        rec = Recorder(model)
        t0 = time.perf_counter()
        result = backtest(panel, [rec], start, end, recalibrate_every=every, window_days=p["window"])
        wall = time.perf_counter() - t0
        if args.record:
            with args.record.open("wb") as fh:
                pickle.dump((rec, result, wall, overrides), fh)
    days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
    idx = panel.index_of(days)
    actual, weekly = panel.prices[idx], panel.rows(panel.prices, idx - 7)
    lowest = lowest_before_each(panel.start, panel.prices, days, p["horizon"])
    floor = model.config.price_floor
    cfg = model.config
    as_configured = dict(snapshot=cfg.snapshot_bases, smooth=cfg.smooth, conformal=cfg.conformal, halflife=cfg.conformal_halflife)
    if cfg.smooth_last_hour != 23:
        as_configured["last_hour"] = cfg.smooth_last_hour
    axes = dict(snapshot=[False, True], smooth=[0.0, 0.1, 0.2, 0.3], conformal=["additive", "scaled"], halflife=[None, 28.0, 14.0, 7.0])
    axes.update(json.loads(args.grid) if args.grid else {})
    grid = [dict(zip(axes, combo, strict=False)) for combo in itertools.product(*axes.values())]
    recorded = np.stack([pr["out"] for pr in rec.preds])
    with OUT.open("a") as fh:
        for v in grid:
            row, q = score_variant(rec, v, actual, weekly, days, lowest, floor)
            row = {"period": args.period, "label": args.label, "nets": overrides, "recalibrate_every": every,
                   "window_days": p["window"], "output_stage": v, **row}
            if v == as_configured:
                row["replay_max_abs_diff"] = float(np.nanmax(np.abs(q - recorded)))
                row["backtest_metrics"] = {k: v for k, v in result.metrics[0].items() if k != "coverage_80_by_quarter"}
                row["wall_s"] = round(wall, 1)
            fh.write(json.dumps(row) + "\n")
            print(f"{json.dumps(v):80s} rmae {row['rmae']:.4f} cov {row['coverage_80']:.3f} qdev {row['quarter_max_dev']:.3f} "
                  f"jag {row['jaggedness_ratio']:.3f} spread {row['seed_spread']:.2f}"
                  + (f"  replay diff {row['replay_max_abs_diff']:.2e}" if "replay_max_abs_diff" in row else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
