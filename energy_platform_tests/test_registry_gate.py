"""The registry and its gate on a real MLflow SQLite backend: baseline, artifact runs, bad versions.

Challengers here are real registered pyfuncs whose behaviour is chosen (NaN forecasts, a band
out of order, a sound constant), with a backtest claiming any score: exactly the situations
where a gate that trusts tags and parquet files instead of running the artifact goes wrong.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import tempfile
from datetime import date, timedelta

import mlflow
import numpy as np
import pandas as pd
import polars as pl
import pytest

from energy_platform.sources.sample import SampleSource
from energy_platform.tracking import EXPERIMENT_NAME, MODEL_NAME
from energy_platform.tracking.artifact_check import SERVED_FORECASTS_ARTIFACT, forecast_days
from energy_platform.tracking.comparison import Comparison
from energy_platform.tracking.gate import decide, run_gate
from energy_platform.tracking.pyfunc_model import InMemoryPyfunc
from energy_platform.tracking.registry import BACKTEST_ARTIFACT, CHALLENGER, CHAMPION, PREVIOUS, ModelRegistry, RegistryError
from energy_platform.tracking.version_card import VersionCard

H = 2
END = date(2024, 6, 30)


class ChosenModel(mlflow.pyfunc.PythonModel):
    """Forecasts the last known day scaled by `scale`, or NaN; p10/p90 at `low`/`high` times that."""

    _skip_type_hint_validation = True  # as the platform's pyfunc models

    def __init__(self, scale: float = 1.0, low: float = 0.9, high: float = 1.1):
        self.scale, self.low, self.high = scale, low, high

    def predict(self, context, model_input, params=None):
        frame = pl.from_pandas(pd.DataFrame(model_input)).with_columns(pl.col("ts").cast(pl.Datetime("us")))
        last = frame["ts"].dt.date().max()
        day = frame.filter(pl.col("ts").dt.date() == last).sort("ts")["price"].to_numpy() * self.scale
        target = last + timedelta(days=H)
        ts = pd.date_range(str(target), periods=24, freq="h")
        return pd.DataFrame({"ts": ts, "hour": np.arange(24, dtype=np.int32), "forecast": day,
                             "p10": day * self.low, "p50": day, "p90": day * self.high})


@pytest.fixture(scope="module")
def prices() -> pl.DataFrame:
    return SampleSource(as_of=END).hourly_prices(date(2024, 1, 1), END)


@pytest.fixture(scope="module")
def empty_backend(tmp_path_factory):
    """An MLflow database with its schema and experiment, made once (migrations take seconds)."""
    root = tmp_path_factory.mktemp("mlflow")
    _ = ModelRegistry(f"sqlite:///{root}/mlflow.db", root / "mlartifacts").client  # creates the backend
    return root


@pytest.fixture()
def reg(tmp_path, empty_backend) -> ModelRegistry:
    shutil.copyfile(empty_backend / "mlflow.db", tmp_path / "mlflow.db")
    return ModelRegistry(f"sqlite:///{tmp_path}/mlflow.db", empty_backend / "mlartifacts")


def _backtest(prices: pl.DataFrame, days: list[date], claimed_error: float) -> pl.DataFrame:
    """Backtest rows as training logs them: the challenger off the actual by `claimed_error`."""
    actual = prices.filter(pl.col("date").is_in(days)).select(pl.col("date").alias("target_date"), "hour", "ts", pl.col("price").alias("actual"))
    weekly = prices.select((pl.col("date") + pl.duration(days=7)).alias("target_date"), "hour", pl.col("price").alias("forecast"))
    naive_w = actual.join(weekly, on=["target_date", "hour"]).with_columns(pl.lit("naive_w").alias("model"))
    own = actual.with_columns((pl.col("actual") + claimed_error).alias("forecast"), pl.lit("forecaster").alias("model"))
    return pl.concat([own, naive_w]).select("model", "target_date", "hour", "ts", "actual", "forecast")


def register(reg: ModelRegistry, prices: pl.DataFrame, model: ChosenModel, *, rmae: str | None = "0.2",
             data_end: date = END - timedelta(days=28), claimed_error: float = 1.0, alias: str | None = CHALLENGER) -> str:
    """A registered version as training registers one, with the behaviour of `model`."""
    days = [END - timedelta(days=13 - i) for i in range(14)]
    _ = reg.client  # the backend and experiment exist before the run starts
    # named, not the process's active one: a Dagster training earlier in this worker (dagster-mlflow
    # sets the experiment) leaves an id of its own backend active, unknown to this one
    with mlflow.start_run(experiment_id=mlflow.set_experiment(EXPERIMENT_NAME).experiment_id):
        info = mlflow.pyfunc.log_model(name="model", python_model=model, pip_requirements=["mlflow"])  # not inferred: seconds
        served = forecast_days(InMemoryPyfunc(model), prices, days, H, 30)
        with tempfile.TemporaryDirectory() as tmp:
            _backtest(prices, days, claimed_error).write_parquet(f"{tmp}/{BACKTEST_ARTIFACT}")
            mlflow.log_artifact(f"{tmp}/{BACKTEST_ARTIFACT}")
            if served.ok:
                served.forecasts.write_parquet(f"{tmp}/{SERVED_FORECASTS_ARTIFACT}")
                mlflow.log_artifact(f"{tmp}/{SERVED_FORECASTS_ARTIFACT}")
    tags = {"kind": "model", "history_days": "30", "horizon_days": str(H), "data_end": str(data_end),
            "backtest_start": str(days[0]), "backtest_end": str(days[-1]), "dagster_run_id": "test"}
    if rmae is not None:
        tags["metric.backtest_rmae"] = rmae
    version = mlflow.register_model(info.model_uri, MODEL_NAME, tags=tags).version
    if alias:
        reg.set_alias(alias, str(version))
    return str(version)


def promoted_by_the_gate(reg: ModelRegistry, version: str) -> None:
    """`version` champion as the gate makes one: its gate decision first, then the alias."""
    reg.tag_version(version, {"gate_decision": "promoted", "gate_reason": "test"})
    reg.promote(version)


def test_an_artifact_forecasting_nan_is_refused_however_good_its_tags(reg, prices):
    register(reg, prices, ChosenModel(scale=float("nan")), rmae="0.0")
    decision, _ = run_gate(reg, prices, H, 0.01)
    assert not decision.challenger_promoted
    assert "non-finite or missing forecasts" in decision.reason and "refused" in decision.reason
    champion = reg.champion()
    assert champion.is_baseline  # empty registry: the baseline serves instead
    assert reg.card(decision.challenger_version).gate_reason == decision.reason


def test_a_band_out_of_order_is_refused(reg, prices):
    register(reg, prices, ChosenModel(low=1.2, high=1.3))
    decision, _ = run_gate(reg, prices, H, 0.01)
    assert "band out of order" in decision.reason and not decision.challenger_promoted


def test_a_missing_metric_tag_is_a_reason_not_a_keyerror(reg, prices):
    register(reg, prices, ChosenModel(), rmae=None)
    decision, _ = run_gate(reg, prices, H, 0.01)
    assert "no finite metric.backtest_rmae" in decision.reason
    register(reg, prices, ChosenModel(), rmae="nan")
    assert "no finite metric.backtest_rmae" in run_gate(reg, prices, H, 0.01)[0].reason


def test_a_sound_challenger_replaces_the_baseline_and_rollback_returns_to_it(reg, prices):
    baseline, _ = reg.ensure_champion(prices, H, 0.0)
    assert baseline.is_baseline and baseline.metric("backtest_rmae") is not None
    version = register(reg, prices, ChosenModel())
    decision, before = run_gate(reg, prices, H, 0.01)
    assert decision.challenger_promoted, decision.reason
    assert before.version == baseline.version and reg.champion().version == version
    assert reg.alias(PREVIOUS).version == baseline.version
    assert reg.rollback() == (baseline.version, version)
    assert reg.champion().is_baseline
    # the rolled-back version is still the challenger: the next gate run (eager, after each ingestion)
    # re-promoted it, undoing the operator's rollback
    again, _ = run_gate(reg, prices, H, 0.01)
    assert not again.challenger_promoted and "rolled back by the operator" in again.reason
    assert reg.card(version).gate_decision == "refused"  # what ml.model_versions and the dashboard show
    assert reg.champion().version == baseline.version
    register(reg, prices, ChosenModel())  # a new training's challenger is gated as usual
    assert run_gate(reg, prices, H, 0.01)[0].challenger_promoted


def test_a_champion_that_forecasts_nan_is_replaced_by_a_sound_challenger(reg, prices):
    broken = register(reg, prices, ChosenModel(scale=float("nan")), alias=None)
    promoted_by_the_gate(reg, broken)  # it got there somehow (an older gate, a manual alias move)
    register(reg, prices, ChosenModel())
    decision, before = run_gate(reg, prices, H, 0.01)
    assert before.version == broken
    assert decision.challenger_promoted and "cannot be scored" in decision.reason, decision.reason


def test_a_challenger_that_does_not_beat_persistence_is_refused(reg, prices):
    register(reg, prices, ChosenModel(), rmae="0.9", claimed_error=500.0)
    decision, _ = run_gate(reg, prices, H, 0.01)
    assert not decision.challenger_promoted
    assert "persistence" in decision.reason and reg.champion().is_baseline


def test_a_champion_of_another_horizon_gives_way_to_this_horizon_s_baseline(reg, prices):
    """ENERGY_PLATFORM_HORIZON_DAYS changed on a running home: the champion forecasts other days than
    those asked for; this horizon's persistence baseline serves until a model of it passes the gate."""
    trained = register(reg, prices, ChosenModel(), alias=None)
    promoted_by_the_gate(reg, trained)
    assert reg.ensure_champion(prices, H, 0.0) == (reg.card(trained), None)  # its own horizon: kept
    champion, why = reg.ensure_champion(prices, 1, 0.0)
    assert champion.is_baseline and champion.horizon_days == 1 and reg.champion().version == champion.version
    assert f"champion v{trained} forecasts 2 day(s) ahead, the platform 1" in why
    assert reg.alias(PREVIOUS).version == trained


def test_rollback_with_nothing_to_roll_back_to_says_so(reg, prices):
    with pytest.raises(RegistryError, match="has no champion yet"):  # it said "no 'previous' other than the champion"
        reg.rollback()
    reg.ensure_champion(prices, H, 0.0)
    with pytest.raises(RegistryError, match="nothing to roll back to"):
        reg.rollback()


def test_a_rollback_to_a_version_of_another_horizon_is_refused(reg, prices):
    """Helper F (session 19): it said it succeeded; the next predictions run put the baseline back."""
    trained = register(reg, prices, ChosenModel(), alias=None)
    promoted_by_the_gate(reg, trained)
    baseline, _ = reg.ensure_champion(prices, H + 1, 0.0)  # the platform's horizon changed
    assert reg.alias(PREVIOUS).version == trained
    with pytest.raises(RegistryError, match=f"'previous' v{trained} forecasts {H} day\\(s\\) ahead, the platform {H + 1}"):
        reg.rollback(H + 1)
    assert reg.champion().version == baseline.version


def test_an_unreachable_backend_is_named(tmp_path):
    (tmp_path / "mlflow.db").write_bytes(b"not a database" * 100)
    reg = ModelRegistry(f"sqlite:///{tmp_path}/mlflow.db", tmp_path / "mlartifacts")
    with pytest.raises(RuntimeError, match=f"{tmp_path}/mlflow.db is unreadable") as failure:
        reg.champion()
    assert "\n" not in str(failure.value)


def _card(version: str, kind: str = "model", data_end: date | None = date(2024, 1, 1)) -> VersionCard:
    return VersionCard(version, kind, None, 0, (), None, data_end, 30, H, None, None)


def test_the_gate_rules():
    whole = lambda ch, pers: Comparison(28, date(2024, 1, 1), ch, pers)  # noqa: E731
    fresh = lambda ch, champ, pers=0.9, days=14, problem=None: Comparison(days, date(2024, 1, 1), ch, pers, champ, problem)  # noqa: E731
    none = Comparison(0, None, None)
    rule = lambda *a, **k: decide("5", *a, baseline_version="1", margin=0.01, **k)  # noqa: E731
    # empty registry: the better of the challenger and the baseline
    assert rule(0.8, None, whole(0.8, 0.9), None, none).new_champion == "5"
    assert rule(0.95, None, whole(0.95, 0.9), None, none).new_champion == "1"  # not better than persistence
    assert rule(1.0, None, whole(1.0, 0.9), None, none).new_champion == "1"  # not better than the weekly naive
    assert rule(None, None, whole(0.8, 0.9), None, none).new_champion == "1"
    assert rule(0.8, "non-finite or missing forecasts", whole(0.8, 0.9), None, none).new_champion == "1"
    champion = _card("3")
    assert rule(0.8, None, whole(0.8, 0.9), champion, fresh(0.7, 0.75)).challenger_promoted  # beats by the margin
    assert not rule(0.8, None, whole(0.8, 0.9), champion, fresh(0.7, 0.705)).challenger_promoted  # not by the margin
    assert rule(0.8, None, whole(0.8, 0.9), champion, fresh(0.7, 0.705)).new_champion is None  # champion stays
    assert not rule(0.8, None, whole(0.8, 0.9), champion, fresh(0.7, 0.9, days=3)).challenger_promoted  # too few days
    assert rule(0.8, None, whole(0.8, 0.9), champion, fresh(None, None, problem="NaN")).challenger_promoted
    # refused, and the trained champion is worse than persistence on fresh days: the baseline serves
    worse = rule(0.95, None, whole(0.95, 0.9), champion, fresh(0.95, 1.1, pers=0.9))
    assert not worse.challenger_promoted and worse.new_champion == "1" and "worse than persistence" in worse.reason
    # a baseline champion is not replaced by itself
    assert rule(0.95, None, whole(0.95, 0.9), _card("1", "baseline", None), fresh(0.95, 0.9)).new_champion is None
    # a baseline champion that cannot forecast (another horizon's) gives way like a model that cannot
    assert rule(0.8, None, whole(0.8, 0.9), _card("1", "baseline", None), fresh(None, None, problem="answered for 2024-01-03")).challenger_promoted
    # fresh days on which one of the two could not be scored: refused with a reason (was a TypeError formatting None)
    unscored = rule(0.8, None, whole(0.8, 0.9), champion, fresh(None, 0.75))
    assert not unscored.challenger_promoted and "could not both be scored" in unscored.reason


def _run_and_kill(code: str, tmp_path) -> None:
    """Run `code` in a real process that ends itself with SIGKILL (no teardown, no finally)."""
    script = tmp_path / "victim.py"
    script.write_text(code)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]


def test_a_kill_between_the_two_alias_moves_leaves_the_old_champion_serving(reg, prices, tmp_path):
    baseline, _ = reg.ensure_champion(prices, H, 0.0)
    version = register(reg, prices, ChosenModel())
    _run_and_kill(f"""
import os, signal
from energy_platform.tracking.registry import ModelRegistry
reg = ModelRegistry({reg.tracking_uri!r})
real = reg.set_alias
def set_alias(alias, v):
    real(alias, v)
    os.kill(os.getpid(), signal.SIGKILL)  # after `previous`, before `champion`
reg.set_alias = set_alias
reg.promote({version!r})
""", tmp_path)
    assert reg.champion().version == baseline.version  # still serving: nothing half-moved
    with pytest.raises(RegistryError):  # `previous` equals the champion: no bogus rollback target
        reg.rollback()
    reg.promote(version)  # the next gate run completes the move
    assert (reg.champion().version, reg.alias(PREVIOUS).version) == (version, baseline.version)


def test_the_mlflow_run_of_a_killed_process_is_ended_at_the_next_start(reg, tmp_path):
    _ = reg.client  # creates the backend
    _run_and_kill(f"""
import os, signal, mlflow
from energy_platform.tracking.registry import ModelRegistry
ModelRegistry({reg.tracking_uri!r}).client
mlflow.set_experiment("day_ahead_price_forecaster")
mlflow.start_run(tags={{"dagster_run_id": "dead-run"}})
print(mlflow.active_run().info.run_id, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
""", tmp_path)
    runs = reg.client.search_runs([reg.client.get_experiment_by_name("day_ahead_price_forecaster").experiment_id])
    assert [r.info.status for r in runs] == ["RUNNING"]
    assert reg.end_orphan_runs(lambda dagster_run_id: dagster_run_id != "dead-run") == [runs[0].info.run_id]
    assert reg.client.get_run(runs[0].info.run_id).info.status == "KILLED"


def test_a_run_killed_after_its_gate_promoted_its_version_ends_finished(reg, prices):
    """Helper L (session 20): a kill right after the champion alias moved (training and gate share
    the Dagster run's MLflow run) left the serving champion's run marked Killed for good."""
    reg.ensure_champion(prices, H, 0.0)
    version = register(reg, prices, ChosenModel(), alias=None)
    promoted_by_the_gate(reg, version)
    run_id = reg.client.get_model_version(MODEL_NAME, version).run_id
    reg.client.update_run(run_id, status="RUNNING")  # its process died before the run ended
    reg.client.set_tag(run_id, "dagster_run_id", "dead-run")
    assert reg.end_orphan_runs(lambda dagster_run_id: dagster_run_id != "dead-run") == [run_id]
    assert reg.client.get_run(run_id).info.status == "FINISHED"


def test_a_champion_change_killed_before_its_record_is_recorded_by_the_next_mirror(reg, prices, tmp_path):
    """The gate moves the alias in MLflow, then the asset records it in ml.champion_history: a kill
    between the two left the history (and the analysts' current champion) on the demoted version
    for good, as a rerun's gate finds the challenger already champion. The mirror, run by every
    gate and every morning's predictions, records the alias where the history disagrees."""
    from energy_platform.warehouse.db import connect
    from energy_platform.warehouse.model_versions import RECOVERED, record_champion_change

    warehouse = tmp_path / "warehouse.duckdb"
    baseline, _ = reg.ensure_champion(prices, H, 0.0)
    record_champion_change(warehouse, baseline.version, None, "no champion yet")
    version = register(reg, prices, ChosenModel())
    assert run_gate(reg, prices, H, 0.01)[0].challenger_promoted  # ... and the process dies here
    reg.mirror(warehouse)
    reg.mirror(warehouse)  # once only
    with connect(warehouse, read_only=True) as conn:
        history = conn.execute("SELECT version, previous_version, reason FROM ml.champion_history").fetchall()
    assert sorted(history, key=str) == sorted([(baseline.version, None, "no champion yet"), (version, baseline.version, RECOVERED)], key=str)
    # a change recorded as the flows record it (alias moved, recorded, then mirrored) adds no recovered row
    assert reg.rollback() == (baseline.version, version)
    record_champion_change(warehouse, baseline.version, version, f"rollback from v{version}")
    reg.mirror(warehouse)
    with connect(warehouse, read_only=True) as conn:
        assert conn.execute("SELECT count(*), count(*) FILTER (WHERE reason = ?) FROM ml.champion_history",
                            [RECOVERED]).fetchone() == (3, 1)


def test_no_retraining_on_the_data_a_version_was_just_trained_on(reg, prices, tmp_path):
    """A replay's setup model, refused, then its first morning's drift ERROR trained the same model
    again (v1 = v3, same data fingerprint); a drift retraining at 06:30 on a Monday, then the
    weekly one at 07:00, did the same live. A baseline champion is no reason to wait otherwise."""
    import dagster as dg

    from energy_platform.defs.resources import RegistryResource, WarehouseResource
    from energy_platform.defs.schedules import build_weekly_retraining_schedule
    from energy_platform.warehouse.prices import replace_prices

    reg.ensure_champion(prices, H, 0.0)
    day = END - timedelta(days=28)
    assert reg.trained_to(day, H) is None and reg.retraining_wait_reason(day, H) is None  # the baseline was not trained
    version = register(reg, prices, ChosenModel(), data_end=day, alias=None)
    assert reg.trained_to(day, H).version == version and reg.trained_to(day, H + 1) is None
    assert f"v{version} was trained on data to {day} already" in reg.retraining_wait_reason(day, H)
    assert reg.trained_to(day + timedelta(days=1), H) is None and reg.retraining_wait_reason(day + timedelta(days=1), H) is None

    weekly = build_weekly_retraining_schedule(dg.define_asset_job("train"), live=True, timezone="America/Bogota", horizon_days=H)
    warehouse = tmp_path / "w.duckdb"
    resources = {"registry": RegistryResource(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db", artifact_root=str(reg.artifact_root)),
                 "warehouse": WarehouseResource(path=str(warehouse))}

    def store_to(last: date) -> None:
        replace_prices(warehouse, prices.filter(pl.col("date") <= last), prices["date"].min(), last, "sample")

    def tick(monday: date):
        when = pd.Timestamp(f"{monday} 07:00", tz="America/Bogota").to_pydatetime()
        with dg.build_schedule_context(scheduled_execution_time=when, resources=resources) as context:
            return weekly.evaluate_tick(context)

    store_to(day)
    skipped = tick(day + timedelta(days=1))
    assert not skipped.run_requests and f"v{version} was trained on data to {day}" in skipped.skip_message
    # helper K (session 20): data that stopped arriving trained a twin of the champion every Monday
    stuck = tick(day + timedelta(days=8))
    assert not stuck.run_requests and f"the newest stored prices: {day}" in stuck.skip_message
    store_to(day + timedelta(days=7))
    assert [r.run_key for r in tick(day + timedelta(days=8)).run_requests] == [f"weekly-retraining-{day + timedelta(days=8)}"]


def test_a_rollback_while_a_run_writes_the_warehouse_changes_nothing(reg, prices, tmp_path):
    """Helper F (session 19): the aliases moved, the record failed on the busy warehouse (exit 2),
    and the operator's retry rolled back again, undoing the first rollback."""
    from energy_platform.lifecycle_commands import rollback
    from energy_platform.warehouse.db import WarehouseLockedError, connect

    baseline, _ = reg.ensure_champion(prices, H, 0.0)
    version = register(reg, prices, ChosenModel())
    assert run_gate(reg, prices, H, 0.01)[0].challenger_promoted
    warehouse = tmp_path / "warehouse.duckdb"
    with connect(warehouse):
        pass
    holder = subprocess.Popen([sys.executable, "-c", f"import duckdb, sys, time; c = duckdb.connect({str(warehouse)!r}); "
                               "print('held', flush=True); time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(WarehouseLockedError, match="nothing was rolled back"):
            rollback(reg, warehouse, wait_seconds=1)
        assert reg.champion().version == version and reg.alias(PREVIOUS).version == baseline.version
    finally:
        holder.kill()
        holder.wait()
    assert rollback(reg, warehouse) == (baseline.version, version)
    with connect(warehouse, read_only=True) as conn:
        assert conn.execute("SELECT version, previous_version, reason FROM ml.champion_history").fetchall() == [
            (baseline.version, version, f"rollback from v{version}")]


ROLLBACK_VICTIM = """
import os, signal, sys
from energy_platform import lifecycle_commands
from energy_platform.tracking.registry import ModelRegistry

point, uri, warehouse = sys.argv[1:]
die = lambda: os.kill(os.getpid(), signal.SIGKILL)
set_alias, record, forget = ModelRegistry.set_alias, lifecycle_commands.record_champion_change, ModelRegistry._forget_pending

def set_alias_then(self, alias, version):
    if point == "before the aliases":
        die()
    set_alias(self, alias, version)
    if point == "between the aliases":
        die()

def record_then(*args):
    if point == "before the record":
        die()
    record(*args)

def forget_then(self, version):
    if point == "before the untag":
        die()
    forget(self, version)

ModelRegistry.set_alias, ModelRegistry._forget_pending = set_alias_then, forget_then
lifecycle_commands.record_champion_change = record_then
lifecycle_commands.rollback(ModelRegistry(uri), warehouse)
"""


@pytest.mark.parametrize("point", ["before the aliases", "between the aliases", "before the record", "before the untag"])
def test_a_rollback_killed_between_its_writes_is_completed_by_the_rerun(reg, prices, tmp_path, point):
    """Killed between its two alias moves, a rollback left champion = previous, and the rerun
    refused ("nothing to roll back to") with no record of it; killed after the moves and before
    the record, the rerun rolled back again, undoing it. The rerun now completes it, recorded once."""
    from energy_platform.lifecycle_commands import rollback
    from energy_platform.tracking.registry import ROLLBACK_PENDING
    from energy_platform.warehouse.db import connect

    baseline, _ = reg.ensure_champion(prices, H, 0.0)
    version = register(reg, prices, ChosenModel())
    assert run_gate(reg, prices, H, 0.01)[0].challenger_promoted
    warehouse = tmp_path / "warehouse.duckdb"
    with connect(warehouse):
        pass
    script = tmp_path / "victim.py"
    script.write_text(ROLLBACK_VICTIM)
    done = subprocess.run([sys.executable, str(script), point, reg.tracking_uri, str(warehouse)], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]
    assert reg.card(version).tags[ROLLBACK_PENDING] == baseline.version

    assert rollback(reg, warehouse) == (baseline.version, version)
    assert (reg.champion().version, reg.alias(PREVIOUS).version) == (baseline.version, version)
    assert not any(c.tags.get(ROLLBACK_PENDING) for c in reg.cards())
    history = "SELECT version, previous_version, reason FROM ml.champion_history WHERE reason LIKE 'rollback%' ORDER BY changed_at"
    with connect(warehouse, read_only=True) as conn:
        assert conn.execute(history).fetchall() == [(baseline.version, version, f"rollback from v{version}")]
    assert rollback(reg, warehouse) == (version, baseline.version)  # and the next one is a rollback again
    with connect(warehouse, read_only=True) as conn:
        assert conn.execute(history).fetchall()[-1] == (version, baseline.version, f"rollback from v{baseline.version}")


def test_a_rollback_interrupted_before_a_later_promotion_is_not_completed(reg, prices):
    """A promotion after the interrupted rollback supersedes it: the next rollback is a new one."""
    from energy_platform.tracking.registry import ROLLBACK_PENDING

    baseline, _ = reg.ensure_champion(prices, H, 0.0)
    first = register(reg, prices, ChosenModel())
    assert run_gate(reg, prices, H, 0.01)[0].challenger_promoted
    reg.client.set_model_version_tag(reg.name, first, ROLLBACK_PENDING, baseline.version)  # killed before its aliases
    second = register(reg, prices, ChosenModel())
    reg.promote(second)
    assert reg.rollback() == (first, second)
    assert not any(c.tags.get(ROLLBACK_PENDING) for c in reg.cards())


def test_a_rollback_from_the_gate_s_fallback_baseline_stands_until_a_new_training(reg, prices):
    """Helper F (session 19): the gate fell back to the baseline over a champion worse than
    persistence; the operator rolled back to that champion, and the next gate run (eager, after
    each ingestion) on the same challenger fell back again, silently undoing the rollback."""
    baseline, _ = reg.ensure_champion(prices, H, 0.0)
    weak = register(reg, prices, ChosenModel(scale=1.6), alias=None)
    promoted_by_the_gate(reg, weak)
    register(reg, prices, ChosenModel(), rmae="0.9", claimed_error=500.0)  # refused: persistence beats it
    decision, _ = run_gate(reg, prices, H, 0.01)
    assert decision.new_champion == baseline.version and "worse than persistence" in decision.reason, decision.reason
    assert reg.rollback() == (weak, baseline.version)
    again, _ = run_gate(reg, prices, H, 0.01)
    assert again.new_champion is None and reg.champion().version == weak
    assert f"operator rolled back from the baseline v{baseline.version}" in again.reason, again.reason
    register(reg, prices, ChosenModel(), rmae="0.9", claimed_error=500.0)  # a new training's challenger
    fresh, _ = run_gate(reg, prices, H, 0.01)
    assert fresh.new_champion == baseline.version and reg.champion().version == baseline.version, fresh.reason


def test_a_champion_that_does_not_load_is_replaced_but_not_for_a_connection_hiccup(reg, prices, monkeypatch):
    """Artifacts that do not load (gone, broken): the baseline is promoted, the desk still gets a
    forecast. A reset connection while loading (helper I, session 19) fails the run instead: it
    demoted a sound champion for good, with advice to restore artifacts that were never lost."""
    trained = register(reg, prices, ChosenModel(), alias=None)
    promoted_by_the_gate(reg, trained)
    real = mlflow.pyfunc.load_model

    def reset(*args, **kwargs):
        raise ConnectionResetError(104, "Connection reset by peer")

    monkeypatch.setattr(mlflow.pyfunc, "load_model", reset)
    with pytest.raises(RuntimeError, match="Connection reset by peer"):
        reg.ensure_champion(prices, H, 0.0)
    assert reg.champion().version == trained

    def gone(uri, *args, **kwargs):
        if uri.endswith(f"/{trained}"):
            raise FileNotFoundError(f"artifacts of {uri}")
        return real(uri, *args, **kwargs)

    monkeypatch.setattr(mlflow.pyfunc, "load_model", gone)
    champion, why = reg.ensure_champion(prices, H, 0.0)
    assert champion.is_baseline and f"champion v{trained} does not load" in why, why


def test_a_baseline_follows_the_market_s_floor(reg, prices):
    """Helper I (session 19): a market switched to ENERGY_PLATFORM_PRICE_FLOOR=none (negative prices)
    kept the baseline registered with the floor 0, which clamped every forecast at 0."""
    zero, _ = reg.ensure_champion(prices, H, 0.0)
    none, why = reg.ensure_champion(prices, H, None)
    assert none.is_baseline and none.version != zero.version and reg.champion().version == none.version
    assert f"the baseline v{zero.version} clamps at the floor 0, the market's is none" in why, why
    assert reg.baseline(H, None).version == none.version and reg.baseline(H, 0.0).version == zero.version
    assert reg.ensure_champion(prices, H, None) == (reg.card(none.version), None)  # once


def test_the_gate_config_refuses_a_margin_that_would_promote_a_worse_challenger():
    """Helper F (session 19): a negative margin was accepted (a challenger worse than the champion
    by less than it was promoted), and min_days 0 compared nothing."""
    from pydantic import ValidationError

    from energy_platform.defs.lifecycle import GateConfig

    with pytest.raises(ValidationError, match="margin"):
        GateConfig(margin=-0.5)
    with pytest.raises(ValidationError, match="min_days"):
        GateConfig(min_days=0)
    assert GateConfig().margin == 0.01


def test_a_market_flat_for_weeks_gets_its_baseline_and_a_challenger_is_refused_with_the_reason(reg, prices):
    """Helper M (session 20): prices at one value (a cap hit for weeks) make the weekly naive exact,
    so no rMAE exists; registering the baseline failed ("MLflow backend failed": float(None)) and
    the training step died on a KeyError, so nothing was forecast."""
    flat = prices.with_columns(pl.when(pl.col("date") > END - timedelta(days=40)).then(1000.0)
                               .otherwise(pl.col("price")).alias("price"))
    baseline, _ = reg.ensure_champion(flat, H, 0.0)
    assert baseline.is_baseline and baseline.metric("backtest_rmae") is None and baseline.metric("backtest_mae") == 0.0
    register(reg, flat, ChosenModel(), rmae=None)
    decision = run_gate(reg, flat, H, 0.01)[0]
    assert not decision.challenger_promoted and "weekly naive's error over the backtest is 0" in decision.reason
    assert reg.champion().version == baseline.version


def test_a_champion_set_by_hand_is_not_served_unseen(reg, prices):
    """Helper O (session 20): an alias set by hand on a version no gate approved (another tool's
    model forecasting 100,000, a refused challenger, a copied version) was served every morning
    without a word, and the history said a process had been killed."""
    baseline, _ = reg.ensure_champion(prices, H, 0.0)
    for decision in (None, "refused"):
        hand = register(reg, prices, ChosenModel(scale=40.0), alias=None)
        if decision:
            reg.tag_version(hand, {"gate_decision": decision})
        reg.set_alias(CHAMPION, hand)  # as a person does in the MLflow UI
        champion, why = reg.ensure_champion(prices, H, 0.0)
        assert champion.version == baseline.version, why
        assert f"champion v{hand} was not promoted by the gate (gate decision: {decision or 'none'}" in why
    gated = register(reg, prices, ChosenModel(), alias=None)
    promoted_by_the_gate(reg, gated)
    assert reg.ensure_champion(prices, H, 0.0) == (reg.card(gated), None)


def test_a_rollback_from_a_champion_whose_run_was_deleted_completes(reg, prices):
    """Helper O (session 20): the champion's MLflow run deleted in the UI, `rollback` moved the
    aliases, then failed tagging the run ("MLflow backend failed"), and the operator's retry undid
    the rollback."""
    baseline, _ = reg.ensure_champion(prices, H, 0.0)
    trained = register(reg, prices, ChosenModel(), alias=None)
    promoted_by_the_gate(reg, trained)
    reg.client.delete_run(reg.client.get_model_version(MODEL_NAME, trained).run_id)
    assert reg.rollback() == (baseline.version, trained)
    assert reg.champion().version == baseline.version and reg.card(trained).tags["rolled_back"] == "true"


def test_a_champion_put_back_by_rollback_serves_though_a_later_gate_refused_it(reg, prices):
    """Helper P (session 20): the gate re-gated the rolled-back challenger ("refused"), the operator
    rolled back again to it, and the next morning demoted it as "not promoted by the gate"."""
    baseline, _ = reg.ensure_champion(prices, H, 0.0)
    trained = register(reg, prices, ChosenModel(), alias=None)
    promoted_by_the_gate(reg, trained)
    assert reg.rollback() == (baseline.version, trained)
    reg.tag_version(trained, {"gate_decision": "refused"})  # the next ingestion's gate on the same challenger
    assert reg.rollback() == (trained, baseline.version)
    assert reg.ensure_champion(prices, H, 0.0) == (reg.card(trained), None)
