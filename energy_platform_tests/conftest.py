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
