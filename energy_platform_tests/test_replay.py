"""`energy-platform replay` from starts across the embedded decade, with a tiny model: every
replayed morning forecasts its target day, whether the first model passes the gate or not."""

from __future__ import annotations

from datetime import date, timedelta

import dagster as dg
import pytest

from energy_platform.replay import ReplayError, run_replay
from energy_platform.settings import from_env
from energy_platform.warehouse.db import connect

TINY = {"max_epochs": 3, "n_members": 1, "backtest_weeks": 1}


@pytest.mark.parametrize("start", [date(2016, 3, 1), date(2020, 4, 1), date(2024, 7, 1)])
def test_replay_forecasts_every_morning_from_any_start(tmp_path, start):
    settings = from_env({"ENERGY_PLATFORM_HOME": str(tmp_path), "ENERGY_PLATFORM_SOURCE": "sample"})
    settings.ensure_dirs()
    instance = dg.DagsterInstance.from_config(str(settings.dagster_home))
    lines: list[str] = []
    logs = run_replay(start, 2, echo=lines.append, training=TINY, settings=settings, instance=instance)
    assert len(logs) == 2
    targets = [d.day + timedelta(days=settings.horizon_days - 1) for d in logs]
    with connect(settings.warehouse_path, read_only=True) as conn:
        rows = conn.execute(
            "SELECT target_date, count(*), count(model_version), count(DISTINCT model_version) FROM ml.predictions "
            "WHERE target_date BETWEEN ? AND ? GROUP BY target_date ORDER BY target_date", [targets[0], targets[-1]]
        ).fetchall()
        kinds = dict(conn.execute("SELECT version, kind FROM ml.model_versions").fetchall())
    assert [(r[0], r[1], r[2]) for r in rows] == [(t, 24, 24) for t in targets]
    assert all(r[3] >= 1 for r in rows)
    assert "baseline" in kinds.values()  # registered and scored whatever the first model did
    assert all("served by v" in line for line in lines[2:4]), lines  # the log names the serving version


def test_replay_refuses_starts_outside_the_embedded_data(tmp_path):
    settings = from_env({"ENERGY_PLATFORM_HOME": str(tmp_path)})
    with pytest.raises(ReplayError, match="at the earliest"):
        run_replay(date(2015, 6, 1), 2, settings=settings)
    with pytest.raises(ReplayError, match="embedded data ends"):
        run_replay(date(2024, 12, 31), 5, settings=settings)


def test_the_first_replayed_morning_does_not_train_the_setup_model_again(tmp_path):
    """The set-up trains on data to the day before the first morning; that morning's drift ERROR
    (or Monday's weekly retraining) trained on the very same days and registered a twin version
    (same data fingerprint): now skipped, named."""
    settings = from_env({"ENERGY_PLATFORM_HOME": str(tmp_path), "ENERGY_PLATFORM_SOURCE": "sample"})
    settings.ensure_dirs()
    instance = dg.DagsterInstance.from_config(str(settings.dagster_home))
    lines: list[str] = []
    run_replay(date(2016, 2, 15), 1, echo=lines.append, training={"n_members": 1, "max_epochs": 3},  # a Monday
               settings=settings, instance=instance)
    with connect(settings.warehouse_path, read_only=True) as conn:
        trained = conn.execute("SELECT version, train_end, data_fingerprint FROM ml.model_versions WHERE kind = 'model'").fetchall()
    assert len(trained) == 1, (trained, lines)
    assert "RETRAINED" not in lines[2] and "weekly retraining: skipped, v1 was trained on data to 2016-02-14" in lines[2], lines


def test_a_replay_reads_the_operating_folder_of_its_settings(tmp_path):
    """Helper J (session 19): each replayed run's source config replaced the resource's whole, so
    ENERGY_PLATFORM_OPERATING_DIR (and the price bounds) fell back to the defaults, in silence."""
    import shutil

    from energy_platform.sources.operating import FILES, sample_paths

    folder = tmp_path / "operating"
    folder.mkdir()
    for kind, path in sample_paths().items():
        shutil.copyfile(path, folder / f"{FILES[kind]}.gz")
    settings = from_env({"ENERGY_PLATFORM_HOME": str(tmp_path / "home"), "ENERGY_PLATFORM_SOURCE": "sample",
                         "ENERGY_PLATFORM_OPERATING_DIR": str(folder)})
    settings.ensure_dirs()
    instance = dg.DagsterInstance.from_config(str(settings.dagster_home))
    run_replay(date(2016, 3, 2), 1, echo=lambda _: None, training=TINY, settings=settings, instance=instance)
    with connect(settings.warehouse_path, read_only=True) as conn:
        sources = {t: conn.execute(f"SELECT DISTINCT source FROM raw.{t}").fetchall()
                   for t in ("operating_daily", "hydrology_monthly", "enso_oni")}
    assert all(rows == [(f"csv:{folder}",)] for rows in sources.values()), sources  # was 'sample'


def test_a_replay_killed_mid_morning_resumes_at_that_morning(tmp_path):
    """Helper L (session 20): a replay killed after a morning's ingestion (prices to the day before)
    was refused at that morning, so continuing skipped it and its forecast was lost for good."""
    settings = from_env({"ENERGY_PLATFORM_HOME": str(tmp_path), "ENERGY_PLATFORM_SOURCE": "sample"})
    settings.ensure_dirs()
    instance = dg.DagsterInstance.from_config(str(settings.dagster_home))
    run_replay(date(2016, 3, 1), 1, echo=lambda _: None, training=TINY, settings=settings, instance=instance)
    run_replay(date(2016, 3, 1), 1, echo=lambda _: None, training=TINY, settings=settings, instance=instance)  # again
    with connect(settings.warehouse_path, read_only=True) as conn:
        rows = conn.execute("SELECT count(*), count(DISTINCT (target_date, hour, model_version)) FROM ml.predictions "
                            "WHERE target_date = ?", [date(2016, 3, 1) + timedelta(days=settings.horizon_days - 1)]).fetchall()[0]
    assert rows[0] == rows[1] >= 24  # served again, nothing duplicated
    with pytest.raises(ReplayError, match=r"already holds prices to 2016-02-29;.*--start 2016-03-01"):
        run_replay(date(2016, 2, 29), 1, echo=lambda _: None, training=TINY, settings=settings, instance=instance)
