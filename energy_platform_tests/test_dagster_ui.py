"""The Dagster UI's own path: `dagster dev` on 127.0.0.1, its GraphQL API, a partition launched
the way the UI's Materialize button does it, polled to success."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from energy_platform.warehouse.db import connect
from energy_platform_tests.platform_env import free_port, graphql, launch_run, make_env, wait_for_http

ROOT = Path(__file__).resolve().parent.parent




@pytest.fixture
def dagster_dev(tmp_path):
    env = make_env(tmp_path)  # the home with its dagster.yaml, as `make ui` prepares it
    port = free_port()
    log = open(tmp_path / "dagster_dev.log", "w")  # noqa: SIM115 - the server writes it for its lifetime
    proc = subprocess.Popen(
        [os.path.join(os.path.dirname(sys.executable), "dagster"), "dev", "-h", "127.0.0.1", "-p", str(port),
         "-w", str(ROOT / "workspace.yaml")],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        env={**os.environ, "ENERGY_PLATFORM_HOME": str(tmp_path), "DAGSTER_HOME": str(env.settings.dagster_home),
             "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")},
    )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/server_info", proc, tmp_path / "dagster_dev.log", 180)
        yield port, env
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def test_ui_reads_the_graph_and_materializes_a_partition(dagster_dev):
    port, env = dagster_dev
    nodes = graphql(port, "{ assetNodes { assetKey { path } groupName isPartitioned } }")["assetNodes"]
    keys = {tuple(n["assetKey"]["path"]) for n in nodes}
    assert {("raw_prices",), ("features",), ("forecaster_model",), ("champion_model",), ("predictions",),
            ("forecast_accuracy",), ("analytics_snapshot",)} <= keys
    assert next(n for n in nodes if n["assetKey"]["path"] == ["raw_prices"])["isPartitioned"]

    run_id = launch_run(port, {"selector": {"repositoryLocationName": "energy_platform", "repositoryName": "__repository__",
                         "pipelineName": "__ASSET_JOB", "assetSelection": [{"path": ["raw_prices"]}],
                         "assetCheckSelection": []},
            "executionMetadata": {"tags": [{"key": "dagster/partition", "value": "2016-02-01"}]}})

    deadline, status = time.monotonic() + 240, None
    while time.monotonic() < deadline:
        status = graphql(port, "query($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }", {"id": run_id})["runOrError"]["status"]
        if status in ("SUCCESS", "FAILURE", "CANCELED"):
            break
        time.sleep(1)
    assert status == "SUCCESS"
    with connect(env.warehouse, read_only=True) as conn:
        assert conn.execute("SELECT count(*) FROM raw.prices_hourly").fetchall()[0][0] == 29 * 24
