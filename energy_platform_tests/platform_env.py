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


def graphql(port: int, query: str, variables: dict | None = None, timeout: float = 60) -> dict:
    """One query to a Dagster webserver on 127.0.0.1; GraphQL errors fail the test with the answer."""
    import json
    import urllib.request

    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", data=body, headers={"Content-Type": "application/json"})
    answer = json.loads(urllib.request.urlopen(request, timeout=timeout).read())
    assert "errors" not in answer, answer
    return answer["data"]


def launch_run(port: int, params: dict) -> str:
    """Launch a run the way the UI's Materialize button does; returns its run id."""
    launched = graphql(port, """
        mutation Launch($params: ExecutionParams!) {
          launchPipelineExecution(executionParams: $params) {
            __typename
            ... on LaunchRunSuccess { run { runId } }
            ... on PythonError { message }
            ... on InvalidSubsetError { message }
          }
        }""", {"params": {**params, "mode": "default"}})["launchPipelineExecution"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    return launched["run"]["runId"]
