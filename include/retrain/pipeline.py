"""The retraining pipeline, defined once: its steps in order, what each consumes and produces.

The DAG factory builds one task per step from this list, the DAG's docs and the README's chain are
written from it, the demo report and the tests read it. A step's work is a domain function
`run(ctx: StepContext) -> <its output>` named by `module:function` (imported only when the task
runs, so parsing stays cheap). Adding a gate is one module with that function and one entry here.

Cheap to import: no pandas, scikit-learn, MLflow or Great Expectations at module level.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from retrain.contracts import (
    ChampionResult,
    DriftResult,
    EvaluationResult,
    FeaturesResult,
    InputDriftResult,
    LiveMetricsResult,
    MonitoringReportResult,
    PredictionResult,
    PromotionResult,
    RetrainRequestResult,
    ReviewResult,
    StepOutput,
    TrainingResult,
    ValidationResult,
)
from retrain.options import Run
from retrain.settings import features_dir, report_dir

if TYPE_CHECKING:
    from retrain.registry import Registry
    from retrain.sources import DataSource
    from retrain.spec import ModelSpec

TRAINING_POOL = "retrain_training"
PROMOTION_POOL = "retrain_promotion"

Output = TypeVar("Output", bound=StepOutput)
Dataset = Literal["data", "scoring.input", "monitoring.labels", "scoring.output", "predictions"]


@dataclass(frozen=True)
class Step:
    """One task of the retraining DAG.

    kind: "step" runs `run` in the generic step operator; "train" is the training job (a local process
    or a pod, chosen by the deployment); "approval" asks a person (Airflow's ApprovalOperator), `run`
    being the domain function that prepares the request. pool: the Airflow pool the task runs in.
    emits: the Asset the task updates when it succeeds ("model": a promotion; "request": the monitor asks
    for retraining), with its output's `event_extra()` as the event's payload; a task that ends skipped
    emits nothing. reads, writes: the datasets the task reads and writes itself besides the outputs it passes
    on (its lineage): the spec's `data`, `scoring.input`, `monitoring.labels` and `scoring.output`, and the
    model's `predictions` partitions.
    """

    task_id: str
    summary: str
    output: type[StepOutput]
    run: str | None = None
    needs: tuple[type[StepOutput], ...] = ()
    kind: Literal["step", "train", "approval"] = "step"
    pool: str | None = None
    emits: Literal["model", "request"] | None = None
    reads: tuple[Dataset, ...] = ()
    writes: tuple[Dataset, ...] = ()

    def function(self) -> Callable[[StepContext], StepOutput]:
        """The domain function that does this step's work."""
        module, _, name = (self.run or "").partition(":")
        return getattr(importlib.import_module(module), name)


RETRAIN: tuple[Step, ...] = (
    Step(
        "validate_data",
        "Great Expectations on the data window; a failed expectation stops the run with a report",
        ValidationResult,
        run="retrain.steps.validate:run",
        reads=("data",),
    ),
    Step(
        "check_drift",
        "PSI and KS / chi-square against the champion's training data; `retrain: on_drift` skips a quiet night",
        DriftResult,
        run="retrain.steps.drift:run",
        reads=("data",),
    ),
    Step(
        "build_features",
        "the window's training and holdout sets as a Parquet partition per end date, atomically",
        FeaturesResult,
        run="retrain.steps.features:run",
        reads=("data",),
    ),
    Step(
        "train",
        "the training job (a Kubernetes pod or a local process): an MLflow run and a new model version",
        TrainingResult,
        needs=(FeaturesResult,),
        kind="train",
        pool=TRAINING_POOL,
    ),
    Step(
        "evaluate",
        "champion and challenger on the same holdout; the promotion policy decides, the version records why",
        EvaluationResult,
        run="retrain.steps.evaluate:run",
        needs=(ValidationResult, DriftResult, FeaturesResult, TrainingResult),
    ),
    Step(
        "promote",
        "moves the alias `champion` (and `previous`) when the policy said so; skipped otherwise",
        PromotionResult,
        run="retrain.steps.promote:run",
        needs=(EvaluationResult,),
        pool=PROMOTION_POOL,
        emits="model",
    ),
)

# score_<name>: the champion scores the rows of one day (scheduled on its cron and on every promotion).
SCORE: tuple[Step, ...] = (
    Step(
        "resolve_champion",
        "the alias `champion` resolved to a version once; every later step uses that version. No champion: skipped",
        ChampionResult,
        run="retrain.steps.champion:run",
    ),
    Step(
        "validate_rows",
        "the day's rows to score through the feature part of the suite (no target) and the key rules",
        ValidationResult,
        run="retrain.steps.validate_rows:run",
        reads=("scoring.input",),
    ),
    Step(
        "predict",
        "the version's predictions for the day as a Parquet partition, atomically; the same version on the same"
        " rows keeps the file",
        PredictionResult,
        run="retrain.steps.predict:run",
        needs=(ChampionResult, ValidationResult),
        reads=("scoring.input",),
        writes=("predictions", "scoring.output"),
    ),
)

# monitor_<name>: labels joined to predictions, the live metric and input drift per day, and the policy.
MONITOR: tuple[Step, ...] = (
    Step(
        "join_labels",
        "the labels that have arrived joined to the stored predictions; the live metric and coverage per day",
        LiveMetricsResult,
        run="retrain.steps.join_labels:run",
        reads=("monitoring.labels", "predictions"),
    ),
    Step(
        "input_drift",
        "PSI and KS / chi-square of each day's scored rows against the reference of the version that scored them",
        InputDriftResult,
        run="retrain.steps.input_drift:run",
        needs=(LiveMetricsResult,),
        reads=("scoring.input",),
    ),
    Step(
        "report",
        "every day's figures to MLflow (step = day), the HTML report with the trends, and the policy's verdict",
        MonitoringReportResult,
        run="retrain.steps.monitor_report:run",
        needs=(LiveMetricsResult, InputDriftResult),
    ),
    Step(
        "request_retraining",
        "an event on `retrain_request_<name>` with the reason when the policy trips; skipped (no event) otherwise",
        RetrainRequestResult,
        run="retrain.steps.request:run",
        needs=(MonitoringReportResult,),
        emits="request",
    ),
)

PIPELINES: dict[str, tuple[Step, ...]] = {"retrain": RETRAIN, "score": SCORE, "monitor": MONITOR}

# Only in the DAGs of specs whose promotion.approval asks for a person (retrain.approval decides per run
# whether to ask, pass or skip); `promote` then also reads its answer.
APPROVAL = Step(
    "approve_promotion",
    "a person approves or rejects the promotion the policy allowed (Airflow's required actions); no answer in time"
    " is a rejection; skipped when the policy declined",
    ReviewResult,
    run="retrain.approval:prepare",
    needs=(EvaluationResult,),
    kind="approval",
)


def has_approval(spec: ModelSpec) -> bool:
    """True when the spec's DAG asks a person before promoting (the approval gate is one of its steps)."""
    return any(step.kind == "approval" for step in steps(spec))


def dag_id_of(model: str, pipeline: str = "retrain") -> str:
    """The id of a model's DAG of a pipeline: retrain_<model>, score_<model>, monitor_<model>."""
    return f"{pipeline}_{model}"


def steps(spec: ModelSpec | None = None, pipeline: str = "retrain") -> tuple[Step, ...]:
    """The steps of one of a model's DAGs (`retrain`, `score`, `monitor`), in order; the retraining DAG has
    an approval gate before `promote` when the spec's promotion.approval is not "never"."""
    chain = PIPELINES[pipeline]
    if pipeline != "retrain" or spec is None or spec.promotion.approval == "never":
        return chain
    *before, promote = chain
    return (*before, APPROVAL, dataclasses.replace(promote, needs=(*promote.needs, ReviewResult)))


def pipeline_of(step: Step) -> str:
    """The pipeline a step belongs to (the approval gate and `promote` with its extra input: retraining)."""
    if step.kind == "approval":
        return "retrain"
    return next(name for name, chain in PIPELINES.items() if step.task_id in {s.task_id for s in chain})


def task_ids(spec: ModelSpec | None = None, pipeline: str = "retrain") -> list[str]:
    return [step.task_id for step in steps(spec, pipeline)]


def producer(output: type[StepOutput], spec: ModelSpec | None = None, pipeline: str = "retrain") -> Step:
    """The step of the pipeline whose output is of this type."""
    return next(step for step in steps(spec, pipeline) if step.output is output)


def chain_markdown(spec: ModelSpec | None = None, pipeline: str = "retrain") -> str:
    """The chain as Markdown, one line per step: the DAG's docs show it."""
    return "\n".join(f"{n}. `{s.task_id}`: {s.summary}" for n, s in enumerate(steps(spec, pipeline), start=1))


@dataclass(frozen=True)
class StepContext:
    """Everything a step's domain function gets: the spec, the run, the outputs of the steps before it,
    the registry (opened on first use) and a logger. No Airflow: steps are unit-tested with this alone."""

    spec: ModelSpec
    run: Run
    inputs: Mapping[type[StepOutput], StepOutput | None] = field(default_factory=dict)
    registry_factory: Callable[[], Registry] | None = None
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("retrain.steps"))
    engines: Callable[[str], Any] | None = None  # an Airflow connection id -> a SQLAlchemy engine (SQL sources)

    def input(self, output: type[Output]) -> Output | None:
        """The output of the earlier step that produces `output` (None when it pushed nothing)."""
        return self.inputs.get(output)  # type: ignore[return-value]

    @functools.cached_property
    def registry(self) -> Registry:
        if self.registry_factory is None:
            from retrain.registry import Registry

            return Registry()
        return self.registry_factory()

    @functools.cached_property
    def source(self) -> DataSource:
        """Where the spec's rows come from: files, or a database through `engines`."""
        from retrain.sources import open_source

        return open_source(self.spec, self.engines)

    @property
    def report_dir(self) -> Path:
        """This run's report folder: <artifacts>/<model>/reports/end_date=.../<run>/."""
        return report_dir(self.spec.name, self.run.window, self.run.run_id)

    @property
    def features_dir(self) -> Path:
        """This window's feature partition: <artifacts>/<model>/features/end_date=.../."""
        return features_dir(self.spec.name, self.run.window)
