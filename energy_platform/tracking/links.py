"""Monitoring reports as MLflow artifacts, and http links into the MLflow UI.

A `file://` link in the Dagster UI opens nothing in a browser (and nothing at all on another
host), so each Evidently HTML report is also logged as an artifact of a small MLflow run in the
`day_ahead_price_forecaster_monitoring` experiment (one run per check evaluation, tagged with the
check, its severity and the Dagster run), and the check's metadata links to it in the MLflow UI.
With a tracking server the artifact lands in its `--artifacts-destination` and is served over
HTTP; with the local SQLite backend it lands in the home's `mlartifacts/` and `mlflow ui` shows it.

The UI's routes (MLflow 3.17's `server/js` router): `#/experiments/<id>/runs` (an experiment's
runs), `#/runs/<run id>` (a run, redirected to its experiment), and
`#/experiments/<id>/runs/<run id>/artifactPath/<path>` (the artifact viewer on one file, which
renders HTML). The base URL is `Settings.mlflow_ui_url`: `ENERGY_PLATFORM_MLFLOW_UI_URL`, else
an http(s) tracking URI itself, else `http://127.0.0.1:5000` (`mlflow ui`'s default).
Plain Python: no Dagster import.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from mlflow import MlflowClient

from energy_platform.errors import one_line

MONITORING_EXPERIMENT = "day_ahead_price_forecaster_monitoring"
REPORT_DIR = "drift_report"


def dagster_run_url(dagster_ui_url: str, run_id: str) -> str:
    """A Dagster run's page in the Dagster UI (`/runs/<run id>`)."""
    return f"{dagster_ui_url.rstrip('/')}/runs/{run_id}"


def experiment_runs_url(ui_url: str, experiment_id: str) -> str:
    return f"{ui_url.rstrip('/')}/#/experiments/{experiment_id}/runs"


def run_url(ui_url: str, run_id: str, experiment_id: str | None = None) -> str:
    base = ui_url.rstrip("/")
    return f"{base}/#/experiments/{experiment_id}/runs/{run_id}" if experiment_id else f"{base}/#/runs/{run_id}"


def artifact_url(ui_url: str, experiment_id: str, run_id: str, path: str) -> str:
    return f"{run_url(ui_url, run_id, experiment_id)}/artifactPath/{quote(path)}"


@dataclass(frozen=True)
class ReportLink:
    run_id: str
    experiment_id: str
    artifact_path: str
    url: str  # the report in the MLflow UI's artifact viewer
    runs_url: str  # every monitoring run, newest first


def _experiment(client: MlflowClient, artifact_root: str | Path | None) -> str:
    found = client.get_experiment_by_name(MONITORING_EXPERIMENT)
    if found:
        return found.experiment_id
    # No location for a tracking server (its artifact store is used), the home's otherwise.
    location = Path(artifact_root).resolve().as_uri() if artifact_root else None
    try:
        return client.create_experiment(MONITORING_EXPERIMENT, artifact_location=location)
    except Exception:  # created meanwhile by a concurrent check
        found = client.get_experiment_by_name(MONITORING_EXPERIMENT)
        if found is None:
            raise
        return found.experiment_id


def log_report(
    tracking_uri: str,
    artifact_root: str | Path | None,
    ui_url: str,
    report: str | Path,
    *,
    run_name: str,
    tags: dict[str, str],
    metrics: dict[str, float] | None = None,
) -> ReportLink:
    """Log `report` (an HTML file) as the artifact of a new, finished run; return its UI links.

    Uses the client API only: it never touches the fluent active run (a training's, in-process).
    """
    client = MlflowClient(tracking_uri=tracking_uri)
    experiment_id = _experiment(client, artifact_root)
    run = client.create_run(experiment_id, run_name=run_name, tags={k: str(v) for k, v in tags.items() if v is not None})
    run_id = run.info.run_id
    try:
        for key, value in (metrics or {}).items():
            if value is not None:
                client.log_metric(run_id, key, float(value))
        client.log_artifact(run_id, str(report), artifact_path=REPORT_DIR)
    except BaseException:
        client.set_terminated(run_id, status="FAILED")
        raise
    client.set_terminated(run_id, status="FINISHED")
    path = f"{REPORT_DIR}/{Path(report).name}"
    return ReportLink(run_id, experiment_id, path, artifact_url(ui_url, experiment_id, run_id, path),
                      experiment_runs_url(ui_url, experiment_id))


def prune_report_runs(tracking_uri: str, keep_days: float, *, now_ms: int | None = None, limit: int = 200) -> int:
    """Delete the monitoring runs (and their report artifacts) started more than `keep_days` ago,
    keeping the newest run of each check; at most `limit` per call, so the first prune of a long
    history does not hold one check up. Returns the runs deleted (see monitoring/retention.py)."""
    import time

    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    client = MlflowClient(tracking_uri=tracking_uri)
    experiment = client.get_experiment_by_name(MONITORING_EXPERIMENT)
    if experiment is None:
        return 0
    cutoff = (int(time.time() * 1000) if now_ms is None else now_ms) - int(keep_days * 86_400_000)
    old = client.search_runs([experiment.experiment_id], f"attributes.start_time < {cutoff}",
                             order_by=["attributes.start_time DESC"], max_results=limit)
    newest: dict[str, str | None] = {}
    deleted = 0
    for run in old:
        check = run.data.tags.get("check", "")
        if check not in newest:  # the check's newest run of all, however old
            latest = client.search_runs([experiment.experiment_id], f"tags.check = '{check}'",
                                        order_by=["attributes.start_time DESC"], max_results=1)
            newest[check] = latest[0].info.run_id if latest else None
        if run.info.run_id == newest[check]:
            continue
        get_artifact_repository(run.info.artifact_uri, tracking_uri=tracking_uri).delete_artifacts()
        client.delete_run(run.info.run_id)
        deleted += 1
    return deleted


def try_log_report(*args, **kwargs) -> tuple[ReportLink | None, str | None]:
    """`log_report`, whose failure is reported, not raised: the drift result matters more than its link."""
    try:
        return log_report(*args, **kwargs), None
    except Exception as exc:  # MLflow wraps backend and HTTP errors in several types
        return None, f"could not log the report to MLflow: {type(exc).__name__}: {one_line(exc)[:300]}"
