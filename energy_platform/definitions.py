"""The single Definitions object Dagster loads (workspace.yaml, `dg`, `dagster dev`)."""

from energy_platform.defs import build_definitions
from energy_platform.settings import get_settings

defs = build_definitions(get_settings())
