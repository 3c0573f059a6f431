"""The one adapter between Airflow and the pipeline's steps.

Each task turns Airflow's context into a `Run` (options, window, ids) once, gathers the outputs of
the steps it needs from XCom through the pipeline definition (never by a literal task id), calls the
step's domain function and returns its output, which Airflow pushes as the task's one XCom value.
A step that ends the run on purpose (`StepSkipped`) or fails (`RetrainError`) has its output
recorded first; a failure that retrying cannot change fails the task at once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from retrain_operators.lineage import ReportsLineage

if TYPE_CHECKING:
    from retrain.contracts import StepOutput
    from retrain.options import AssetEvent, Run
    from retrain.pipeline import Step, StepContext
    from retrain.spec import ModelSpec


def run_from_context(context: Any, spec: ModelSpec) -> Run:
    """The run as the steps see it, from the trigger form, the conf, the triggering asset events, the data
    interval and the trigger time."""
    from retrain.options import resolve_run

    dag_run = context["dag_run"]
    return resolve_run(
        spec,
        run_id=context["run_id"],
        params=dict(context.get("params") or {}),
        conf=getattr(dag_run, "conf", None) or {},
        interval_end=context.get("data_interval_end"),
        run_after=dag_run.run_after,
        run_type=run_type_of(dag_run),
        events=triggering_events(context),
        user=getattr(dag_run, "triggering_user_name", None),
        dag_id=getattr(dag_run, "dag_id", None),
    )


def run_type_of(dag_run: Any) -> str:
    """The run type as Airflow spells it ("scheduled", "asset_triggered", ...).

    The Task SDK's DagRunType is a (str, Enum): `str()` of it gives "DagRunType.ASSET_TRIGGERED", so take its value.
    """
    run_type = getattr(dag_run, "run_type", None) or "manual"
    return str(getattr(run_type, "value", run_type))


def triggering_events(context: Any) -> list[AssetEvent]:
    """The asset events that triggered this run, as plain values (none for a scheduled or manual run)."""
    from retrain.options import AssetEvent

    found = []
    events = context.get("triggering_asset_events") or {}
    for asset in events:
        for event in events[asset]:
            extra = getattr(event, "extra", None)
            stamp = getattr(event, "timestamp", None)
            found.append(
                AssetEvent(
                    asset=getattr(asset, "name", str(asset)),
                    extra=dict(extra) if isinstance(extra, dict) else {},
                    timestamp=None if stamp is None else str(stamp),
                )
            )
    return found


def upstream_outputs(context: Any, spec: ModelSpec, step: Step) -> dict[type[StepOutput], StepOutput | None]:
    """The output of every step this one needs, read from its XCom (None when that task pushed nothing)."""
    from retrain.pipeline import pipeline_of, producer

    ti = context["ti"]
    chain = pipeline_of(step)
    pulled = {kind: ti.xcom_pull(task_ids=producer(kind, spec, chain).task_id) for kind in step.needs}
    return {kind: None if value is None else kind.from_xcom(value) for kind, value in pulled.items()}


def step_context(context: Any, spec: ModelSpec, step: Step, log: Any) -> StepContext:
    from retrain.pipeline import StepContext
    from retrain_operators.hooks import MlflowHook, sql_engine

    return StepContext(
        spec=spec,
        run=run_from_context(context, spec),
        inputs=upstream_outputs(context, spec, step),
        registry_factory=lambda: MlflowHook().get_conn(),
        log=log,
        engines=sql_engine,
    )


def run_step(context: Any, work: Callable[[], StepOutput]) -> dict[str, Any]:
    """Runs a step and returns its output for XCom, translating its verdicts into Airflow's."""
    from airflow.sdk.exceptions import AirflowSkipException

    from retrain.errors import RetrainError, StepSkipped

    try:
        return work().to_xcom()
    except StepSkipped as skipped:
        _record(context, skipped.output)
        raise AirflowSkipException(str(skipped)) from skipped
    except RetrainError as error:
        _record(context, error.output)
        if not error.retryable:
            raise without_retry(error) from error
        raise


def without_retry(error: Exception) -> Exception:
    """A failure that retrying cannot change (a verdict on the data, a refused rule): fail the task now."""
    from airflow.sdk.exceptions import AirflowFailException

    return AirflowFailException(f"{type(error).__name__}: {error}")


def _record(context: Any, output: StepOutput | None) -> None:
    if output is not None:
        context["ti"].xcom_push(key="return_value", value=output.to_xcom())


class RetrainOperator(BaseOperator):
    """What every retraining task shares: the model spec it works for and the pipeline step it runs.

    No field is templated: everything a run varies by comes from the trigger form, parsed into `Run`.
    """

    template_fields: Sequence[str] = ()

    def __init__(self, *, spec: ModelSpec, step: Step, **kwargs: Any) -> None:
        kwargs.setdefault("task_id", step.task_id)
        super().__init__(**kwargs)
        self.spec = spec
        self.step = step


class StepOperator(ReportsLineage, RetrainOperator):
    """Runs one pipeline step's domain function (retrain.steps.*); a step that emits an asset event gives the
    event its output's payload."""

    ui_color = "#d9ead3"

    def execute(self, context: Any) -> dict[str, Any]:
        # The run is resolved (and the form's values checked) inside run_step: a refused value fails at once.
        def step() -> StepOutput:
            ctx = step_context(context, self.spec, self.step, self.log)
            self.keep_lineage(ctx.run, ctx.inputs)
            return self.with_event_payload(context, self.step.function()(ctx))

        result = run_step(context, step)
        self.keep_result(result)
        return result

    def with_event_payload(self, context: Any, output: StepOutput) -> StepOutput:
        """Sets the payload of the event each outlet Asset gets when the task succeeds: `output.event_extra()`."""
        payload = getattr(output, "event_extra", None)
        if payload is not None and self.outlets:
            extra = payload()
            for outlet in self.outlets:
                context["outlet_events"][outlet].extra = extra
        return output
