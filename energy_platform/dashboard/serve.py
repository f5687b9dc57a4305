"""Start Streamlit with the page's heavy imports already loaded.

Streamlit runs the page in the server's own process, so modules imported here before the server
starts are already in `sys.modules` when the first visitor's session runs the page: the first
paint no longer waits for Altair, Polars and DuckDB to import (measured in bench/bench_analytics.py).
"""

import sys

import altair  # noqa: F401
import duckdb  # noqa: F401
import polars  # noqa: F401
from streamlit.web import cli as streamlit_cli

from energy_platform.dashboard import data  # noqa: F401

if __name__ == "__main__":
    sys.argv = ["streamlit", *sys.argv[1:]]
    sys.exit(streamlit_cli.main())
