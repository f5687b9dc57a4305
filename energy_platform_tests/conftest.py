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
