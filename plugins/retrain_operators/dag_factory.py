"""Builds the retraining DAG of one model spec from the pipeline definition, and a visible placeholder
for a spec that is broken.

Parse-time cost matters (every DAG file is parsed every few seconds): this module imports only
Airflow's SDK, the spec schema and the pipeline definition; tasks import their heavy dependencies
when they run.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import DAG, Asset, BaseOperator, Param, chain

from retrain import assets, pipeline
from retrain.options import SCHEMA_DIALECT, form_fields
from retrain_operators.notify import failure_notifiers, promotion_notifiers

if TYPE_CHECKING:
    from retrain.pipeline import Step
    from retrain.spec import ModelSpec

BASE_TAGS = ("retrain",)


def model_asset(model_name: str) -> Asset:
    """The Asset a promotion emits: downstream DAGs (scoring, deployment) schedule on it."""
    return Asset(name=assets.model_asset(model_name), uri=f"mlflow://models/{model_name}", group="ml-model")


def trigger_params(spec: ModelSpec) -> dict[str, Param]:
    """The trigger form: one Param per field of `retrain.options.RunOptions`, described for this spec."""
    values = {
        "lookback_days": spec.data.lookback_days,
        "holdout_days": spec.data.holdout_days,
        "estimator": spec.model.estimator,
    }
    return {
        f.name: Param(
            f.metadata["form_default"],
            description=f.metadata["description"].format(**values),
            schema={"$schema": SCHEMA_DIALECT, "title": f.metadata["title"], **f.metadata["schema"]},
        )
        for f in form_fields()
    }


def _doc(spec: ModelSpec, spec_path: Path) -> str:
    return f"""
### Retrain `{spec.name}`

{spec.description or ""}

Spec: `{spec_path}` · task: {spec.task} · estimator: `{spec.model.estimator}` · metric: `{spec.evaluation.metric}`

{pipeline.chain_markdown(spec)}

A failed gate stops the run and leaves the champion untouched. `promote` is skipped when the policy declines.
Roll back with the `retrain_rollback` DAG.
"""


def _task(spec: ModelSpec, step: Step, backend: str) -> BaseOperator:
    kwargs: dict[str, Any] = {}
    if step.pool:
        kwargs["pool"] = step.pool
    if step.emits_model:
        kwargs["outlets"] = [model_asset(spec.name)]
        kwargs["on_success_callback"] = promotion_notifiers()
    if step.kind == "train":
        # The job enforces training.timeout_minutes itself and reports its last log lines; this is the backstop.
        kwargs["execution_timeout"] = dt.timedelta(minutes=spec.training.timeout_minutes + 10)
        if backend == "kubernetes":
            from retrain_operators.pod_train import KubernetesTrainOperator

            return KubernetesTrainOperator(spec=spec, step=step, **kwargs)
        from retrain_operators.local_train import LocalTrainOperator

        return LocalTrainOperator(spec=spec, step=step, **kwargs)
    if step.kind == "approval":
        from retrain_operators.approval import PromotionApprovalOperator

        return PromotionApprovalOperator(spec=spec, step=step, **kwargs)
    from retrain_operators.base import StepOperator

    return StepOperator(spec=spec, step=step, **kwargs)


def build_retrain_dag(spec: ModelSpec, spec_path: Path, backend: str = "local") -> DAG:
    """The retraining DAG of one spec: one task per pipeline step, in order, on the spec's schedule."""
    schedule = spec.schedule
    start = dt.datetime.combine(schedule.start_date, dt.time(), tzinfo=dt.UTC)
    default_args = {
        "owner": schedule.owner,
        "retries": schedule.retries,
        "retry_delay": dt.timedelta(minutes=schedule.retry_delay_minutes),
        "retry_exponential_backoff": True,
        "execution_timeout": dt.timedelta(hours=2),
        "on_failure_callback": failure_notifiers(),
    }
    with DAG(
        dag_id=spec.dag_id,
        description=f"Validate, check drift, build features, train, evaluate and promote {spec.name}",
        schedule=schedule.cron,
        start_date=start,
        catchup=False,
        max_active_runs=1,
        tags=sorted({*BASE_TAGS, f"model:{spec.name}", f"backend:{backend}", *schedule.tags}),
        doc_md=_doc(spec, spec_path),
        params=trigger_params(spec),
        default_args=default_args,
    ) as dag:
        chain(*[_task(spec, step, backend) for step in pipeline.steps(spec)])
    return dag


class SpecErrorOperator(BaseOperator):
    """Fails with the spec's validation message, so a broken spec is visible in the UI, not silent."""

    def __init__(self, *, message: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.message = message

    def execute(self, context) -> None:
        from retrain.errors import SpecError

        raise SpecError(self.message)


def dag_id_of_file(spec_path: Path) -> str:
    """The DAG id a spec file gives, without reading it: a valid spec's name is its file name (checked when it
    loads), and a broken one's placeholder DAG is named after the file the same way."""
    return "retrain_" + re.sub(r"[^a-z0-9_]+", "_", spec_path.stem.lower())


def build_invalid_spec_dag(spec_path: Path, error: Exception) -> DAG:
    """A manual-only DAG named after the broken file: its docs and its one task show the error."""
    dag_id = dag_id_of_file(spec_path)
    with DAG(
        dag_id=dag_id,
        description=f"INVALID SPEC {spec_path.name}: fix the file to get the retraining DAG back",
        schedule=None,
        start_date=dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
        catchup=False,
        tags=["retrain", "invalid-spec"],
        doc_md=f"### Invalid model spec\n\n```\n{error}\n```\n",
        default_args={"owner": "ml-platform", "retries": 0},
    ) as dag:
        SpecErrorOperator(task_id="spec_error", message=str(error))
    return dag
