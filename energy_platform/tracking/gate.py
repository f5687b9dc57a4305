"""The promotion gate: run what would be promoted, compare, decide, move the champion alias.

Rules, in order (the first that fails refuses the challenger, with that rule as the reason):
1. its backtest rMAE is a finite number (tagged at registration);
2. its registered artifact, run on every backtest day, gives finite, ordered (p10 <= forecast
   <= p90) forecasts at or above the market floor, equal to those logged at registration;
3. it beats the weekly naive (rMAE < 1) and persistence on the same backtest days;
4. with a champion serving, it beats the champion by `margin` on the fresh days (cutoff after
   the champion's training data), needing `min_days` of them, unless the champion cannot be
   scored there at all (it fails, or forecasts nonsense): then a sound challenger replaces it.
After a refusal the persistence baseline is promoted when nothing sound would serve: an empty
registry, a champion that cannot be scored, or a trained champion that persistence beat on
`min_days` fresh days. So a champion always exists and it is never known to be worse than
persistence.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from energy_platform.tracking import MODEL_NAME
from energy_platform.tracking.artifact_check import SERVED_FORECASTS_ARTIFACT, forecast_days, run_and_validate, validate
from energy_platform.tracking.comparison import Comparison, compare, fresh_target_days
from energy_platform.tracking.registry import BACKTEST_ARTIFACT, MIN_FRESH_DAYS, ROLLED_BACK, ROLLED_BACK_AT, ModelRegistry
from energy_platform.tracking.version_card import VersionCard
from energy_platform.warehouse.prices import prices_only


class GateInputError(RuntimeError):
    pass


@dataclass(frozen=True)
class GateDecision:
    challenger_version: str
    challenger_promoted: bool
    new_champion: str | None  # the version the champion alias moves to; None: it stays
    reason: str
    champion_before: str | None
    challenger_rmae: float | None  # whole backtest, against the weekly naive
    persistence_rmae: float | None  # the same days
    compared: Comparison  # against the champion on fresh days
    margin: float

    @property
    def promote(self) -> bool:
        return self.challenger_promoted

    @property
    def label(self) -> str:
        if self.challenger_promoted:
            return "promoted"
        return "refused; baseline promoted" if self.new_champion else "refused"

    def as_tags(self) -> dict[str, str]:
        def fmt(x: float | None) -> str:
            return "" if x is None else f"{x:.6f}"

        return {
            "gate_decision": "promoted" if self.challenger_promoted else "refused",
            "gate_reason": self.reason,
            "gate_challenger_rmae": fmt(self.challenger_rmae),
            "gate_persistence_rmae": fmt(self.persistence_rmae),
            "gate_challenger_rmae_compared": fmt(self.compared.challenger_rmae),
            "gate_champion_rmae": fmt(self.compared.champion_rmae),
            "gate_champion_version": self.champion_before or "",
            "gate_compared_days": str(self.compared.days),
            "gate_margin": str(self.margin),
        }


def decide(
    challenger_version: str,
    challenger_rmae: float | None,
    artifact_problem: str | None,
    whole: Comparison,
    champion: VersionCard | None,
    fresh: Comparison,
    baseline_version: str,
    margin: float,
    min_days: int = MIN_FRESH_DAYS,
    baseline_rolled_back: bool = False,
) -> GateDecision:
    """The rules of the module docstring, on numbers already computed (no MLflow here).
    `baseline_rolled_back`: the operator rolled back from the baseline after this challenger came;
    a champion worse than persistence then stays (it undid the rollback, helper F in session 19),
    one that cannot be scored does not."""
    champion_v = champion.version if champion else None

    def promote(reason: str) -> GateDecision:
        return GateDecision(challenger_version, True, challenger_version, reason, champion_v,
                            challenger_rmae, whole.persistence_rmae, fresh, margin)

    def refuse(reason: str) -> GateDecision:
        fallback, why = None, ""
        if champion is None:
            fallback, why = baseline_version, "no champion yet"
        elif not champion.is_baseline and fresh.champion_problem:
            fallback, why = baseline_version, f"champion v{champion_v} cannot be scored: {fresh.champion_problem}"
        elif (not champion.is_baseline and fresh.days >= min_days and fresh.champion_rmae is not None
              and fresh.persistence_rmae is not None and fresh.champion_rmae > fresh.persistence_rmae):
            fallback, why = baseline_version, (f"champion v{champion_v}'s rMAE {fresh.champion_rmae:.3f} is worse than "
                                               f"persistence's {fresh.persistence_rmae:.3f} over {fresh.days} fresh days")
            if baseline_rolled_back:
                fallback, reason = None, (f"{reason}; champion v{champion_v} stays: the operator rolled back from the "
                                          f"baseline v{baseline_version} (energy-platform rollback), which stands until a new training")
        if fallback == champion_v:
            fallback = None
        if fallback:
            reason = f"{reason}; the persistence baseline v{fallback} serves ({why})"
        return GateDecision(challenger_version, False, fallback, reason, champion_v,
                            challenger_rmae, whole.persistence_rmae, fresh, margin)

    if challenger_rmae is None:
        return refuse(f"v{challenger_version} has no finite metric.backtest_rmae tag (there is none when the weekly "
                      "naive's error over the backtest is 0: prices flat for weeks)")
    if artifact_problem:
        return refuse(f"artifact models:/{MODEL_NAME}/{challenger_version} refused: {artifact_problem}")
    if not challenger_rmae < 1.0:
        return refuse(f"rMAE {challenger_rmae:.3f} is not better than the weekly naive (1.0)")
    if whole.challenger_rmae is None or whole.persistence_rmae is None:
        return refuse(f"v{challenger_version} could not be scored against persistence on its backtest days")
    if not whole.challenger_rmae < whole.persistence_rmae:
        return refuse(f"rMAE {whole.challenger_rmae:.3f} does not beat persistence's {whole.persistence_rmae:.3f} "
                      f"over its {whole.days} backtest days")
    beats = f"rMAE {whole.challenger_rmae:.3f} beats the weekly naive (1.0) and persistence ({whole.persistence_rmae:.3f})"
    if champion is None:
        return promote(f"first champion: {beats}")
    if fresh.champion_problem:  # a baseline that cannot forecast (another horizon's) is no better than a model that cannot
        return promote(f"champion v{champion_v} cannot be scored on fresh days ({fresh.champion_problem}); {beats}")
    if fresh.days < min_days:
        return refuse(f"only {fresh.days} day(s) after champion v{champion_v}'s training data to compare on (need {min_days})")
    if fresh.challenger_rmae is None or fresh.champion_rmae is None:
        return refuse(f"v{challenger_version} and champion v{champion_v} could not both be scored on the {fresh.days} fresh days")
    if fresh.challenger_rmae < fresh.champion_rmae - margin:
        return promote(f"rMAE {fresh.challenger_rmae:.3f} beats champion v{champion_v}'s {fresh.champion_rmae:.3f} "
                       f"by more than {margin} over {fresh.days} days")
    return refuse(f"rMAE {fresh.challenger_rmae:.3f} does not beat champion v{champion_v}'s "
                  f"{fresh.champion_rmae:.3f} by {margin} over {fresh.days} days")


def _score_champion(registry: ModelRegistry, champion: VersionCard, prices: pl.DataFrame, days: list, horizon_days: int,
                    floor: float | None, operating=None) -> tuple[pl.DataFrame | None, str | None]:
    if not days:
        return None, None
    if champion.history_days is None:
        return None, "it has no history_days tag"
    try:
        model = registry.load(champion)
    except Exception as exc:  # a champion whose artifact no longer loads is replaced, not fatal
        return None, f"its artifact does not load: {exc}"
    run = forecast_days(model, prices, days, horizon_days, champion.history_days, operating)
    if not run.ok:
        return None, run.problem
    problem = validate(run.forecasts, floor)
    return (None, problem) if problem else (run.forecasts, None)


def run_gate(registry: ModelRegistry, prices: pl.DataFrame, horizon_days: int, margin: float,
             min_days: int = MIN_FRESH_DAYS, floor: float | None = 0.0,
             dagster_tags: dict[str, str] | None = None, operating=None) -> tuple[GateDecision, VersionCard | None]:
    """Decide on the current challenger and apply it; returns (decision, champion before).

    `operating` (an OperatingData) is what the models that read operating data get in their requests."""
    challenger = registry.challenger()
    if challenger is None:
        raise GateInputError(f"no 'challenger' version of {MODEL_NAME}: materialize forecaster_model first")
    champion = registry.champion()
    plain = prices_only(prices)  # `prices` may carry a file's exogenous series and its day ahead, for the models' requests
    baseline = registry.ensure_baseline(plain, horizon_days, floor, dagster_tags=dagster_tags)
    backtest = registry.run_artifact(challenger, BACKTEST_ARTIFACT)
    days = sorted(backtest["target_date"].unique().to_list()) if backtest is not None else []
    nothing = Comparison(0, None, None)
    if champion is not None and champion.version == challenger.version:
        return GateDecision(challenger.version, False, None, f"v{challenger.version} already is the champion",
                            champion.version, challenger.metric("backtest_rmae"), None, nothing, margin), champion
    if challenger.tags.get(ROLLED_BACK) == "true":  # the operator's rollback stands until a new training
        decision = GateDecision(challenger.version, False, None,
                                f"v{challenger.version} was rolled back by the operator (energy-platform rollback): "
                                "only a new training's challenger is gated", champion.version if champion else None,
                                challenger.metric("backtest_rmae"), None, nothing, margin)
        registry.tag_version(challenger.version, decision.as_tags())
        return decision, champion

    if backtest is None:
        problem = f"its run has no {BACKTEST_ARTIFACT}"
    elif challenger.history_days is None:
        problem = "it has no history_days tag"
    else:
        try:
            model = registry.load(challenger)
            logged = registry.run_artifact(challenger, SERVED_FORECASTS_ARTIFACT)
            problem = run_and_validate(model, prices, days, horizon_days, challenger.history_days, floor, logged,
                                      operating).problem
        except Exception as exc:  # the artifact itself is what is being tested
            problem = f"does not load: {type(exc).__name__}: {exc}"
    whole = compare(backtest, plain, days, horizon_days) if backtest is not None else Comparison(0, None, None)
    fresh = Comparison(0, None, None)
    if champion is not None and backtest is not None:
        fresh_days = fresh_target_days(days, None if champion.is_baseline else champion.data_end, horizon_days)
        forecasts, champion_problem = _score_champion(registry, champion, prices, fresh_days, horizon_days, floor, operating)
        fresh = compare(backtest, plain, fresh_days, horizon_days, forecasts, champion_problem)
    rolled_back_at = int(baseline.tags.get(ROLLED_BACK_AT) or 0)
    decision = decide(challenger.version, challenger.metric("backtest_rmae"), problem, whole, champion, fresh,
                      baseline.version, margin, min_days, baseline_rolled_back=rolled_back_at >= challenger.created_ms)
    registry.tag_version(challenger.version, decision.as_tags())
    if decision.new_champion:
        if not decision.challenger_promoted:
            registry.tag_version(decision.new_champion, {"gate_decision": "promoted", "gate_reason": decision.reason})
        registry.promote(decision.new_champion)
    return decision, champion


__all__ = ["Comparison", "GateDecision", "GateInputError", "decide", "run_gate"]
