"""The organisation's dashboard: a Streamlit app over the read-only `analytics.duckdb`."""

from __future__ import annotations

import os
import sys
from pathlib import Path

APP = Path(__file__).resolve().parent / "app.py"


def streamlit_command(port: int = 8501, host: str = "127.0.0.1") -> list[str]:
    """`streamlit run app.py ...` in this interpreter (the venv's), the page's imports preloaded."""
    return [
        sys.executable, "-m", "energy_platform.dashboard.serve", "run", str(APP),
        "--server.address", host,
        "--server.port", str(port),
        "--server.headless", "true",
        "--browser.gatherUsageStats", "false",
        "--client.toolbarMode", "viewer",  # no "Deploy" button on a desk's screen
    ]


def run_dashboard(port: int = 8501, host: str = "127.0.0.1") -> None:
    """Replace this process with the Streamlit server (reads ENERGY_PLATFORM_HOME from the env)."""
    command = streamlit_command(port, host)
    os.execv(command[0], command)
