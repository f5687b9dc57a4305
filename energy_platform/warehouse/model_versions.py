"""The registry mirrored into the warehouse, so analysts can join forecasts to model versions."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from energy_platform.warehouse.db import connect, write_transaction


def _float(tags: dict, key: str) -> float | None:
    value = tags.get(key)
    try:
        return float(value) if value not in (None, "") else None
    except ValueError:
        return None


def sync_model_versions(path: str | Path, versions: list[dict]) -> int:
    """Replace `ml.model_versions` with the registry's current state (rows from registry.versions_frame)."""
    rows = []
    for v in versions:
        tags = v["tags"]
        rows.append((
            v["version"], v["run_id"], datetime.fromtimestamp(v["created_ms"] / 1000),
            tags.get("data_start"), tags.get("data_end"), tags.get("data_fingerprint"),
            tags.get("backtest_start"), tags.get("backtest_end"),
            _float(tags, "metric.backtest_mae"), _float(tags, "metric.backtest_rmae"),
            _float(tags, "metric.backtest_pinball"), _float(tags, "metric.backtest_coverage_80"),
            tags.get("dagster_run_id"), tags.get("gate_decision"), v["aliases"],
        ))
    with write_transaction(path) as conn:
        conn.execute("DELETE FROM ml.model_versions")
        if rows:
            conn.executemany(f"INSERT INTO ml.model_versions VALUES ({', '.join('?' * 15)})", rows)
    return len(rows)


def record_champion_change(path: str | Path, version: str, previous: str | None, reason: str) -> None:
    with connect(path) as conn:
        conn.execute(
            "INSERT INTO ml.champion_history VALUES (?, ?, ?, ?)",
            [datetime.now().replace(microsecond=0), version, previous, reason],
        )
