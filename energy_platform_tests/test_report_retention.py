"""Drift reports are kept for a bounded time (helper R, session 21: ~24 MB of HTML a day, never
deleted, ~28 GB over three years): the local files and their MLflow runs older than the retention
go, the newest report of each check stays however old, and the numbers stay in the warehouse."""

import os
import time
from datetime import datetime

import pytest
from mlflow import MlflowClient

from energy_platform.monitoring.retention import STAMP, prune_reports
from energy_platform.settings import SettingError, from_env
from energy_platform.tracking.links import log_report, prune_report_runs

DAY = 86400


def _report(folder, check, age_days, now):
    """A report named, as the checks name them, with the time it was written; its file time is
    today's, as after a copy that does not keep times (helper T: the file time decided)."""
    path = folder / f"{check}_{datetime.fromtimestamp(now - age_days * DAY):{STAMP}}.html"
    path.write_text("<html>report</html>")
    return path


def test_old_report_files_go_and_the_newest_of_each_check_stays(tmp_path):
    now = time.time()
    old = [_report(tmp_path, "price_drift", age, now) for age in (40, 35)]
    recent = _report(tmp_path, "price_drift", 1, now)
    lone = _report(tmp_path, "features_drift", 90, now)  # its check's newest: kept
    unnamed = tmp_path / "price_drift_copy.html"  # no time in its name: its file's time counts
    unnamed.write_text("<html>report</html>")
    os.utime(unnamed, (now - 50 * DAY, now - 50 * DAY))
    other = tmp_path / "notes.txt"
    other.write_text("not a report")
    os.utime(other, (now - 400 * DAY, now - 400 * DAY))

    assert sorted(prune_reports(tmp_path, 30, now=now)) == sorted([*old, unnamed])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([recent.name, lone.name, "notes.txt"])
    assert prune_reports(tmp_path, 30, now=now) == []  # idempotent
    assert prune_reports(tmp_path / "missing", 30) == []


def test_old_report_runs_go_with_their_artifacts_and_the_newest_of_each_check_stays(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    artifacts = tmp_path / "mlartifacts"
    links = []
    for check in ("price_drift", "price_drift", "price_drift", "features_drift"):
        report = tmp_path / f"{check}_{len(links)}.html"
        report.write_text("<html>report</html>")
        links.append(log_report(uri, artifacts, "http://127.0.0.1:5000", report, run_name=check, tags={"check": check}))
        time.sleep(0.01)  # distinct start times
    client = MlflowClient(tracking_uri=uri)
    assert prune_report_runs(uri, 30) == 0  # nothing is 30 days old yet

    later = int(time.time() * 1000) + 31 * 86_400_000
    assert prune_report_runs(uri, 30, now_ms=later) == 2
    stages = [client.get_run(link.run_id).info.lifecycle_stage for link in links]
    assert stages == ["deleted", "deleted", "active", "active"]
    kept = {p.name for p in artifacts.rglob("*.html")}
    assert kept == {"price_drift_2.html", "features_drift_3.html"}
    assert prune_report_runs(uri, 30, now_ms=later) == 0  # idempotent


def test_the_retention_setting(tmp_path):
    env = {"ENERGY_PLATFORM_HOME": str(tmp_path)}
    assert from_env(env).reports_keep_days == 30
    assert from_env({**env, "ENERGY_PLATFORM_REPORTS_KEEP_DAYS": "none"}).reports_keep_days is None
    assert from_env({**env, "ENERGY_PLATFORM_REPORTS_KEEP_DAYS": "7"}).reports_keep_days == 7
    for bad in ("0", "abc", "inf", "-3", "1e12"):
        with pytest.raises(SettingError, match="ENERGY_PLATFORM_REPORTS_KEEP_DAYS must be a number of days from 1 to 36500 or 'none'"):
            from_env({**env, "ENERGY_PLATFORM_REPORTS_KEEP_DAYS": bad})
