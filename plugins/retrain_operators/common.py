"""What every retraining operator needs from Airflow's context."""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from retrain.spec import ModelSpec
    from retrain.window import Window

MLFLOW_CONN_ID = "mlflow_default"


def window_end(context: Any) -> dt.datetime:
    """The end of the run's data window.

    A manual run takes it from the trigger form (param `end_date`); a scheduled run from its data
    interval; a manual run without either (in Airflow 3 it may have no logical date) from its
    trigger time.
    """
    params = context.get("params") or {}
    conf = getattr(context.get("dag_run"), "conf", None) or {}
    chosen = params.get("end_date") or conf.get("end_date")
    if chosen:
        try:
            return dt.datetime.fromisoformat(str(chosen))
        except ValueError:
            raise ValueError(f"param 'end_date': {chosen!r} is not an ISO date (YYYY-MM-DD)") from None
    interval_end = context.get("data_interval_end")
    if interval_end is not None:
        return interval_end
    return context["dag_run"].run_after


def resolve_window(context: Any, spec: ModelSpec) -> Window:
    from retrain.window import Window

    return Window.ending(window_end(context), spec.data)


def run_slug(run_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", run_id)[:200]


def report_dir(context: Any, spec: ModelSpec) -> Path:
    """Run-partitioned folder for this run's reports: <artifacts>/<model>/reports/end_date=.../<run>/."""
    from retrain.settings import model_artifacts_dir

    window = resolve_window(context, spec)
    return model_artifacts_dir(spec.name) / "reports" / window.partition / run_slug(context["run_id"])


def features_dir(context: Any, spec: ModelSpec) -> Path:
    from retrain.settings import model_artifacts_dir

    return model_artifacts_dir(spec.name) / "features" / resolve_window(context, spec).partition


def without_retry(error: Exception) -> Exception:
    """A failure that retrying cannot change (a verdict on the data, a refused rule): fail the task now."""
    from airflow.sdk.exceptions import AirflowFailException

    return AirflowFailException(f"{type(error).__name__}: {error}")


def params(context: Any) -> dict[str, Any]:
    return dict(context.get("params") or {})


def tracking_uri() -> str | None:
    """MLFLOW_TRACKING_URI wins; otherwise the Airflow connection `mlflow_default` (its host URL).

    Credentials, if any, stay in the connection (login/password) and are exported only to the
    training process, never written to a spec or a log.
    """
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    from airflow.sdk import BaseHook

    try:
        conn = BaseHook.get_connection(MLFLOW_CONN_ID)
    except Exception:  # noqa: BLE001 - no connection configured: MLflow's own default applies
        return None
    if conn.login:
        os.environ.setdefault("MLFLOW_TRACKING_USERNAME", conn.login)
    if conn.password:
        os.environ.setdefault("MLFLOW_TRACKING_PASSWORD", conn.password)
    uri = conn.host or ""
    if "://" not in uri:
        uri = f"{conn.schema or 'http'}://{uri}" + (f":{conn.port}" if conn.port else "")
    os.environ["MLFLOW_TRACKING_URI"] = uri
    return uri


def training_invocation_for(context: Any, spec: ModelSpec, task_id: str, result_path: str):
    """The training command of this run: the same for the local process and the Kubernetes pod."""
    from retrain.invocation import AirflowIds, training_invocation

    overrides = params(context).get("estimator_params") or {}
    if not isinstance(overrides, dict):
        raise ValueError(f"param 'estimator_params' must be a JSON object, got {overrides!r}")
    return training_invocation(
        spec,
        features_dir=str(features_dir(context, spec)),
        window_end=resolve_window(context, spec).end_date.isoformat(),
        ids=AirflowIds(dag_id=spec.dag_id, run_id=context["run_id"], task_id=task_id),
        params_override=overrides,
        result_path=result_path,
    )
