"""The model registry as one domain object over MLflow's client.

`ModelRegistry` owns everything the platform asks of MLflow's registry: the typed version card,
the aliases (`champion` serves, `challenger` is the latest candidate, `previous` the champion
before the last move, for a one-step rollback), promotion and rollback, the persistence baseline
that guarantees a champion, the ending of MLflow runs orphaned by killed Dagster runs, the
retraining policy the sensor applies, and the mirror into the warehouse's `ml.model_versions`.
Assets, sensors, the CLI and the dashboard read the champion through it and nowhere else.

A move of the champion is all-or-nothing for the reader: `previous` is set first (to the
version still serving), then `champion`; a kill between the two leaves the old champion
serving and `previous` equal to it (rollback then says there is nothing to roll back to).
The warehouse mirror is a full replace from the registry, re-run at every gate and prediction.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path

import mlflow
import polars as pl
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from energy_platform.errors import StateError
from energy_platform.profile import is_tracking_server
from energy_platform.tracking import EXPERIMENT_NAME, MODEL_NAME
from energy_platform.tracking.artifact_check import SERVED_FORECASTS_ARTIFACT
from energy_platform.tracking.comparison import fresh_days
from energy_platform.tracking.setup import TrackingUnavailableError, prepare_tracking
from energy_platform.tracking.version_card import KIND_BASELINE, VersionCard, floor_text

CHAMPION, CHALLENGER, PREVIOUS = "champion", "challenger", "previous"
MIN_FRESH_DAYS = 7  # days after the champion's training data the gate needs to compare on
BACKTEST_ARTIFACT = "backtest_forecasts.parquet"


log = logging.getLogger(__name__)

ROLLED_BACK_AT = "rolled_back_at_ms"  # when: a baseline rolled back from is not the gate's fallback for older challengers
PROMOTED = "promoted_by_platform"  # a version the gate (or its baseline fallback) ever made champion
ROLLED_BACK = "rolled_back"  # a version's tag once `energy-platform rollback` demoted it: the gate never re-promotes it
ROLLBACK_PENDING = "rollback_pending_to"  # on the version a rollback demotes, until it is recorded: a rerun completes it


class RegistryError(RuntimeError):
    """An operator request the registry cannot honour (e.g. nothing to roll back to)."""


class ModelRegistry:
    def __init__(self, tracking_uri: str, artifact_root: str | Path | None = None, name: str = MODEL_NAME):
        self.tracking_uri = tracking_uri
        self.artifact_root = Path(artifact_root) if artifact_root else None
        self.name = name
        self._client: MlflowClient | None = None
        self._loaded: dict[str, object] = {}  # version -> pyfunc, loaded once per registry object (one run)

    # -- connection ---------------------------------------------------------------------------
    @property
    def client(self) -> MlflowClient:
        """The client, after the backend answered (created once); a dead backend is named."""
        if self._client is None:
            if self.artifact_root is not None or is_tracking_server(self.tracking_uri):
                prepare_tracking(self.tracking_uri, self.artifact_root, EXPERIMENT_NAME)
            mlflow.set_tracking_uri(self.tracking_uri)
            mlflow.set_registry_uri(self.tracking_uri)
            self._client = MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)
        return self._client

    @contextmanager
    def _backend(self, doing: str) -> Iterator[MlflowClient]:
        try:
            yield self.client
        except (TrackingUnavailableError, RegistryError, StateError):
            raise
        except (TypeError, AttributeError, KeyError, NameError):
            raise  # our own code's mistakes, not the backend's: a flat market's None rMAE was reported as "MLflow failed"
        except MlflowException as exc:
            if "RESOURCE_DOES_NOT_EXIST" in str(exc.error_code):
                raise
            raise TrackingUnavailableError(f"MLflow backend {self.tracking_uri} failed while {doing}: {exc}") from exc
        except Exception as exc:  # SQLAlchemy and OS errors come through MLflow unwrapped
            raise TrackingUnavailableError(f"MLflow backend {self.tracking_uri} failed while {doing}: {exc}") from exc

    # -- reading ------------------------------------------------------------------------------
    def _aliases(self) -> dict[str, tuple[str, ...]]:
        with self._backend("reading aliases") as client:
            try:
                model = client.get_registered_model(self.name)
            except MlflowException as exc:
                if "RESOURCE_DOES_NOT_EXIST" in str(exc.error_code):
                    return {}
                raise
        out: dict[str, list[str]] = {}
        for alias, version in model.aliases.items():
            out.setdefault(str(version), []).append(alias)
        return {v: tuple(a) for v, a in out.items()}

    def cards(self) -> list[VersionCard]:
        """Every registered version, newest first."""
        aliases = self._aliases()
        with self._backend("listing versions") as client:
            versions = client.search_model_versions(f"name = '{self.name}'")
        cards = [VersionCard.from_model_version(v, aliases.get(str(v.version), ())) for v in versions]
        return sorted(cards, key=lambda c: int(c.version), reverse=True)

    def card(self, version: str) -> VersionCard:
        with self._backend(f"reading version {version}") as client:
            v = client.get_model_version(self.name, str(version))
        return VersionCard.from_model_version(v, self._aliases().get(str(version), ()))

    def alias(self, alias: str) -> VersionCard | None:
        version = next((v for v, names in self._aliases().items() if alias in names), None)
        return self.card(version) if version else None

    def champion(self) -> VersionCard | None:
        return self.alias(CHAMPION)

    def challenger(self) -> VersionCard | None:
        return self.alias(CHALLENGER)

    def load(self, card: VersionCard):
        """The exact registered artifact of `card`, as a pyfunc."""
        if card.version not in self._loaded:
            with self._backend(f"loading version {card.version}"):
                self._loaded[card.version] = mlflow.pyfunc.load_model(f"models:/{self.name}/{card.version}")
        return self._loaded[card.version]

    def run_artifact(self, card: VersionCard, artifact: str) -> pl.DataFrame | None:
        """A parquet artifact of the version's MLflow run, None if it was never logged."""
        if not card.run_id:
            return None
        with self._backend(f"reading {artifact} of version {card.version}") as client:
            names = {f.path for f in client.list_artifacts(card.run_id)}
            if artifact not in names:
                return None
            return pl.read_parquet(client.download_artifacts(card.run_id, artifact))

    # -- writing ------------------------------------------------------------------------------
    def tag_version(self, version: str, tags: dict[str, str]) -> None:
        with self._backend(f"tagging version {version}") as client:
            for key, value in tags.items():
                client.set_model_version_tag(self.name, version, key, value)
            run_id = client.get_model_version(self.name, version).run_id
            if run_id and self._run_is_active(client, run_id):  # a run deleted in the UI takes no tags (helper O)
                for key, value in tags.items():
                    client.set_tag(run_id, key, value)

    @staticmethod
    def _run_is_active(client: MlflowClient, run_id: str) -> bool:
        try:
            return client.get_run(run_id).info.lifecycle_stage == "active"
        except MlflowException as exc:
            if "RESOURCE_DOES_NOT_EXIST" in str(exc.error_code):  # removed for good (mlflow gc)
                return False
            raise

    def set_alias(self, alias: str, version: str) -> None:
        with self._backend(f"setting alias {alias}") as client:
            client.set_registered_model_alias(self.name, alias, version)

    def promote(self, version: str) -> str | None:
        """`version` becomes champion; the one it replaces becomes `previous`. Returns that one."""
        before = self.champion()
        if before is not None and before.version == version:
            return before.version
        # kept for good: a later gate run overwrites gate_decision ("refused" for a rolled-back
        # challenger), and a version put back by rollback must still serve (helper P, session 20)
        self.tag_version(version, {PROMOTED: "true"})
        if before is not None:
            self.set_alias(PREVIOUS, before.version)
        self.set_alias(CHAMPION, version)
        return before.version if before else None

    def rollback(self, horizon_days: int | None = None,
                 record: Callable[[str, str], None] | None = None) -> tuple[str, str]:
        """Champion goes back to `previous`; the demoted version becomes `previous`. Returns (new, old).
        A `previous` of another horizon than the platform's is refused: the next predictions run
        replaced it by the baseline, undoing a rollback that had said it succeeded.

        The demoted version is tagged first with where the champion goes, and untagged only after
        `record(new, old)`: a rollback killed between its writes (two aliases, the warehouse's record)
        is completed by the next one instead of being undone by it, or refused as "nothing to roll
        back to" with the champion and `previous` on one version."""
        pending = next((c for c in self.cards() if c.tags.get(ROLLBACK_PENDING)), None)
        champion = self.champion()
        if pending is not None:
            demoted, target = pending.version, pending.tags[ROLLBACK_PENDING]
            if champion is not None and champion.version in (demoted, target):
                log.warning("completing the rollback from v%s to v%s that was interrupted", demoted, target)
                return self._move_back(target, demoted, record)
            self._forget_pending(demoted)  # a promotion came after it: that rollback is history
        previous = self.alias(PREVIOUS)
        if champion is None:
            raise RegistryError(f"nothing to roll back: {self.name} has no champion yet")
        if previous is None or previous.version == champion.version:
            raise RegistryError(f"nothing to roll back to: no '{PREVIOUS}' version other than the champion of {self.name}")
        if horizon_days is not None and previous.horizon_days not in (None, horizon_days):
            raise RegistryError(f"'{PREVIOUS}' v{previous.version} forecasts {previous.horizon_days} day(s) ahead, the platform "
                                f"{horizon_days} (ENERGY_PLATFORM_HORIZON_DAYS): it cannot serve; nothing was rolled back")
        self.tag_version(champion.version, {ROLLED_BACK: "true", ROLLED_BACK_AT: str(int(time.time() * 1000))})
        with self._backend(f"marking the rollback from version {champion.version}") as client:
            client.set_model_version_tag(self.name, champion.version, ROLLBACK_PENDING, previous.version)
        return self._move_back(previous.version, champion.version, record)

    def _move_back(self, new: str, old: str, record: Callable[[str, str], None] | None) -> tuple[str, str]:
        self.set_alias(CHAMPION, new)
        self.set_alias(PREVIOUS, old)
        if record is not None:
            record(new, old)
        self._forget_pending(old)
        return new, old

    def _forget_pending(self, version: str) -> None:
        with self._backend(f"unmarking the rollback from version {version}") as client:
            client.delete_model_version_tag(self.name, version, ROLLBACK_PENDING)

    # -- the persistence baseline -------------------------------------------------------------
    def baseline(self, horizon_days: int, floor: float | None = 0.0) -> VersionCard | None:
        """This horizon's and floor's baseline: one clamped at 0 served a market switched to
        `ENERGY_PLATFORM_PRICE_FLOOR=none` above its negative prices (helper I, session 19)."""
        return next((c for c in self.cards() if c.is_baseline and c.horizon_days == horizon_days
                     and c.baseline_floor == floor_text(floor)), None)

    def ensure_baseline(self, prices: pl.DataFrame, horizon_days: int, floor: float | None, backtest_weeks: int = 4,
                        dagster_tags: dict[str, str] | None = None) -> VersionCard:
        """The registered persistence baseline for this horizon, registering it on first need."""
        found = self.baseline(horizon_days, floor)
        if found is not None:
            return found
        from energy_platform.tracking.baseline_registration import register_baseline

        with self._backend("registering the persistence baseline"):
            version = register_baseline(self, prices, horizon_days, floor, backtest_weeks, dagster_tags)
        return self.card(version)

    def ensure_champion(self, prices: pl.DataFrame, horizon_days: int, floor: float | None,
                        dagster_tags: dict[str, str] | None = None) -> tuple[VersionCard, str | None]:
        """The serving version; with none (a first deployment), one of another horizon
        (`ENERGY_PLATFORM_HORIZON_DAYS` changed: it forecasts other days than those asked for), or
        one whose artifacts do not load (a folder lost in a restore: every morning's predictions
        failed, helper F in session 19), this horizon's baseline is promoted. Returns (champion, why
        the baseline was just promoted or None)."""
        champion = self.champion()
        if champion is None:
            reason = "no champion yet"
        elif not champion.is_baseline and champion.gate_decision != "promoted" and champion.tags.get(PROMOTED) != "true":
            # an alias set by hand (or a version copied in) was served unseen: an unrun artifact
            # forecasting 100,000 COP/kWh went out every morning (helper O, session 20)
            reason = (f"champion v{champion.version} was not promoted by the gate (gate decision: "
                      f"{champion.gate_decision or 'none'}; an alias set by hand?): set the 'challenger' alias to it "
                      "and materialize champion_model, which runs and compares it first")
        elif not champion.is_baseline and champion.history_days is None:
            reason = f"champion v{champion.version} has no history_days tag: not a version the platform registered"
        elif champion.horizon_days not in (None, horizon_days):
            reason = (f"champion v{champion.version} forecasts {champion.horizon_days} day(s) ahead, the platform "
                      f"{horizon_days} (ENERGY_PLATFORM_HORIZON_DAYS changed)")
        elif champion.is_baseline and champion.baseline_floor != floor_text(floor):
            reason = (f"the baseline v{champion.version} clamps at the floor {champion.baseline_floor}, the market's is "
                      f"{floor_text(floor)} (ENERGY_PLATFORM_PRICE_FLOOR changed)")
        else:
            try:
                self.load(champion)
                return champion, None
            except Exception as exc:
                if champion.is_baseline or connection_trouble(exc):  # a hiccup fails this run; the next retries
                    raise
                reason = (f"champion v{champion.version} does not load ({type(exc).__name__}: {exc}; restore its "
                          "artifacts, then energy-platform rollback)")
        return self.fall_back_to_baseline(prices, horizon_days, floor, reason, dagster_tags)

    def fall_back_to_baseline(self, prices: pl.DataFrame, horizon_days: int, floor: float | None, reason: str,
                              dagster_tags: dict[str, str] | None = None) -> tuple[VersionCard, str]:
        """Promote this horizon's and floor's persistence baseline because of `reason`; returns
        (the baseline, the reason as recorded)."""
        baseline = self.ensure_baseline(prices, horizon_days, floor, dagster_tags=dagster_tags)
        reason += ": the persistence baseline serves until a model passes the gate"
        self.tag_version(baseline.version, {"gate_decision": "promoted", "gate_reason": reason})
        self.promote(baseline.version)
        return self.card(baseline.version), reason

    # -- runs of killed processes -------------------------------------------------------------
    def end_orphan_runs(self, dagster_run_is_active: Callable[[str], bool]) -> list[str]:
        """End every RUNNING MLflow run whose Dagster run is no longer active: KILLED, or FINISHED
        when the gate had promoted a version it registered."""
        with self._backend("ending orphaned runs") as client:
            experiment = client.get_experiment_by_name(EXPERIMENT_NAME)
            if experiment is None:
                return []
            ended = []
            for run in client.search_runs([experiment.experiment_id], "attributes.status = 'RUNNING'", max_results=1000):
                dagster_run_id = run.data.tags.get("dagster_run_id")
                if dagster_run_id and not dagster_run_is_active(dagster_run_id):
                    # a process killed after its gate promoted the version: the training and the
                    # decision are whole, and the serving champion's run showed Killed (helper L)
                    versions = client.search_model_versions(f"run_id = '{run.info.run_id}'")
                    done = any(v.tags.get("gate_decision") == "promoted" for v in versions)
                    client.set_terminated(run.info.run_id, status="FINISHED" if done else "KILLED")
                    ended.append(run.info.run_id)
        return ended

    # -- retraining policy --------------------------------------------------------------------
    def trained_to(self, data_day: date | None, horizon_days: int) -> VersionCard | None:
        """The newest trained version (not a baseline) of this horizon if its data reach
        `data_day`: a retraining now would learn from the same days and register its twin."""
        newest = next((c for c in self.cards() if not c.is_baseline and c.horizon_days in (None, horizon_days)), None)
        if newest is None or newest.data_end is None or data_day is None or newest.data_end < data_day:
            return None
        return newest

    def retraining_wait_reason(self, data_day: date | None, horizon_days: int, min_days: int = MIN_FRESH_DAYS) -> str | None:
        """Why a retraining now could only be refused by the gate, or None if it is worth running.

        A version already trained on data to `data_day` would be trained again on the same data
        (the replay's setup model, then its first morning's drift). A champion that a retraining
        has just promoted leaves too few days after its training data to compare a new challenger
        on. A baseline champion was not trained: it is no reason to wait.
        """
        done = self.trained_to(data_day, horizon_days)
        if done is not None:
            return (f"v{done.version} was trained on data to {done.data_end} already "
                    f"(gate: {done.gate_decision or 'not run'}): no new day to learn from")
        champion = self.champion()
        if champion is None or champion.is_baseline or champion.data_end is None or data_day is None:
            return None
        fresh = fresh_days(data_day, champion.data_end, horizon_days)
        if fresh >= min_days:
            return None
        return (f"champion v{champion.version} was trained on data to {champion.data_end}: only {fresh} day(s) "
                f"to compare a challenger with it, the gate needs {min_days}")

    # -- the warehouse mirror -----------------------------------------------------------------
    def mirror(self, warehouse_path: str | Path) -> int:
        from energy_platform.warehouse.model_versions import sync_model_versions

        cards = self.cards()
        return sync_model_versions(warehouse_path, cards, next((c.version for c in cards if CHAMPION in c.aliases), None))

    def log_dataframe(self, run_id: str, frame: pl.DataFrame, name: str) -> None:
        with tempfile.TemporaryDirectory() as tmp, self._backend(f"logging {name}") as client:
            path = Path(tmp) / name
            frame.write_parquet(path)
            client.log_artifact(run_id, str(path))


def connection_trouble(exc: BaseException | None) -> bool:
    """A reset, refused or timed-out connection anywhere in `exc`'s chain: the backend's trouble,
    not the artifacts'. One such hiccup demoted a sound champion for good (helper I, session 19)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        name = type(exc).__name__
        if isinstance(exc, (ConnectionError, TimeoutError)) or "Connection" in name or "Timeout" in name or name == "OperationalError":
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def alias_version(client: MlflowClient, alias: str, name: str = MODEL_NAME):
    """The raw MLflow ModelVersion behind an alias, or None (for tests and debugging sessions)."""
    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def backtest_days(card: VersionCard) -> list[date]:
    if card.backtest_start is None or card.backtest_end is None:
        return []
    n = (card.backtest_end - card.backtest_start).days + 1
    return [card.backtest_start + timedelta(days=i) for i in range(n)]


__all__ = [
    "BACKTEST_ARTIFACT",
    "CHALLENGER",
    "CHAMPION",
    "KIND_BASELINE",
    "MIN_FRESH_DAYS",
    "PREVIOUS",
    "SERVED_FORECASTS_ARTIFACT",
    "ModelRegistry",
    "RegistryError",
    "backtest_days",
]
