"""energy_platform: day-ahead forecasts of Colombia's wholesale electricity price, run as a product."""

import warnings

__version__ = "0.1.0"

# Dagster flags parameters we rely on (backfill_policy, dagster-mlflow's hooks) as beta/preview. The
# project pins dagster exactly (constraints.txt), so they cannot change under us; the warnings only
# hid the platform's own output. Matched by message so this import stays free of dagster.
warnings.filterwarnings("ignore", message=r".*is currently in (beta|preview)")
