"""A throwaway platform home for tests: settings, definitions and an instance on real files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from energy_platform.defs import build_definitions
from energy_platform.settings import Settings, from_env


@dataclass
class PlatformEnv:
    settings: Settings
    defs: dg.Definitions
    instance: dg.DagsterInstance

    @property
    def warehouse(self) -> Path:
        return self.settings.warehouse_path


def make_env(home: Path, source: str = "sample", **extra_env: str) -> PlatformEnv:
    settings = from_env({"ENERGY_PLATFORM_HOME": str(home), "ENERGY_PLATFORM_SOURCE": source, **extra_env})
    settings.ensure_dirs()
    instance = dg.DagsterInstance.from_config(str(settings.dagster_home))
    return PlatformEnv(settings, build_definitions(settings), instance)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_http(url: str, process, log: Path, seconds: float) -> None:
    """Poll `url` until it answers; fail with the server's log if it dies or takes too long."""
    import time
    import urllib.request

    deadline = time.monotonic() + seconds
    while True:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, f"{url} did not answer within {seconds} s"
            time.sleep(0.5)
