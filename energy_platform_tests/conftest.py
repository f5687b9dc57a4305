"""Shared test fixtures."""

from __future__ import annotations

import pytest

from energy_platform_tests.xm_server import FakeXm


@pytest.fixture
def fake_xm():
    """A running fake XM API (127.0.0.1, OS-chosen port) with no data yet.

    Load it with `.set_prices(...)`, `.set_hourly(...)`, `.set_daily(...)`; point the client at
    `fake_xm.url`. Stopped after the test.
    """
    with FakeXm() as server:
        yield server


@pytest.fixture(autouse=True)
def _no_inherited_mlflow_uri(monkeypatch):
    """Each test starts without `MLFLOW_TRACKING_URI`: the settings honour it, and MLflow exports it
    on every `mlflow.set_tracking_uri`, so one test's backend would leak into the next test's homes
    and the CLIs it spawns with `os.environ`."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


# Modules that start servers, browsers or killed subprocesses, train and gate models, or replay
# days: `make test` runs them, `make test-fast` (the edit loop, `-m "not slow"`) leaves them out.
SLOW_MODULES = {
    "test_dagster_ui",  # `dagster dev` and a run launched over GraphQL
    "test_dashboard_browser",  # Streamlit server + headless Chromium
    "test_production_profile",  # PostgreSQL cluster + mlflow server
    "test_warehouse_ducklake",  # PostgreSQL cluster, concurrent writer processes
    "test_fault_kills",  # trainings and swaps killed with SIGKILL, reruns
    "test_run_lease",  # killed run workers, lease expiry
    "test_replay",  # days replayed with training and gating
    "test_lifecycle",  # real trainings tracked in MLflow
    "test_registry_gate",  # real trainings, gate decisions, kills between alias moves
    "test_monitoring_loop",  # sensors over trained champions
    "test_serving_input",  # `mlflow models serve` over HTTP
    "test_analytics_cli",  # the DuckDB CLI and concurrent reader processes
    "test_home_relocation",  # a trained home copied and reused
    "test_ingestion_xm",  # the ten-year backfill killed and rerun
}


# Single tests of otherwise fast modules that run the whole CLI or the ten-year backfill.
SLOW_TESTS = {
    "test_interrupted_backfill_then_rerun_is_consistent",  # a demo killed, then a whole demo
    "test_project_definitions_validate_from_the_command_line",  # `dg check defs` in a subprocess
    "test_range_backfill_is_one_run_with_checks",  # the ten-year backfill
    "test_a_bad_stored_row_fails_its_blocking_check_and_nothing_downstream_materializes",
    "test_a_bad_csv_does_not_stop_the_code_location_from_loading",  # code server subprocess
    "test_the_cli_prints_one_line_and_exits_non_zero",  # the CLI in a subprocess, per damage
    "test_backtest_json_on_embedded_slice",  # the backtest CLI in a subprocess
    "test_the_sample_as_of_a_replay_day_twice_leaves_one_copy",
    "test_the_xm_source_on_a_loopback_server",
    "test_the_missing_day_of_the_source_stays_missing_and_warns",
    "test_an_impossible_stored_value_is_a_blocking_error",
    "test_lear_fits_real_lasso_and_beats_naive",
    "test_concurrent_readers_only_ever_see_complete_snapshots",  # reader processes
    "test_killed_publisher_leaves_a_readable_file_and_the_next_publish_cleans_up",
    "test_a_crash_inside_the_write_transaction_keeps_the_previous_rows",  # a writer process killed
    "test_warm_start_recalibration_is_cheaper",  # cold and warm fits timed against each other
    "test_forecaster_in_backtest_has_interval_metrics",  # a walk-forward backtest of the forecaster
    "test_tail_epochs_forecast_from_nets_that_saw_the_newest_days_and_warm_start_from_the_early_stopped_ones",
    "test_prices_tripled_is_error",  # Evidently over a year of reference data
    "test_a_three_month_ingest_plans_and_answers_each_whole_table_check_once",  # range runs of every asset
    "test_a_run_planned_per_partition_by_dagster_gets_an_answer_for_each",
    "test_backtest_reads_an_operating_data_folder_beside_a_csv",  # the backtest CLI in a subprocess
    "test_the_forecaster_of_a_market_with_negative_prices_forecasts_them",  # a forecaster backtest
    "test_a_csv_price_file_without_operating_files_gives_empty_assets_with_a_note",  # the whole ingest job
}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.module.__name__.rsplit(".", 1)[-1] in SLOW_MODULES or item.originalname in SLOW_TESTS:
            item.add_marker(pytest.mark.slow)
