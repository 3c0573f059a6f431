"""The retraining pipeline, defined once: its steps in order, what each consumes and produces.

The DAG factory builds one task per step from this list, the DAG's docs and the README's chain are
written from it, the demo report and the tests read it. A step's work is a domain function
`run(ctx: StepContext) -> <its output>` named by `module:function` (imported only when the task
runs, so parsing stays cheap). Adding a gate is one module with that function and one entry here.

Cheap to import: no pandas, scikit-learn, MLflow or Great Expectations at module level.
"""

from __future__ import annotations

import functools
import importlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from retrain.contracts import (
    DriftResult,
    EvaluationResult,
    FeaturesResult,
    PromotionResult,
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


@dataclass(frozen=True)
class Step:
    """One task of the retraining DAG.

    kind: "step" runs `run` in the generic step operator; "train" is the training job (a local process
    or a pod, chosen by the deployment). pool: the Airflow pool the task runs in. emits_model: the task
    updates the model's Asset when it succeeds.
    """

    task_id: str
    summary: str
    output: type[StepOutput]
    run: str | None = None
    needs: tuple[type[StepOutput], ...] = ()
    kind: Literal["step", "train"] = "step"
    pool: str | None = None
    emits_model: bool = False

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
    ),
    Step(
        "check_drift",
        "PSI and KS / chi-square against the champion's training data; `retrain: on_drift` skips a quiet night",
        DriftResult,
        run="retrain.steps.drift:run",
    ),
    Step(
        "build_features",
        "the window's training and holdout sets as a Parquet partition per end date, atomically",
        FeaturesResult,
        run="retrain.steps.features:run",
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
        emits_model=True,
    ),
)


def steps(spec: ModelSpec | None = None) -> tuple[Step, ...]:
    """The steps of a model's retraining DAG, in order."""
    return RETRAIN


def task_ids(spec: ModelSpec | None = None) -> list[str]:
    return [step.task_id for step in steps(spec)]


def producer(output: type[StepOutput], spec: ModelSpec | None = None) -> Step:
    """The step whose output is of this type."""
    return next(step for step in steps(spec) if step.output is output)


def chain_markdown(spec: ModelSpec | None = None) -> str:
    """The chain as Markdown, one line per step: the DAG's docs show it."""
    return "\n".join(f"{n}. `{s.task_id}`: {s.summary}" for n, s in enumerate(steps(spec), start=1))


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
