"""The registry mirrored into the warehouse, so analysts can join forecasts to model versions."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from energy_platform.warehouse.db import connect, write

RECOVERED = ("recovered: the champion alias had moved with no record here (a process killed between moving it "
             "and recording it); the reason is on the version's gate tags")


def sync_model_versions(path: str | Path, cards: list, champion: str | None = None) -> int:
    """Replace `ml.model_versions` with the registry's current state (`VersionCard`s), and record
    `champion` in `ml.champion_history` if the newest record names another version: the alias
    moves in MLflow, the record follows in DuckDB, and a kill between the two left the history
    (and the analysts' "current champion") on the demoted version for good, since a rerun's gate
    finds nothing to change."""
    rows = []
    for c in cards:
        rows.append((
            c.version, c.run_id or "", datetime.fromtimestamp(c.created_ms / 1000),
            c.data_start, c.data_end, c.lineage.get("data_fingerprint") or None,
            c.backtest_start, c.backtest_end,
            c.metric("backtest_mae"), c.metric("backtest_rmae"),
            c.metric("backtest_pinball"), c.metric("backtest_coverage_80"),
            c.lineage.get("dagster_run_id") or None, c.gate_decision, ",".join(c.aliases),
            c.kind, c.lineage.get("git_commit") or None, c.gate_reason, c.history_days,
            c.tags.get("operating_groups") or None,
        ))
    columns = ("version, mlflow_run_id, registered_at, train_start, train_end, data_fingerprint, backtest_start, "
               "backtest_end, backtest_mae, backtest_rmae, backtest_pinball, backtest_coverage_80, dagster_run_id, "
               "gate_decision, aliases, kind, git_commit, gate_reason, history_days, operating_groups")

    def replace(conn) -> None:
        conn.execute("DELETE FROM ml.model_versions")
        if rows:
            conn.executemany(f"INSERT INTO ml.model_versions ({columns}) VALUES ({', '.join('?' * 20)})", rows)
        if champion is None:
            return
        newest = [r[0] for r in conn.execute(  # changed_at is to the second: every record of the newest one
            "SELECT version FROM ml.champion_history WHERE changed_at = (SELECT max(changed_at) FROM ml.champion_history)"
        ).fetchall()]
        if champion not in newest:
            conn.execute("INSERT INTO ml.champion_history VALUES (?, ?, ?, ?)",
                         [datetime.now().replace(microsecond=0), champion, newest[-1] if newest else None, RECOVERED])

    write(path, replace)
    return len(rows)


def record_champion_change(path: str | Path, version: str, previous: str | None, reason: str) -> None:
    with connect(path) as conn:
        conn.execute(
            "INSERT INTO ml.champion_history VALUES (?, ?, ?, ?)",
            [datetime.now().replace(microsecond=0), version, previous, reason],
        )
