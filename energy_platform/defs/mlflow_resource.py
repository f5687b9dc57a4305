"""dagster-mlflow's `mlflow_tracking`, wrapped where its old-style config falls short.

The wrapper (1) creates the SQLite backend and the experiment with an artifact root inside
ENERGY_PLATFORM_HOME before the resource touches them (the stock resource lets MLflow create
both lazily, racing on the schema and putting artifacts under the working directory), (2)
builds the stock resource's config from settings instead of YAML, and (3) ends the MLflow run
when the resource is torn down, so runs launched without the `end_mlflow_on_run_finished` hook
(`dg.materialize`, the CLI) are not left RUNNING, and (4) first ends, as KILLED, the MLflow runs
of Dagster runs that are no longer active (a `kill -9` gives no teardown). The MLflow run itself
is the stock one: tagged `dagster_run_id`, shared by every step of a Dagster run. Everything
else reaches MLflow through the registry resource; this one only opens the training's run.
"""

from types import SimpleNamespace

import dagster as dg
import mlflow
from dagster_mlflow.resources import MlFlow

from energy_platform.defs.resources import RegistryResource
from energy_platform.tracking import EXPERIMENT_NAME


def build_mlflow_resource(registry: RegistryResource) -> dg.ResourceDefinition:
    @dg.resource(description="MLflow tracking (dagster-mlflow) on the platform's backend")
    def mlflow_tracking(init_context: dg.InitResourceContext):
        instance = init_context.instance

        def active(dagster_run_id: str) -> bool:
            run = instance.get_run_by_id(dagster_run_id) if instance else None
            return run is not None and not run.is_finished

        registry.get().end_orphan_runs(active)  # also creates the backend and experiment, once
        stock_context = SimpleNamespace(
            log=init_context.log,
            dagster_run=init_context.dagster_run,
            run_id=init_context.run_id,
            resource_config={
                "experiment_name": EXPERIMENT_NAME,
                "mlflow_tracking_uri": registry.tracking_uri,
                "extra_tags": {"dagster_job": init_context.dagster_run.job_name},
            },
        )
        tracker = MlFlow(stock_context)
        try:
            yield tracker
        finally:
            if mlflow.active_run() is not None:
                mlflow.end_run()

    return mlflow_tracking
