"""The registry mirrored into the warehouse, so analysts can join forecasts to model versions."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from energy_platform.warehouse.db import connect, write

RECOVERED = ("recorded by the registry mirror: the champion alias had moved with no record here (a process killed "
             "between moving it and recording it, a change being recorded at that moment, or an alias set by hand); "
             "the gate's reason, if it promoted the version, is on the version's gate tags")


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
        newest = conn.execute("SELECT version FROM ml.champion_history ORDER BY changed_at DESC LIMIT 1").fetchone()
        if newest is None or newest[0] != champion:
            now = datetime.now().replace(microsecond=0)
            conn.execute(f"INSERT INTO ml.champion_history {_AFTER_THE_NEWEST}",
                         [now, now, champion, newest[0] if newest else None, RECOVERED])

    write(path, replace)
    return len(rows)


# changed_at of a new record: now, but after every record (to the second, two changes in one second,
# or a clock set back, would otherwise leave "the newest record" ambiguous for the mirror's check)
_AFTER_THE_NEWEST = ("SELECT greatest(?::TIMESTAMP, coalesce(max(changed_at) + INTERVAL 1 SECOND, ?::TIMESTAMP)), ?, ?, ? "
                     "FROM ml.champion_history")


def record_champion_change(path: str | Path, version: str, previous: str | None, reason: str) -> None:
    """Appends the change unless it is the newest record already: a command rerun after a kill
    between its record and its last registry write records it once."""
    now = datetime.now().replace(microsecond=0)
    with connect(path) as conn:
        newest = conn.execute("SELECT version, previous_version, reason FROM ml.champion_history "
                              "ORDER BY changed_at DESC LIMIT 1").fetchone()
        if newest != (version, previous, reason):
            conn.execute(f"INSERT INTO ml.champion_history {_AFTER_THE_NEWEST}", [now, now, version, previous, reason])
