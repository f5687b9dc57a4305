"""What the registry knows about one model version, parsed once from MLflow's string tags.

Every reader (gate, predictions, sensor, CLI, dashboard mirror) goes through `VersionCard`, so a
missing or malformed tag is a `None` here and a named reason wherever it matters, never a
KeyError in one of four places.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date

KIND_MODEL, KIND_BASELINE = "model", "baseline"
LINEAGE_TAGS = ("dagster_run_id", "mlflow_run_id", "git_commit", "data_fingerprint")
FLOOR_TAG = "price_floor"  # a baseline's: the floor its forecasts are clamped at ("none": no floor)


def floor_text(floor: float | None) -> str:
    return "none" if floor is None else f"{floor:g}"


def _date(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except ValueError:
        return None


def _finite(value: str | None) -> float | None:
    try:
        x = float(value) if value not in (None, "") else None
    except ValueError:
        return None
    return x if x is not None and math.isfinite(x) else None


@dataclass(frozen=True)
class VersionCard:
    version: str
    kind: str
    run_id: str | None
    created_ms: int
    aliases: tuple[str, ...]
    data_start: date | None
    data_end: date | None
    history_days: int | None
    horizon_days: int | None
    backtest_start: date | None
    backtest_end: date | None
    metrics: dict[str, float] = field(default_factory=dict)  # finite values only
    lineage: dict[str, str] = field(default_factory=dict)
    gate_decision: str | None = None
    gate_reason: str | None = None
    tags: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_model_version(cls, v, aliases: tuple[str, ...] = ()) -> VersionCard:
        tags = dict(v.tags or {})
        metrics = {k[len("metric."):]: x for k, s in tags.items() if k.startswith("metric.") and (x := _finite(s)) is not None}
        lineage = {k: tags.get(k) or "" for k in LINEAGE_TAGS}
        lineage["mlflow_run_id"] = lineage["mlflow_run_id"] or (v.run_id or "")
        return cls(
            version=str(v.version),
            kind=tags.get("kind") or KIND_MODEL,  # versions from before baselines existed are models
            run_id=v.run_id or None,
            created_ms=int(v.creation_timestamp or 0),
            aliases=tuple(sorted(aliases)),
            data_start=_date(tags.get("data_start")),
            data_end=_date(tags.get("data_end")),
            history_days=_int(tags.get("history_days")),
            horizon_days=_int(tags.get("horizon_days")),
            backtest_start=_date(tags.get("backtest_start")),
            backtest_end=_date(tags.get("backtest_end")),
            metrics=metrics,
            lineage=lineage,
            gate_decision=tags.get("gate_decision") or None,
            gate_reason=tags.get("gate_reason") or None,
            tags=tags,
        )

    @property
    def is_baseline(self) -> bool:
        return self.kind == KIND_BASELINE

    @property
    def baseline_floor(self) -> str:
        """The floor a baseline clamps at; one registered before the tag had the default, 0."""
        return self.tags.get(FLOOR_TAG) or "0"

    def metric(self, name: str) -> float | None:
        return self.metrics.get(name)

    def describe(self) -> str:
        if self.is_baseline:
            return f"v{self.version} (baseline: persistence, the latest known day)"
        trained = f"trained to {self.data_end}" if self.data_end else "training range unknown"
        return f"v{self.version} (model, {trained})"
