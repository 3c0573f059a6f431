"""Builds the DAGs of one model spec from the pipeline definitions (retraining; scoring and monitoring when
the spec has those sections), and a visible placeholder for a spec that is broken.

Parse-time cost matters (every DAG file is parsed every few seconds): this module imports only
Airflow's SDK, the spec schema and the pipeline definition; tasks import their heavy dependencies
when they run.
"""

from __future__ import annotations

import datetime as dt
import functools
import operator
import re
from collections.abc import Collection, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import DAG, Asset, AssetOrTimeSchedule, BaseOperator, CronTriggerTimetable, Param, chain

from retrain import assets, markdown, pipeline
from retrain.errors import SpecError
from retrain.options import DAY_FORM, RETRAIN_FORM, SCHEMA_DIALECT, form_fields
from retrain.spec import dag_id_of_file
from retrain_operators.notify import failure_notifiers, promotion_notifiers

if TYPE_CHECKING:
    from retrain.pipeline import Step
    from retrain.spec import ModelSpec

BASE_TAGS = ("retrain",)
# A placeholder DAG's docs show this much error text.
MAX_ERROR_CHARS = 20_000
TRAINING_GRACE = dt.timedelta(minutes=5)


def model_asset(model_name: str) -> Asset:
    """The Asset a promotion emits: downstream DAGs (scoring, deployment) schedule on it."""
    return Asset(name=assets.model_asset(model_name), uri=f"mlflow://models/{model_name}", group="ml-model")


def request_asset(model_name: str) -> Asset:
    """The Asset the monitor updates to ask for a retraining."""
    return Asset(name=assets.request_asset(model_name), group="ml-model")


def data_asset(spec: ModelSpec) -> Asset:
    """The Asset for new data of a model; with `schedule.ready_file` an AssetWatcher turns that marker file into
    an event (the triggerer deletes the file it found, so the producer writes it last)."""
    watchers = []
    if spec.schedule.ready_file:
        from airflow.providers.standard.triggers.file import FileDeleteTrigger
        from airflow.sdk import AssetWatcher

        from retrain.settings import resolve_data_uri

        trigger = FileDeleteTrigger(filepath=resolve_data_uri(spec.schedule.ready_file), poke_interval=5.0)
        watchers.append(AssetWatcher(name=f"{spec.name}_ready_file", trigger=trigger))
    return Asset(name=assets.data_asset(spec.name), group="ml-data", watchers=watchers)


def event_schedule(cron: str | None, on: list[Asset]):
    """A cron, events on any of `on`, or both (`AssetOrTimeSchedule`); None when neither (manual only)."""
    if not on:
        return cron
    condition = functools.reduce(operator.or_, on)
    if cron is None:
        return condition
    return AssetOrTimeSchedule(timetable=CronTriggerTimetable(cron, timezone="UTC"), assets=condition)


def retrain_schedule(spec: ModelSpec):
    """The spec's cron, plus the asset events it listens to (`schedule.events`); default: the cron only."""
    on = [data_asset(spec) if event == "data" else request_asset(spec.name) for event in spec.schedule.events]
    return event_schedule(spec.schedule.cron, on)


def trigger_params(spec: ModelSpec, form: str = RETRAIN_FORM) -> dict[str, Param]:
    """The trigger form: one Param per field of `retrain.options.RunOptions` on this form, described for this spec."""
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
        for f in form_fields(form)
    }


DOC_ENDINGS = {
    "retrain": "A failed gate stops the run and leaves the champion untouched. `promote` is skipped when the policy"
    " declines. Roll back with the `retrain_rollback` DAG.",
    "score": "Runs on its cron and on every promotion (the model's Asset). No champion yet: the run ends skipped.",
    "monitor": "A quiet day, or one without enough labels, emits nothing; a tripped policy emits one event on the"
    " request Asset, which the retraining DAG may listen to (`schedule.events`).",
}


def _doc(spec: ModelSpec, spec_path: Path, chain: str = "retrain") -> str:
    title = {"retrain": "Retrain", "score": "Score with the champion of", "monitor": "Monitor"}[chain]
    return f"""
### {title} `{spec.name}`

{markdown.text(spec.description)}

Spec: {markdown.code_span(str(spec_path))} · task: {spec.task} · estimator: `{spec.model.estimator}` · metric: `{spec.evaluation.metric}`

{pipeline.chain_markdown(spec, chain)}

{DOC_ENDINGS[chain]}
"""


def _task(spec: ModelSpec, step: Step, backend: str) -> BaseOperator:
    kwargs: dict[str, Any] = {}
    if step.pool:
        kwargs["pool"] = step.pool
    if step.emits == "model":
        kwargs["outlets"] = [model_asset(spec.name)]
        kwargs["on_success_callback"] = promotion_notifiers()
    elif step.emits == "request":
        kwargs["outlets"] = [request_asset(spec.name)]
    if step.kind == "train":
        kwargs["execution_timeout"] = training_execution_timeout(spec, backend)
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


def training_execution_timeout(spec: ModelSpec, backend: str) -> dt.timedelta:
    """Airflow's backstop for the train task. `training.timeout_minutes` bounds the training itself on both
    backends (the local operator kills its job; Kubernetes stops the pod, activeDeadlineSeconds); the task
    may take that, plus for a pod its startup allowance, plus TRAINING_GRACE to collect the last log lines."""
    timeout = dt.timedelta(minutes=spec.training.timeout_minutes) + TRAINING_GRACE
    if backend == "kubernetes":
        timeout += dt.timedelta(seconds=spec.training.startup_timeout_seconds)
    return timeout


def _pipeline_dag(spec: ModelSpec, spec_path: Path, chain_name: str, *, schedule: Any, description: str,
                  tags: list[str], form: str, backend: str = "local") -> DAG:  # fmt: skip
    """One DAG of a spec: one task per step of the pipeline `chain_name`, in order; one run at a time."""
    settings = spec.schedule
    default_args = {
        "owner": settings.owner,
        "retries": settings.retries,
        "retry_delay": dt.timedelta(minutes=settings.retry_delay_minutes),
        "retry_exponential_backoff": True,
        "execution_timeout": dt.timedelta(hours=2),
        "on_failure_callback": failure_notifiers(),
    }
    with DAG(
        dag_id=pipeline.dag_id_of(spec.name, chain_name),
        description=description,
        schedule=schedule,
        start_date=dt.datetime.combine(settings.start_date, dt.time(), tzinfo=dt.UTC),
        catchup=False,
        max_active_runs=1,
        tags=sorted({*BASE_TAGS, f"model:{spec.name}", *tags, *settings.tags}),
        doc_md=_doc(spec, spec_path, chain_name),
        params=trigger_params(spec, form),
        default_args=default_args,
        # Only the DAG this returns is published: one whose build fails halfway must not be picked up.
        auto_register=False,
    ) as dag:
        chain(*[_task(spec, step, backend) for step in pipeline.steps(spec, chain_name)])
    return dag


def build_retrain_dag(spec: ModelSpec, spec_path: Path, backend: str = "local") -> DAG:
    """The retraining DAG of one spec, on its cron and the asset events it listens to (`schedule.events`)."""
    return _pipeline_dag(
        spec, spec_path, "retrain", schedule=retrain_schedule(spec), form=RETRAIN_FORM, backend=backend,
        description=f"Validate, check drift, build features, train, evaluate and promote {spec.name}",
        tags=[f"backend:{backend}"],
    )  # fmt: skip


def build_score_dag(spec: ModelSpec, spec_path: Path) -> DAG:
    """The scoring DAG: on `scoring.cron` and on every promotion (the model's Asset)."""
    assert spec.scoring is not None
    return _pipeline_dag(
        spec, spec_path, "score", schedule=event_schedule(spec.scoring.cron, [model_asset(spec.name)]), form=DAY_FORM,
        description=f"Score a day's rows with the champion of {spec.name}", tags=["scoring"],
    )  # fmt: skip


def build_monitor_dag(spec: ModelSpec, spec_path: Path) -> DAG:
    """The monitoring DAG: on `monitoring.cron`; it emits on the request Asset when its policy trips."""
    assert spec.monitoring is not None
    return _pipeline_dag(
        spec, spec_path, "monitor", schedule=spec.monitoring.cron, form=DAY_FORM,
        description=f"Join late labels, measure live quality and input drift of {spec.name}; ask for retraining",
        tags=["monitoring"],
    )  # fmt: skip


def build_spec_dags(spec: ModelSpec, spec_path: Path, backend: str = "local") -> list[DAG]:
    """Every DAG of one spec: retraining, and scoring and monitoring when the spec has those sections."""
    dags = [build_retrain_dag(spec, spec_path, backend)]
    if spec.scoring is not None:
        dags.append(build_score_dag(spec, spec_path))
    if spec.monitoring is not None:
        dags.append(build_monitor_dag(spec, spec_path))
    return dags


class SpecErrorOperator(BaseOperator):
    """Fails with the spec's validation message, so a broken spec is visible in the UI, not silent."""

    def __init__(self, *, message: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.message = message

    def execute(self, context) -> None:
        from retrain.errors import SpecError

        raise SpecError(self.message)


def _claims(spec_path: Path, dag_id: str) -> bool:
    """Whether `dag_id` may be one of the file's DAGs (retrain_, score_ or monitor_ of its name)."""
    slug = dag_id_of_file(spec_path).removeprefix("retrain_")
    return dag_id in {pipeline.dag_id_of(slug, chain) for chain in pipeline.PIPELINES}


def build_model_dags(
    spec_paths: Iterable[Path], backend: str = "local", only: str | None = None,
    known_users: Collection[str] | None = None,
) -> dict[str, DAG]:  # fmt: skip
    """Every spec file's DAGs (build_spec_dags), by DAG id. One bad file never takes the others down: a file that cannot be
    loaded, or whose DAG cannot be built, becomes its own `invalid-spec` placeholder; a DAG id claimed by
    several files (`churn.yaml` and `churn.yml`, names that normalise alike) becomes one placeholder that
    names them all, never a silent or random winner.

    `only`: the one DAG id wanted (a task process's, from Airflow's parsing context): only the files that
    can claim it are read, so a task does not load every spec of the fleet to find its own.
    `known_users`: the user ids an approval may name (None: not checked).
    """
    claims: dict[str, list[tuple[Path, ModelSpec | SpecError]]] = {}
    for path in spec_paths:
        if only is not None and not _claims(path, only):
            continue
        outcome = _load(path, known_users)
        dag_id = outcome.dag_id if not isinstance(outcome, SpecError) else dag_id_of_file(path)
        claims.setdefault(dag_id, []).append((path, outcome))
    dags: dict[str, DAG] = {}
    for dag_id, claimants in sorted(claims.items()):
        if len(claimants) > 1:
            dags[dag_id] = build_invalid_spec_dag(claimants[0][0], _conflict(dag_id, claimants), dag_id=dag_id)
            continue
        path, outcome = claimants[0]
        if not isinstance(outcome, SpecError):
            try:
                dags.update((dag.dag_id, dag) for dag in build_spec_dags(outcome, path, backend=backend))
                continue
            except Exception as error:  # noqa: BLE001 - one file must never take the other models' DAGs down
                outcome = SpecError(f"{path}: the spec parses but its DAG cannot be built: {type(error).__name__}: {error}")
        dags[dag_id] = build_invalid_spec_dag(path, outcome, dag_id=dag_id)
    return dags


def _load(path: Path, known_users: Collection[str] | None) -> ModelSpec | SpecError:
    from retrain.spec import load_spec

    try:
        return load_spec(path, known_users=known_users)
    except SpecError as error:
        return error
    except Exception as error:  # noqa: BLE001 - one file must never take the other models' DAGs down
        return SpecError(f"{path}: cannot load model spec: {type(error).__name__}")


def _conflict(dag_id: str, claimants: list[tuple[Path, ModelSpec | SpecError]]) -> SpecError:
    lines = [
        f"{len(claimants)} spec files claim the DAG id {dag_id}; none is used until only one does"
        " (rename or remove the others):"
    ]
    for path, outcome in claimants:
        lines.append(f"  - {path}: " + ("a valid spec" if not isinstance(outcome, SpecError) else str(outcome)))
    return SpecError("\n".join(lines))


def build_invalid_spec_dag(spec_path: Path, error: Exception, dag_id: str | None = None) -> DAG:
    """A manual-only DAG named after the broken file: its docs and its one task show the error (as text in a
    code block it cannot break out of)."""
    message = str(error)
    if len(message) > MAX_ERROR_CHARS:
        message = message[:MAX_ERROR_CHARS] + f"... ({len(message) - MAX_ERROR_CHARS} more characters)"
    with DAG(
        dag_id=dag_id or dag_id_of_file(spec_path),
        description=f"INVALID SPEC {printable(spec_path.name)[:200]}: fix the file to get the retraining DAG back",
        schedule=None,
        start_date=dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
        catchup=False,
        tags=["retrain", "invalid-spec"],
        doc_md=f"### Invalid model spec\n\n{markdown.code_block(message)}\n",
        default_args={"owner": "ml-platform", "retries": 0},
        auto_register=False,
    ) as dag:
        SpecErrorOperator(task_id="spec_error", message=message)
    return dag


def printable(value: str) -> str:
    """`value` without control characters (a file name may hold newlines)."""
    return re.sub(r"[\x00-\x1f\x7f]", "?", value)
