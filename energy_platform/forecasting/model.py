"""The platform's forecaster: a small ensemble of quantile MLPs in PyTorch.

Why this shape (Lago et al., 2021): the LEAR inputs (lagged daily price profiles, exogenous
day-ahead forecasts, weekday) feed an MLP with two hidden layers and 24 outputs per quantile.
Prices and exogenous series go through asinh((x - median) / MAD), fitted on the training window,
which tames price spikes; the network is trained in that space with pinball loss, and because
the transform is monotone its quantiles map back to price quantiles exactly.

Quantiles never cross: the net outputs p50 and two softplus offsets (p10 = p50 - a,
p90 = p50 + b). The point forecast is p50, the MAE-optimal forecast. Members differ only by seed
and are averaged quantile by quantile (an average of ordered triples stays ordered). The 10-90
band is then widened or narrowed by one conformal offset measured on the validation slice (the
end of the training window), so it covers ~80 % of hours out of sample, not only in training
(`calibration.py`: additive or scaled by the nets' band width, optionally weighting the newest
days most). Last, the plausibility rules (`plausibility.py`): no p50 (nor p10) below 0.9 x the
lowest price of the 365 days up to the cutoff, no quantile below the market floor. The output-stage choices
(snapshot averaging, smoothing across hours, the conformal variant) are in bench/results/trust.md.

Early stopping keeps the newest days (the validation slice) out of training, yet they are the
most informative ones when a market's level moves. So after early stopping each member trains
`tail_epochs` more epochs on the whole window, and that copy forecasts; the early-stopped net is
kept for the next warm start, so validation stays out of sample from one refit to the next. The
median may also be shrunk towards the latest known day (naive_d) by one weight, the one with the
least validation MAE: ~1 in a calm market, lower when a dry spell moves the level faster than the
net has learnt.
With `lear_weight` > 0 (the H >= 2 preset: 0.3) the median then moves that share of the way towards a
LEAR regression's forecast fitted on the same window (scaled space, the band moving with it); the band
is calibrated on the validation slice with a LEAR fitted without that slice, as the nets' early stopping.

Recalibration warm-starts from the previous fit's weights, so a daily refit costs a few epochs.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import torch
from threadpoolctl import threadpool_limits
from torch import nn

from energy_platform.forecasting import calibration, plausibility
from energy_platform.forecasting.base import (
    forecast_frame,
    min_window_days,
    prediction_features,
    prediction_features_from_frame,
    training_set,
    training_set_from_features,
)
from energy_platform.forecasting.baselines import LearRegression
from energy_platform.forecasting.errors import ForecastFitError, ForecastInputError
from energy_platform.forecasting.features import (
    HOURS,
    DailyPanel,
    FeatureSpec,
    RobustAsinhScaler,
    _with_calendar,
    daily_panel,
    exogenous_in_features,
    realised_prices,
)
from energy_platform.forecasting.operating_features import OPERATING_GROUPS, split_operating_inputs
from energy_platform.forecasting.quantile_net import QuantileMLP, StackedMLP, pinball_loss, pinball_per_member

STATE_KIND = "energy_platform.mlp_forecaster/1"
# Colombia's 2015 peak lies ~65 training spreads from a calm window's median, ERCOT's cap ~500: 2,000
# is no price of the market the model was trained on.
ABSURD_SPREADS = 2000.0


def _unknown_at_the_next_cutoff(prices, target: date, horizon_days: int) -> set[str]:
    """The operating groups the feature-store row of `target` (the first day this fit forecasts)
    does not know. The newest training row's cutoff is H days older: a source stopped in between
    was kept, and every forecast of the fit read it as missing (helper J, session 19). Plain
    prices, or a target past the data, say nothing here."""
    if isinstance(prices, DailyPanel):  # its operating arrays are by cutoff day
        i = (target - timedelta(days=horizon_days) - prices.start).days
        if not 0 <= i < prices.n_days:
            return set()
        return {g for g, columns in OPERATING_GROUPS.items()
                if any(c in prices.operating and np.isnan(prices.operating[c][i]).any() for c in columns)}
    if not (isinstance(prices, pl.DataFrame) and "target_date" in prices.columns):
        return set()
    row = prices.filter(pl.col("target_date") == target)
    if row.is_empty():
        return set()
    return {g for g, columns in OPERATING_GROUPS.items()
            if any(c in row.columns and row[c].is_null().any() for c in columns)}


@dataclass
class MLPConfig:
    """Hyperparameters; chosen on validation data before any test period (see bench/)."""

    horizon_days: int = 1
    country: str = "CO"
    price_lags: tuple[int, ...] | None = None
    exog_lags: tuple[int, ...] | None = None
    operating_groups: tuple[str, ...] = ()  # demand / hydrology / enso (operating_features.OPERATING_GROUPS)
    hidden: tuple[int, ...] = (256, 128)
    dropout: float = 0.1
    lr: float = 1e-3
    weight_decay: float = 1e-4
    batch_size: int = 64
    max_epochs: int = 150
    patience: int = 15
    warm_max_epochs: int = 10
    warm_patience: int = 3
    val_days: int = 91
    n_members: int = 4
    seed: int = 0
    warm_start: bool = True
    calibrate_intervals: bool = True
    min_train_days: int = 56
    threads: int = 1
    linear_skip: bool = True
    price_floor: float | None = None  # a market whose price cannot go below it (XM's bolsa: 0)
    blend_naive: bool = True  # shrink p50 towards the latest known day by a weight fitted on validation
    tail_epochs: int = 2  # after early stopping, epochs over the whole window incl. the validation slice
    # The output stage (issue 12, a forecast a trader can trust; chosen on validation, bench/results/trust.md)
    snapshot_bases: bool = False  # average the early-stopped nets with the tail-trained members (free snapshots)
    smooth: float = 0.0  # weight w of the [w, 1-2w, w] smoothing across neighbouring hours (scaled space)
    smooth_last_hour: int = 23  # smooth hours 0..this one only (6: the overnight profile)
    conformal: str = "additive"  # band offset: "additive" (scaled-space units) or "scaled" (x the nets' band width)
    conformal_halflife: float | None = None  # days; weight the validation slice's newest days most
    # Weight of a LEAR regression (fitted on the same window and inputs, operating ones excluded) in
    # the median: p50 <- (1 - w) p50 + w lear in the scaled space, the band moving with it; 0 = off
    # (bench/results/ablation.md, session 5).
    lear_weight: float = 0.0
    # Fit LEAR's weight on the validation slice, in 0, 0.1, ..., lear_weight (session 12): a calm
    # spell where LEAR misses the level gets less of it; off = always lear_weight.
    fit_lear_weight: bool = False
    # Online adaptive conformal band (adaptive_band.py): after each day whose actuals are known at
    # the cutoff, theta += step x (miss rate - 0.2); applied by the backtest and the predictions
    # asset to the issued forecasts (the model's own output is unchanged); 0 = off.
    adaptive_band_step: float = 0.0
    adaptive_band_mode: str = "scaled"  # or "relative" (adaptive_band.MODES)
    adaptive_band_sides: bool = False  # one theta per side, each tracking its 10 %
    # Hours 0..n-1 get their own weight towards naive_d, fitted on the validation slice after the
    # LEAR combination: Colombia's flat nights are where persistence beats the nets (session 7,
    # bench/results/ablation.md); 0 = off.
    night_blend_hours: int = 0
    # An operating group joins a fit only when its values are known on at least this many training
    # days: the series are monthly or seasonal (reservoirs, ONI), and in less than a year a net
    # cannot tell their level from the season (session 9: hydrology, better on the 1092-day
    # validation windows, made the first model of a replay from 2015-07, ~180 days, lose to
    # naive_w). A group left out is recorded in the fitted spec; with none left, prices alone.
    operating_min_days: int = 365
    # Train the members as one StackedMLP (quantile_net.py): less time per fit, each member with its
    # own initialisation, batches and early stopping; dropout's masks drawn for all at once
    # (bench/results/forecaster.md, session 20).
    stacked_members: bool = False

    def to_dict(self) -> dict:
        d = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: dict) -> MLPConfig:
        known = {f for f in cls.__dataclass_fields__}
        kw = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items() if k in known}
        return cls(**kw)


@contextlib.contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Thread-limited torch and numpy BLAS, restoring the caller's settings after: enough for
    inference (eval mode, no dropout, fixed threads: the same answer every time) without
    `use_deterministic_algorithms`, whose first call imports torch's compiler (~2 s, e.g. on a
    served model's first request)."""
    old_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with threadpool_limits(limits=threads, user_api="blas"):
            yield
    finally:
        torch.set_num_threads(old_threads)


@contextlib.contextmanager
def torch_runtime(threads: int, seed: int) -> Iterator[None]:
    """Seeded, deterministic, thread-limited torch for training, restoring the caller's settings after."""
    old_det = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        with torch_threads(threads), torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            yield
    finally:
        torch.use_deterministic_algorithms(old_det)


class MLPForecaster:
    """The `forecaster` model: fit / predict / predict_from_history / save / load."""

    has_intervals = True
    reads_exogenous = True

    def __init__(self, config: MLPConfig | None = None, **overrides: object):
        cfg = config or MLPConfig()
        if overrides:
            cfg = MLPConfig(**{**asdict(cfg), **overrides})
        self.config = cfg
        self._configured_spec = self.spec = FeatureSpec(
            horizon_days=cfg.horizon_days,
            price_lags=cfg.price_lags,
            exog_lags=cfg.exog_lags,
            country=cfg.country,
            operating_groups=cfg.operating_groups,
        )
        self.name = "forecaster"
        self.horizon_days = cfg.horizon_days
        self._members: list[QuantileMLP] = []
        self._bases: list[QuantileMLP] = []  # early-stopped nets, never trained on their validation slice
        self._night_blend = 1.0  # the nights' own weight towards naive_d (night_blend_hours)
        self._lear: LearRegression | None = None  # the LEAR in the median (lear_weight > 0)
        self._lear_w = self.config.lear_weight  # its weight (fitted on validation with fit_lear_weight)
        self._fits = 0
        self._exog: list[str] = []
        self.last_fit: dict[str, object] = {}

    @property
    def exogenous(self) -> list[str]:
        """The exogenous series the fitted model reads (a request carries them, and the day ahead's)."""
        return list(self._exog)

    # -- scaling -------------------------------------------------------------------------------
    def _column_groups(self, names: list[str], exog: list[str]) -> dict[str, np.ndarray]:
        groups = {"price": np.array([n.startswith("price_lag") for n in names])}
        groups["latest"] = np.array([n.startswith(f"price_lag{min(self.spec.resolved_price_lags())}_h") for n in names])
        for e in exog:
            groups[e] = np.array([n.startswith(f"{e}_lag") for n in names])
        for g in self.spec.operating_groups:
            groups[f"op:{g}"] = np.isin(names, OPERATING_GROUPS[g])
        return groups

    def _fit_scalers(self, X: np.ndarray, Y: np.ndarray, names: list[str], exog: list[str]) -> None:
        self._groups = self._column_groups(names, exog)
        self._price_scaler = RobustAsinhScaler(per_column=False).fit(Y)
        self._exog_scalers = {e: RobustAsinhScaler(per_column=False).fit(X[:, self._groups[e]]) for e in exog}
        self._op_scalers = {}
        for g in self.spec.operating_groups:
            block = X[:, self._groups[f"op:{g}"]]
            empty = np.isnan(block).all(axis=0)
            if empty.any():
                cols = [c for c, e in zip(OPERATING_GROUPS[g], empty, strict=True) if e]
                raise ForecastInputError(
                    f"operating group {g!r} has no known value of {cols} in the training window: "
                    "give the operating data or turn the group off"
                )
            self._op_scalers[g] = RobustAsinhScaler(per_column=True).fit(block)

    def _scale_x(self, X: np.ndarray) -> np.ndarray:
        """Scaled inputs; an unknown operating value becomes the training-window median (0 after
        scaling) and its group's missing flag (an extra input) is set, so one late day degrades
        the forecast gracefully instead of failing it."""
        out = X.copy()
        out[:, self._groups["price"]] = self._price_scaler.transform(X[:, self._groups["price"]])
        for e, sc in self._exog_scalers.items():
            out[:, self._groups[e]] = sc.transform(X[:, self._groups[e]])
        flags = []
        for g, sc in getattr(self, "_op_scalers", {}).items():
            block = sc.transform(X[:, self._groups[f"op:{g}"]])
            missing = np.isnan(block)
            out[:, self._groups[f"op:{g}"]] = np.where(missing, 0.0, block)
            flags.append(missing.any(axis=1, keepdims=True).astype(float))
        return np.hstack([out, *flags]) if flags else out

    def _training_data(self, data, train_end: date, window_days: int):
        """Training rows from prices (a frame or panel) or from feature-store rows (`target_date`...)."""
        need = self.config.min_train_days + self.config.val_days
        if isinstance(data, pl.DataFrame) and "target_date" in data.columns:  # the exogenous series the rows carry
            exog = exogenous_in_features(data.columns, self.spec)
            return training_set_from_features(data, self.spec, train_end, window_days, need, exog)
        return training_set(data, self.spec, train_end, window_days, need)

    def _prediction_row(self, data, target: date) -> np.ndarray:
        if isinstance(data, pl.DataFrame) and "target_date" in data.columns:
            return prediction_features_from_frame(data, self.spec, target, self._exog)
        return prediction_features(data, self.spec, target, self._exog)

    def min_window_days(self, n_exog: int = 0) -> int:
        return min_window_days(self.spec, self.config.min_train_days + self.config.val_days)

    # -- fitting -------------------------------------------------------------------------------
    def _groups_known_enough(self, data) -> dict[str, str]:
        """The configured operating groups this fit leaves out, each with why: a group must be known
        on at least `operating_min_days` training rows (a short window, or operating data that
        begins late) and on the newest one. A group the newest day does not know has stopped or is
        late (a monthly value two publications overdue reads as unknown): the forecasts of this fit
        would read it as missing, which the net, trained where it was known, has not learnt; the fit
        goes without it until it is known again (session 10: a model reading hydrology forecast
        four weeks with hydrology unknown at MAE 36.8 / 35.5, prices and ENSO alone 34.6 / 34.8)."""
        left_out = {}
        for g in self.spec.operating_groups:
            known = ~np.isnan(data.X[:, np.isin(data.names, OPERATING_GROUPS[g])]).any(axis=1)
            if int(known.sum()) < self.config.operating_min_days:
                left_out[g] = f"known on {int(known.sum())} of the window's {known.size} days (needs {self.config.operating_min_days})"
            elif not known[-1]:
                left_out[g] = f"not known on the newest training row (target day {data.days[-1]})"
        return left_out

    def fit(self, prices: pl.DataFrame | DailyPanel, train_end: date, window_days: int) -> None:
        cfg = self.config
        self.spec = self._configured_spec
        data = self._training_data(prices, train_end, window_days)
        first_target = train_end + timedelta(days=self.horizon_days)
        left_out = self._groups_known_enough(data)
        unknown_next = _unknown_at_the_next_cutoff(prices, first_target, self.horizon_days)
        for g in [g for g in self.spec.operating_groups if g in unknown_next and g not in left_out]:
            left_out[g] = f"not known at the cutoff of the first forecast ({first_target})"
        groups = tuple(g for g in self.spec.operating_groups if g not in left_out)
        if groups != self.spec.operating_groups:
            self.spec = replace(self.spec, operating_groups=groups)
            data = self._training_data(prices, train_end, window_days)
        panel = realised_prices(prices)  # for the plausibility bound's minima
        # the net's inputs: the features plus one missing flag per operating group (see _scale_x)
        warm = cfg.warm_start and bool(self._members) and self._input_dim == data.X.shape[1] + len(self.spec.operating_groups)
        previous = self._bases or self._members
        self._members, self._bases = [], []  # a failed fit leaves no model that could forecast
        self._fit_scalers(data.X, data.Y, data.names, data.exog)
        X = torch.tensor(self._scale_x(data.X), dtype=torch.float32)
        Y = torch.tensor(self._price_scaler.transform(data.Y), dtype=torch.float32)
        n_val = cfg.val_days
        Xtr, Ytr, Xva, Yva = X[:-n_val], Y[:-n_val], X[-n_val:], Y[-n_val:]
        with torch_runtime(cfg.threads, cfg.seed + 7919 * self._fits):
            train = self._train_stacked if cfg.stacked_members and cfg.n_members > 1 else self._train_one_by_one
            members, bases, epochs, val_losses, curve, val_pred = train(X, Y, Xtr, Ytr, Xva, Yva, warm, previous)
        self._blend = 1.0
        naive_val = self._naive_scaled(data.X[-n_val:])
        if cfg.blend_naive:
            self._blend = self._blend_weight(val_pred, naive_val, Yva.numpy())
            val_pred = self._blended(val_pred, naive_val)
        lear = None
        self._lear_w = cfg.lear_weight
        if cfg.lear_weight > 0:
            # LEAR fitted without the validation slice calibrates the band on out-of-sample forecasts,
            # like the early-stopped nets; the LEAR that forecasts is fitted on the whole window.
            cols = self._lear_columns()
            Xl = data.X[:, cols]
            if LearRegression.fits(len(Xl) - n_val, Xl.shape[1]):
                early = LearRegression().fit(Xl[:-n_val], data.Y[:-n_val])
                lear_val = self._price_scaler.transform(early.predict(Xl[-n_val:]))
                if cfg.fit_lear_weight:
                    self._lear_w = self._lear_weight(val_pred, lear_val, Yva.numpy())
                val_pred = self._with_lear(val_pred, lear_val)
                if self._lear_w > 0:  # a weight fitted to 0: no LEAR to fit, none in the forecasts
                    lear = LearRegression().fit(Xl, data.Y)
        self._night_blend = 1.0
        if cfg.night_blend_hours:
            nh = cfg.night_blend_hours
            self._night_blend = self._blend_weight(val_pred[:, :nh], naive_val[:, :nh], Yva.numpy()[:, :nh])
            val_pred = self._night_blended(val_pred, naive_val)
        val_pred = plausibility.smooth_profile(val_pred, cfg.smooth, cfg.smooth_last_hour)
        self._interval_shift = (
            calibration.offset(val_pred, Yva.numpy(), cfg.conformal, cfg.conformal_halflife) if cfg.calibrate_intervals else 0.0
        )
        self._input_dim = X.shape[1]
        self._exog = data.exog
        self._members, self._bases, self._lear = members, bases, lear
        self._remember_minima(panel, train_end)
        self._fits += 1
        self.train_end = train_end
        self.last_fit = {
            "warm": warm, "epochs": epochs, "val_pinball_scaled": float(np.mean(val_losses)), "rows": len(data.days),
            "operating_groups": list(self.spec.operating_groups),
            "operating_groups_left_out": left_out,  # configured groups this fit did not read, and why
            "blend_weight": self._blend,
            "night_blend_weight": self._night_blend,
            "lear": lear is not None,  # False when lear_weight is 0 (or fitted to 0) or the window has too few rows for it
            "lear_weight": self._lear_w if lear is not None else 0.0,
            # per epoch of the first member: (mean train pinball, validation pinball), scaled units
            "epoch_losses": curve,
        }

    def _generator(self, member: int) -> torch.Generator:
        """A member's batch order: its own stream, new at every fit."""
        return torch.Generator().manual_seed(self.config.seed * 1000 + member + 7919 * self._fits)

    def _new_net(self, n_inputs: int, member: int) -> QuantileMLP:
        torch.manual_seed(self.config.seed * 1000 + member)
        return QuantileMLP(n_inputs, self.config.hidden, self.config.dropout, self.config.linear_skip)

    def _train_one_by_one(self, X, Y, Xtr, Ytr, Xva, Yva, warm: bool, previous: list[QuantileMLP]):
        """Each member trained in turn; dropout draws from the one stream they share in turn."""
        cfg = self.config
        members, bases, epochs, val_losses, curves, val_preds = [], [], [], [], [], []
        for m in range(cfg.n_members):
            gen = self._generator(m)
            if warm:
                net = copy.deepcopy(previous[m])
                max_epochs, patience = cfg.warm_max_epochs, cfg.warm_patience
            else:
                net = self._new_net(X.shape[1], m)
                max_epochs, patience = cfg.max_epochs, cfg.patience
            curve: list[tuple[float, float]] = []
            loss, ep = self._train(net, Xtr, Ytr, Xva, Yva, max_epochs, patience, gen, curve)
            with torch.no_grad():
                val_preds.append(net(Xva))
            bases.append(net)
            if cfg.tail_epochs:
                net = copy.deepcopy(net)
                self._tail(net, X, Y, gen)
            curves.append(curve)
            members.append(net)
            epochs.append(ep)
            val_losses.append(loss)
        return members, bases, epochs, val_losses, curves[0], torch.stack(val_preds).mean(0).numpy()

    def _train_stacked(self, X, Y, Xtr, Ytr, Xva, Yva, warm: bool, previous: list[QuantileMLP]):
        """The members as one StackedMLP (`stacked_members`): the same initialisations, batch
        orders and early stopping per member, less time per fit (1.2x over a daily walk forward);
        dropout's masks are drawn for all members at once, so the forecasts differ from one-by-one
        training by a seed's worth (chosen on validation, bench/results/forecaster.md, session 20)."""
        cfg = self.config
        gens = [self._generator(m) for m in range(cfg.n_members)]
        if warm:
            nets = [copy.deepcopy(net) for net in previous[: cfg.n_members]]
            max_epochs, patience = cfg.warm_max_epochs, cfg.warm_patience
        else:
            nets = [self._new_net(X.shape[1], m) for m in range(cfg.n_members)]
            max_epochs, patience = cfg.max_epochs, cfg.patience
        stack = StackedMLP(nets)
        val_losses, epochs, curve = self._train_members(stack, Xtr, Ytr, Xva, Yva, max_epochs, patience, gens)
        with torch.no_grad():
            val_pred = stack(Xva.expand(cfg.n_members, *Xva.shape)).mean(0).numpy()
        bases = stack.unstack()
        if cfg.tail_epochs:
            opt = self._optimizer(stack)
            everyone = np.ones(cfg.n_members, dtype=bool)
            for k in range(1, cfg.tail_epochs + 1):
                self._stacked_epoch(stack, opt, X, Y, gens, everyone, f"in tail epoch {k} on the whole window")
            members = stack.unstack()
        else:
            members = bases
        return members, bases, epochs, val_losses, curve, val_pred

    def _stacked_epoch(self, stack: StackedMLP, opt, X, Y, gens, active: np.ndarray, where: str) -> np.ndarray:
        """One pass over (X, Y), each `active` member in its own seeded order; their mean training
        losses (NaN for the others). A stopped member is not run and its generator stays where it
        stopped, as in one-by-one training; the optimiser still nudges its weights (momentum,
        weight decay), which `_train_members` discards by restoring its best ones."""
        stack.train()
        n = X.shape[0]
        running = np.flatnonzero(active)
        members = None if active.all() else torch.from_numpy(running)
        perms = torch.stack([torch.randperm(n, generator=gens[m]) for m in running])
        losses = []
        for i in range(0, n, self.config.batch_size):
            b = perms[:, i : i + self.config.batch_size]
            loss = pinball_per_member(stack(X[b], members), Y[b])
            opt.zero_grad()
            loss.sum().backward()  # each member gets the gradient of its own mean
            opt.step()
            losses.append(loss.detach())
        stack.eval()
        out = np.full(len(gens), np.nan)
        if losses:
            per_step = torch.stack(losses).double()
            if not torch.isfinite(per_step).all():
                raise ForecastFitError(f"training loss became non-finite ({float(per_step[~torch.isfinite(per_step)][0])}) {where}")
            out[running] = per_step.mean(0).numpy()
        return out

    def _train_members(self, stack: StackedMLP, Xtr, Ytr, Xva, Yva, max_epochs: int, patience: int, gens):
        """Early stopping per member on its own validation loss; each ends on its best weights.
        Returns the members' best losses, their epochs and the first member's curve."""
        n = stack.n_members
        opt = self._optimizer(stack)
        best, best_state = np.full(n, np.inf), stack.snapshot()
        stale, epochs, active = np.zeros(n, dtype=int), np.zeros(n, dtype=int), np.ones(n, dtype=bool)
        curve: list[tuple[float, float]] = []
        Xv, Yv = Xva.expand(n, *Xva.shape), Yva.expand(n, *Yva.shape)
        for epoch in range(1, max_epochs + 1):
            train_loss = self._stacked_epoch(stack, opt, Xtr, Ytr, gens, active, f"at epoch {epoch}")
            with torch.no_grad():
                val = pinball_per_member(stack(Xv), Yv).numpy()
            if active[0]:
                curve.append((float(train_loss[0]), float(val[0])))
            if not np.isfinite(val[active]).all():
                raise ForecastFitError(f"validation loss became non-finite ({val[active].tolist()}) at epoch {epoch}")
            for m in np.flatnonzero(active):
                epochs[m] = epoch
                if val[m] < best[m] - 1e-6:
                    best[m], stale[m] = val[m], 0
                    stack.keep(m, best_state)
                else:
                    stale[m] += 1
                    active[m] = stale[m] < patience
            if not active.any():
                break
        for m in range(n):
            stack.restore(m, best_state)
        stack.eval()
        return [float(v) for v in best], epochs.tolist(), curve

    def _optimizer(self, net: nn.Module) -> torch.optim.Optimizer:
        # The fused kernel is ~15 % faster per step on CPU here and just as deterministic.
        return torch.optim.AdamW(net.parameters(), lr=self.config.lr, weight_decay=self.config.weight_decay, fused=True)

    def _epoch(self, net: QuantileMLP, opt: torch.optim.Optimizer, X, Y, gen, where: str) -> float:
        """One pass over (X, Y) in a seeded random order; the mean training pinball loss.

        The losses are read once per epoch, not per step (a step of these small nets is ~2 ms, and
        each read is Python overhead); a non-finite one still stops the fit, at the epoch's end."""
        net.train()
        perm = torch.randperm(X.shape[0], generator=gen)
        losses = []
        for i in range(0, X.shape[0], self.config.batch_size):
            b = perm[i : i + self.config.batch_size]
            loss = pinball_loss(net(X[b]), Y[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.detach())
        net.eval()
        if not losses:
            return 0.0
        per_step = torch.stack(losses).double()
        if not torch.isfinite(per_step).all():
            raise ForecastFitError(f"training loss became non-finite ({float(per_step[~torch.isfinite(per_step)][0])}) {where}")
        return float(per_step.mean())

    def _train(self, net, Xtr, Ytr, Xva, Yva, max_epochs: int, patience: int, gen,
               curve: list[tuple[float, float]] | None = None) -> tuple[float, int]:
        opt = self._optimizer(net)
        best, best_state, stale, epoch = float("inf"), copy.deepcopy(net.state_dict()), 0, 0
        for epoch in range(1, max_epochs + 1):
            train_loss = self._epoch(net, opt, Xtr, Ytr, gen, f"at epoch {epoch}")
            with torch.no_grad():
                val = pinball_loss(net(Xva), Yva).item()
            if curve is not None:
                curve.append((train_loss, val))
            if not np.isfinite(val):
                raise ForecastFitError(f"validation loss became non-finite ({val}) at epoch {epoch}")
            if val < best - 1e-6:
                best, best_state, stale = val, copy.deepcopy(net.state_dict()), 0
            else:
                stale += 1
                if stale >= patience:
                    break
        net.load_state_dict(best_state)
        net.eval()
        return best, epoch

    def _tail(self, net: QuantileMLP, X, Y, gen) -> None:
        """Train on the newest days too: early stopping keeps the validation slice out, and in
        a market whose level moves fast the newest days are the most informative ones."""
        opt = self._optimizer(net)
        for k in range(1, self.config.tail_epochs + 1):
            self._epoch(net, opt, X, Y, gen, f"in tail epoch {k} on the whole window")

    def _naive_scaled(self, X: np.ndarray) -> np.ndarray:
        """The latest known day's prices (naive_d) in the net's output space."""
        return self._price_scaler.transform(X[:, self._groups["latest"]])

    @staticmethod
    def _blend_weight(pred: np.ndarray, naive: np.ndarray, y: np.ndarray) -> float:
        """The weight w of the net's p50 in w*p50 + (1-w)*naive with the least validation MAE.

        In a calm market w is ~1; when the level jumps (a dry spell) the net, trained on the
        past, trails it, and persistence earns weight until the net has learnt the new regime.
        """
        grid = np.linspace(0.0, 1.0, 11)
        errors = [np.abs(y - (w * pred[..., 1] + (1 - w) * naive)).mean() for w in grid]
        return float(grid[int(np.argmin(errors))])

    @staticmethod
    def _towards(q: np.ndarray, naive: np.ndarray, w: float) -> np.ndarray:
        """w * p50 + (1 - w) * naive, the band moving with the median."""
        return q + ((w - 1.0) * (q[..., 1] - naive))[..., None]

    def _blended(self, q: np.ndarray, naive: np.ndarray) -> np.ndarray:
        return self._towards(q, naive, self._blend)

    def _night_blended(self, q: np.ndarray, naive: np.ndarray) -> np.ndarray:
        """Hours 0..night_blend_hours-1 moved towards naive_d by their own weight."""
        nh = self.config.night_blend_hours
        if not nh or self._night_blend == 1.0:
            return q
        out = np.array(q, copy=True)
        out[..., :nh, :] = self._towards(out[..., :nh, :], naive[..., :nh], self._night_blend)
        return out

    def _lear_columns(self) -> np.ndarray:
        """LEAR's inputs: every feature but the operating ones (they may be unknown, NaN)."""
        op = [m for k, m in self._groups.items() if k.startswith("op:")]
        return ~np.any(op, axis=0) if op else np.ones_like(self._groups["price"])

    def _with_lear(self, q: np.ndarray, lear: np.ndarray) -> np.ndarray:
        """Median moved towards LEAR's forecast (scaled space), the band moving with it."""
        delta = self._lear_w * (lear - q[..., 1])
        return q + delta[..., None]

    def _lear_weight(self, q: np.ndarray, lear: np.ndarray, y: np.ndarray) -> float:
        """LEAR's weight in 0, 0.1, ..., `lear_weight` with the least validation MAE (the smaller on
        a tie): a calm spell where LEAR's regression misses a flat level gets less of it."""
        grid = np.round(np.arange(0.0, self.config.lear_weight + 1e-9, 0.1), 10)
        errors = [np.abs(y - (q[..., 1] + w * (lear - q[..., 1]))).mean() for w in grid]
        return float(grid[int(np.argmin(errors))])

    # -- plausibility --------------------------------------------------------------------------
    def _remember_minima(self, panel: DailyPanel, train_end: date) -> None:
        """Daily minima of the lookback ending at `train_end`, so a request with a short history
        (the pyfunc's) still knows the lowest price of the 365 days before its cutoff."""
        first = max(plausibility.lookback_days(train_end)[0], panel.start)
        idx = np.arange(*panel.index_of([first, train_end + timedelta(days=1)]))
        self._minima_start, self._minima = first, plausibility.daily_minima(panel.prices[idx])

    def _lowest_before(self, panel: DailyPanel, cutoff: date) -> float:
        """The lowest price of the 365 days ending at `cutoff`: the given history up to the
        cutoff (never after it), completed by the minima remembered at fit time."""
        first, _ = plausibility.lookback_days(cutoff)
        lo, hi = max(first, panel.start), min(cutoff, panel.end)
        start, mins = self._minima_start, self._minima
        if lo <= hi:
            idx = np.arange(*panel.index_of([lo, hi + timedelta(days=1)]))
            start, mins = plausibility.merge_minima(start, mins, lo, plausibility.daily_minima(panel.prices[idx]))
        return plausibility.lowest_price(start, mins, cutoff)

    # -- forecasting ---------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not self._members:
            raise ForecastInputError("forecaster: no fitted model (fit first, or the last fit failed)")

    def _predict_scaled(self, x: np.ndarray) -> np.ndarray:
        with torch_threads(self.config.threads), torch.no_grad():
            xt = torch.tensor(self._scale_x(x), dtype=torch.float32)
            per_member = torch.stack([net(xt) for net in self._members]).numpy()[:, 0]
            if self.config.snapshot_bases and self._bases:
                q = torch.stack([net(xt) for net in self._members + self._bases]).mean(0).numpy()[0]
            else:
                q = per_member.mean(0)
        naive = self._naive_scaled(x)[0]
        lear = None if self._lear is None else self._price_scaler.transform(self._lear.predict(x[:, self._lear_columns()]))[0]

        def combine(z: np.ndarray) -> np.ndarray:
            z = self._blended(z, naive) if self._blend != 1.0 else z
            z = z if lear is None else self._with_lear(z, lear)
            z = self._night_blended(z, naive)
            return plausibility.smooth_profile(z, self.config.smooth, self.config.smooth_last_hour)

        # Seed-to-seed spread: the std across members of the p50 each would forecast on its own
        # (blended, combined with LEAR and smoothed like the ensemble), in price units, mean over the 24 hours.
        own = combine(per_member)
        self.last_member_spread = float(self._price_scaler.inverse(own[..., 1]).std(0).mean())
        q = combine(q)
        return calibration.apply(q, self._interval_shift, self.config.conformal)

    def predict(self, prices: pl.DataFrame | DailyPanel, target: date) -> pl.DataFrame:
        self._check_fitted()
        x = self._prediction_row(prices, target)
        panel = realised_prices(prices)
        q = self._price_scaler.inverse(self._predict_scaled(x))
        lowest = self._lowest_before(panel, target - timedelta(days=self.horizon_days))
        q = plausibility.clamp(q, lowest, self.config.price_floor)
        return forecast_frame(q[:, 1], q[:, 0], q[:, 2])

    def predict_from_history(self, history: pl.DataFrame) -> pl.DataFrame:
        """The 24 hours of day (last complete day of `history`) + H: `ts`, `hour`, quantiles.

        Rows after the last complete day may carry exogenous forecasts with a null price. The
        operating columns (`OPERATING_INPUTS`) carry each day's / month's value on its rows.
        """
        self._check_fitted()
        history, operating = split_operating_inputs(history, self.spec.operating_groups)
        scaler = self._price_scaler
        spreads = ((history["price"].to_numpy() - scaler.median[0]) / scaler.mad[0])
        absurd = np.abs(np.nan_to_num(spreads)) > ABSURD_SPREADS
        if absurd.any():  # a corrupt cell or a wrong unit: REST answered 200 with a forecast of 1e153 (session 19)
            row = int(absurd.argmax())
            raise ForecastInputError(
                f"price {history['price'][row]:g} at {history['ts'][row]} lies {abs(spreads[row]):,.0f} spreads (MAD) from "
                f"the training prices' median {scaler.median[0]:g}: a corrupt value or a wrong unit (the limit is {ABSURD_SPREADS:g})")
        absent = [e for e in self._exog if e not in history.columns]
        if absent:
            raise ForecastInputError(f"missing exogenous column(s) {absent}: this model reads {self._exog}")
        frame = _with_calendar(history)
        complete = (
            frame.group_by("date")
            .agg(pl.col("price").is_not_null().sum().alias("n"))
            .filter(pl.col("n") == HOURS)
        )
        if complete.height == 0:
            raise ForecastInputError("history has no complete day of 24 prices")
        last = complete["date"].max()
        target = last + timedelta(days=self.horizon_days)
        first_needed = target - timedelta(days=self.spec.max_lag)
        if frame["date"].min() > first_needed:
            raise ForecastInputError(
                f"history too short: forecasting {target} needs complete days from {first_needed} "
                f"to {last}, history starts {frame['date'].min()}"
            )
        span = frame.filter(pl.col("date").is_between(first_needed, last))
        missing = self.spec.complete_days * HOURS - span["price"].drop_nulls().len()
        if missing > 0:
            raise ForecastInputError(
                f"history has gaps: {missing} missing or null hourly prices between {first_needed} and {last}"
            )
        panel = daily_panel(frame.select("ts", "price", *self._exog), operating)
        out = self.predict(panel, target)
        ts = pl.datetime_range(
            pl.datetime(target.year, target.month, target.day),
            pl.datetime(target.year, target.month, target.day, 23),
            "1h",
            eager=True,
        )
        return out.select(pl.Series("ts", ts).alias("ts").cast(pl.Datetime("us")), "hour", "forecast", "p10", "p50", "p90")

    # -- persistence ---------------------------------------------------------------------------
    def to_state(self) -> dict:
        self._check_fitted()
        return {
            "kind": STATE_KIND,
            "config": self.config.to_dict(),
            "operating_groups": list(self.spec.operating_groups),  # those the fit used (operating_min_days)
            "exog": list(self._exog),
            "input_dim": int(self._input_dim),
            "groups": {k: v.tolist() for k, v in self._groups.items()},
            "price_scaler": self._price_scaler.to_state(),
            "exog_scalers": {e: s.to_state() for e, s in self._exog_scalers.items()},
            "op_scalers": {g: s.to_state() for g, s in getattr(self, "_op_scalers", {}).items()},
            "interval_shift": float(self._interval_shift),
            "blend": float(self._blend),
            "night_blend": float(self._night_blend),
            "fits": int(self._fits),
            "train_end": self.train_end.isoformat(),
            "minima_start": self._minima_start.isoformat(),
            "minima": self._minima.tolist(),
            "members": [net.state_dict() for net in self._members],
            **({"bases": [net.state_dict() for net in self._bases]} if self.config.snapshot_bases else {}),
            **({"lear": self._lear.to_state(), "lear_weight": float(self._lear_w)} if self._lear is not None else {}),
        }

    @classmethod
    def from_state(cls, state: dict) -> MLPForecaster:
        if state.get("kind") != STATE_KIND:
            raise ForecastInputError(f"not a forecaster state: kind={state.get('kind')!r}")
        model = cls(MLPConfig.from_dict(state["config"]))
        model.spec = replace(model.spec, operating_groups=tuple(state.get("operating_groups", model.spec.operating_groups)))
        model._exog = list(state["exog"])
        model._input_dim = int(state["input_dim"])
        model._groups = {k: np.asarray(v, dtype=bool) for k, v in state["groups"].items()}
        model._price_scaler = RobustAsinhScaler.from_state(state["price_scaler"])
        model._exog_scalers = {e: RobustAsinhScaler.from_state(s) for e, s in state["exog_scalers"].items()}
        model._op_scalers = {g: RobustAsinhScaler.from_state(s) for g, s in state.get("op_scalers", {}).items()}
        model._interval_shift = float(state["interval_shift"])
        model._blend = float(state.get("blend", 1.0))  # states saved before the blend existed
        model._night_blend = float(state.get("night_blend", 1.0))
        model._fits = int(state["fits"])
        model.train_end = date.fromisoformat(state["train_end"])
        # states saved before the plausibility rule: no remembered minima (the request's history only)
        model._minima_start = date.fromisoformat(state.get("minima_start", state["train_end"]))
        model._minima = np.asarray(state.get("minima", []), dtype=float)
        model._lear = LearRegression.from_state(state["lear"]) if "lear" in state else None
        model._lear_w = float(state.get("lear_weight", model.config.lear_weight))  # states before the fitted weight: the config's
        cfg = model.config
        for sd in state["members"]:
            net = QuantileMLP(model._input_dim, cfg.hidden, cfg.dropout, cfg.linear_skip)
            net.load_state_dict(sd)
            net.eval()
            model._members.append(net)
        for sd in state.get("bases", []):  # kept only when they forecast too (snapshot_bases)
            net = QuantileMLP(model._input_dim, cfg.hidden, cfg.dropout, cfg.linear_skip)
            net.load_state_dict(sd)
            net.eval()
            model._bases.append(net)
        return model

    def save(self, path: str | Path) -> None:
        torch.save(self.to_state(), Path(path))

    @classmethod
    def load(cls, path: str | Path) -> MLPForecaster:
        return cls.from_state(torch.load(Path(path), weights_only=True))
