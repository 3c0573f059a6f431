"""Builds the retraining DAG of one model spec, and a visible placeholder for a spec that is broken.

Parse-time cost matters (every DAG file is parsed every few seconds): this module imports only
Airflow's SDK and the spec schema; operators import their heavy dependencies inside `execute`.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import TYPE_CHECKING

from airflow.sdk import DAG, Asset, BaseOperator, Param, chain

from retrain_operators.notify import failure_notifiers

if TYPE_CHECKING:
    from retrain.spec import ModelSpec

TRAINING_POOL = "retrain_training"
PROMOTION_POOL = "retrain_promotion"
BASE_TAGS = ("retrain",)


def model_asset(model_name: str) -> Asset:
    """The Asset a promotion emits: downstream DAGs (scoring, deployment) schedule on it."""
    return Asset(name=f"model_{model_name}", uri=f"mlflow://models/{model_name}", group="ml-model")


# Airflow checks every Param's schema against its dialect's meta-schema when a scheduled DAG is built,
# once per DAG in the file. The form uses nothing newer than draft 7, whose meta-schema is checked in
# 40% of the time of the default (2020-12): a third less for the file's Params (benchmarks/README.md).
SCHEMA_DIALECT = "http://json-schema.org/draft-07/schema#"


def _param(default, title: str, description: str, **schema) -> Param:
    return Param(default, description=description, schema={"$schema": SCHEMA_DIALECT, "title": title, **schema})


def trigger_params(spec: ModelSpec) -> dict[str, Param]:
    return {
        "end_date": _param(
            None,
            "Window end date",
            f"Last day (exclusive) of the data window; the window is the {spec.data.lookback_days} days before it"
            f" and its last {spec.data.holdout_days} days are the holdout. Empty: the run's data interval end,"
            " or the trigger time for a manual run.",
            type=["null", "string"],
            format="date",
        ),
        "force": _param(
            False,
            "Retrain without drift",
            "Train even when the drift policy (retrain: on_drift) finds no drift.",
            type="boolean",
        ),
        "force_promote": _param(
            False,
            "Force promotion",
            "Promote the new model even if it does not beat the champion. The score floor and the baseline"
            " check still apply; the promotion is recorded as forced.",
            type="boolean",
        ),
        "dry_run": _param(
            False,
            "Dry run",
            "Train and evaluate, record the decision, but never move the champion alias.",
            type="boolean",
        ),
        "estimator_params": _param(
            {},
            "Estimator parameter overrides",
            f'JSON object merged over the spec\'s model.params for {spec.model.estimator}, e.g. {{"max_iter": 300}}.',
            type="object",
        ),
    }


def _doc(spec: ModelSpec, spec_path: Path) -> str:
    return f"""
### Retrain `{spec.name}`

{spec.description or ""}

Spec: `{spec_path}` · task: {spec.task} · estimator: `{spec.model.estimator}` · metric: `{spec.evaluation.metric}`

`validate_data` (Great Expectations) → `check_drift` (PSI + KS / chi-square vs the champion's training data)
→ `build_features` (Parquet partition per end date) → `train` (MLflow run + new model version)
→ `evaluate` (champion vs challenger on the same holdout, policy decision) → `promote` (alias `champion`).

A failed gate stops the run and leaves the champion untouched. `promote` is skipped when the policy declines.
Roll back with the `retrain_rollback` DAG.
"""


def _train_operator(spec: ModelSpec, backend: str, **kwargs) -> BaseOperator:
    if backend == "kubernetes":
        from retrain_operators.kubernetes import KubernetesTrainOperator

        return KubernetesTrainOperator(spec=spec, **kwargs)
    from retrain_operators.train import LocalTrainOperator

    return LocalTrainOperator(spec=spec, **kwargs)


def build_retrain_dag(spec: ModelSpec, spec_path: Path, backend: str = "local") -> DAG:
    from retrain_operators.drift import CheckDriftOperator
    from retrain_operators.evaluate import EvaluateModelOperator
    from retrain_operators.features import BuildFeaturesOperator
    from retrain_operators.promote import PromoteModelOperator
    from retrain_operators.validate import ValidateDataOperator

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
        validate = ValidateDataOperator(task_id="validate_data", spec=spec)
        drift = CheckDriftOperator(task_id="check_drift", spec=spec)
        features = BuildFeaturesOperator(task_id="build_features", spec=spec)
        train = _train_operator(
            spec,
            backend,
            task_id="train",
            pool=TRAINING_POOL,
            # The job enforces training.timeout_minutes itself and reports its last log lines; this is the backstop.
            execution_timeout=dt.timedelta(minutes=spec.training.timeout_minutes + 10),
        )
        evaluate = EvaluateModelOperator(task_id="evaluate", spec=spec)
        promote = PromoteModelOperator(
            task_id="promote", spec=spec, pool=PROMOTION_POOL, outlets=[model_asset(spec.name)]
        )
        chain(validate, drift, features, train, evaluate, promote)
    return dag


class SpecErrorOperator(BaseOperator):
    """Fails with the spec's validation message, so a broken spec is visible in the UI, not silent."""

    def __init__(self, *, message: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.message = message

    def execute(self, context) -> None:
        from retrain.errors import SpecError

        raise SpecError(self.message)


def build_invalid_spec_dag(spec_path: Path, error: Exception) -> DAG:
    """A manual-only DAG named after the broken file: its docs and its one task show the error."""
    dag_id = "retrain_" + re.sub(r"[^a-z0-9_]+", "_", spec_path.stem.lower())
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
