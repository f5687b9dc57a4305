"""How long drift reports are kept: each Evidently HTML report is ~4 MB (3.5 MB of it Evidently's
own JavaScript, the same in every file), three a morning, ~12 MB a day in `reports/` and as much
again in MLflow: ~28 GB over three years if nothing is deleted (helper R, session 21).

A report older than the retention is deleted, except the newest of each check, which stays
however old (a platform stopped for a while still shows its last report). The check's numbers
stay in `monitoring.drift_checks` for good; only the HTML goes. Plain Python: no Dagster.
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

SECONDS_PER_DAY = 86400.0
STAMP = "%Y%m%dT%H%M%S%f"  # a report's name: `<check>_<written at, local time>.html` (report_path)


def report_path(reports_dir: str | Path, check_name: str) -> Path:
    """Where a check's new report goes: its name carries the check and when it was written."""
    return Path(reports_dir) / f"{check_name}_{datetime.now():{STAMP}}.html"


def report_check(path: Path) -> str:
    """The check a report file belongs to: its name is `<check>_<timestamp>.html`."""
    return path.stem.rsplit("_", 1)[0]


def report_written(path: Path) -> float:
    """When a report was written: the time in its name (a home copied without its files' times
    keeps it), else the file's modification time."""
    try:
        return datetime.strptime(path.stem.rsplit("_", 1)[1], STAMP).timestamp()
    except (IndexError, ValueError):
        return path.stat().st_mtime


def prune_reports(reports_dir: str | Path, keep_days: float, now: float | None = None) -> list[Path]:
    """Delete the HTML reports in `reports_dir` written more than `keep_days` ago, keeping the
    newest of each check; returns the files deleted."""
    folder = Path(reports_dir)
    if not folder.is_dir():
        return []
    cutoff = (time.time() if now is None else now) - keep_days * SECONDS_PER_DAY
    reports = sorted(((report_written(p), p) for p in folder.glob("*.html") if p.is_file()), reverse=True)
    newest_seen: set[str] = set()
    deleted = []
    for written, path in reports:
        check = report_check(path)
        if check not in newest_seen:
            newest_seen.add(check)
            continue
        if written < cutoff:
            path.unlink(missing_ok=True)  # a concurrent check may have pruned it already
            deleted.append(path)
    return deleted
