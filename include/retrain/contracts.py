"""What each step hands to the next: one small frozen value per step, sent through XCom once.

Every field is a JSON value (text, number, bool, None, list, mapping), so `to_xcom` and
`from_xcom` are exact inverses (tests/unit/test_pipeline.py). Steps that write reports list them in
`reports` (name -> path); the evaluation gathers them from every step before it without knowing
their names.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Self


@dataclass(frozen=True)
class StepOutput:
    """Base of every step's output. A step that emits an asset event gives the event's payload by
    `event_extra()` (an output without it emits an empty one)."""

    def to_xcom(self) -> dict[str, Any]:
        return {f.name: _jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_xcom(cls, data: Mapping[str, Any]) -> Self:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in names})


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


@dataclass(frozen=True)
class ValidationResult(StepOutput):
    """`validate_data`: the suite's verdict on the window (or why the window could not be read)."""

    success: bool
    rows: int
    window: Mapping[str, str]
    warnings: int = 0
    statistics: Mapping[str, int] = field(default_factory=dict)
    failed: tuple[Mapping[str, Any], ...] = ()  # the first failed expectations, with their columns and examples
    files: tuple[str, ...] = ()
    error: str | None = None  # the window could not be read at all
    reports: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DriftResult(StepOutput):
    """`check_drift`: the window against the champion's training data."""

    compared: bool  # False: no champion yet, nothing to compare with
    champion_version: str | None = None
    any_drift: bool | None = None
    drifted_features: tuple[str, ...] = ()
    label_drifted: bool = False
    max_psi: float | None = None
    reports: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class FeaturesResult(StepOutput):
    """`build_features`: the partition the training job reads."""

    path: str
    train_rows: int
    holdout_rows: int
    train_hash: str
    holdout_hash: str
    input_hash: str
    window: Mapping[str, str]


@dataclass(frozen=True)
class TrainingResult(StepOutput):
    """`train`: the registered (or reused) model version; the training job writes exactly this as JSON."""

    run_id: str
    model_version: str
    metrics: Mapping[str, float]
    reused: bool
    input_hash: str


@dataclass(frozen=True)
class EvaluationResult(StepOutput):
    """`evaluate`: the policy's decision on the challenger, against the champion it saw."""

    model: str
    version: str
    mlflow_run_id: str
    champion_version: str | None  # the champion at evaluation: promotion refuses if it moved since
    already_champion: bool
    promote: bool
    forced: bool
    reasons: tuple[str, ...]
    dry_run: bool
    window_end: str
    metric: str
    reports: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PromotionResult(StepOutput):
    """`promote`: the aliases after the move, and the window the new champion was trained on."""

    model: str
    version: str
    aliases: Mapping[str, str | None]
    window_end: str = ""

    def event_extra(self) -> dict[str, Any]:
        """The payload of the model asset's event: scoring re-scores the day before `end_date` with `version`."""
        return {
            "version": self.version,
            "previous": self.aliases.get("previous"),
            "end_date": self.window_end or None,
            "reason": f"version {self.version} promoted",
        }


@dataclass(frozen=True)
class ChampionResult(StepOutput):
    """`resolve_champion`: the version the alias pointed at when the run started; every later step uses it."""

    model: str
    version: str
    mlflow_run_id: str
    alias: str


@dataclass(frozen=True)
class PredictionResult(StepOutput):
    """`predict`: the day's prediction partition, and whether this run wrote it or found it already written."""

    path: str
    day: str
    version: str
    rows: int
    written: bool
    replaced_version: str | None = None  # the version whose predictions for the day were replaced, if any
    table: str | None = None  # scoring.output: the table (and connection id) the day's predictions were written to
    table_rows: int | None = None  # the day's rows in that table after the write


@dataclass(frozen=True)
class LiveMetricsResult(StepOutput):
    """`join_labels`: per day, the rows scored, the labels joined and the live metric (None: not computable)."""

    metric: str
    champion_version: str | None
    champion_score: float | None  # the champion's evaluation score on `metric` (its own holdout)
    days: tuple[Mapping[str, Any], ...] = ()
    reports: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class InputDriftResult(StepOutput):
    """`input_drift`: per day, PSI per feature of the scored rows against the reference of the version that
    scored them, and the drifted features."""

    days: tuple[Mapping[str, Any], ...] = ()
    reports: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class MonitoringReportResult(StepOutput):
    """`report`: where the day's figures went (the MLflow run) and the HTML report with the trend plots."""

    mlflow_run_id: str
    experiment: str
    verdict: Mapping[str, Any] = field(default_factory=dict)  # request, kind, reason, extra (the event's payload)
    reports: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RetrainRequestResult(StepOutput):
    """`request_retraining`: the policy's verdict; `extra` is the asset event's payload when it asks."""

    request: bool
    reason: str
    extra: Mapping[str, Any] = field(default_factory=dict)

    def event_extra(self) -> dict[str, Any]:
        """The payload of the request asset's event."""
        return dict(self.extra)


@dataclass(frozen=True)
class ReviewResult(StepOutput):
    """`approve_promotion`: whether a person approved the promotion, or why nobody had to.

    outcome: "approved" | "rejected" (a Reject, or no answer by the timeout) | "not_required" (the spec's
    approval mode does not ask for this promotion). `by` is the reviewer's user id (None after a timeout).
    """

    model: str
    version: str
    outcome: str
    by: str | None = None
    at: str | None = None
    comment: str = ""
    timed_out: bool = False
    reason: str = ""
