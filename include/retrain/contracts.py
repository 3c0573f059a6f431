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
    """Base of every step's output."""

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
    """`promote`: the aliases after the move."""

    model: str
    version: str
    aliases: Mapping[str, str | None]


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
