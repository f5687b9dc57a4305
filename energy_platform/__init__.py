"""energy_platform: day-ahead forecasts of Colombia's wholesale electricity price, run as a product."""

import logging
import warnings

__version__ = "0.1.0"

# Library notices that said nothing to the platform's users, silenced by message so this import
# stays free of the libraries themselves:
# - Dagster flags parameters we rely on (backfill_policy, dagster-mlflow's hooks) as beta/preview;
#   dagster is pinned exactly (constraints.txt), so they cannot change under us.
# - MLflow's hint that integer columns cannot hold missing values: a request with a missing hour is
#   answered by our own 400 (tracking/serving_input.py) before the signature is enforced.
# - MLflow's note that a python_model object is serialised with CloudPickle: the models are our own
#   classes, loaded only from our own registry.
warnings.filterwarnings("ignore", message=r".*is currently in (beta|preview)")
warnings.filterwarnings("ignore", message=r"\s*Hint: Inferred schema contains integer column")


class _DropCloudPickleNote(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "serialized using CloudPickle" not in record.getMessage()


logging.getLogger("mlflow.pyfunc").addFilter(_DropCloudPickleNote())
