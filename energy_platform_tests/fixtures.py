"""The shipped fixture files (energy_platform_tests/data/, see its README), ready to read."""

from __future__ import annotations

import gzip
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"
EPFTOOLBOX = {"NP": "NP_2013-01-01_2013-01-28.csv.gz", "PJM": "PJM_2018-04-01_2018-05-31.csv.gz"}


def epftoolbox_csv(market: str, directory: Path) -> Path:
    """The shipped slice of epftoolbox's `<market>.csv`, written as `directory/<market>.csv`."""
    path = Path(directory) / f"{market}.csv"
    path.write_bytes(gzip.decompress((DATA / EPFTOOLBOX[market]).read_bytes()))
    return path
