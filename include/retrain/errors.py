"""Exceptions a data engineer sees in a task log. Each message names the file, field or rule.

Two attributes tell the orchestrator what to do with one, without parsing its message:
`retryable` (False: a verdict retrying cannot change, fail the task now) and `output` (the step's
result, recorded before the task fails, as a gate records its report before it stops the run).
"""

from __future__ import annotations

from typing import Any


class RetrainError(Exception):
    """Base class of every error this package raises on purpose."""

    retryable = True

    def __init__(self, message: str, *, output: Any = None) -> None:
        super().__init__(message)
        self.output = output


class SpecError(RetrainError):
    """A model spec is malformed: names the file, the field and the reason."""

    retryable = False


class FormValueError(RetrainError, ValueError):
    """A trigger-form (or conf) value is refused: names the param and the rule. Checked when the run starts."""

    retryable = False


class DataError(RetrainError):
    """The data cannot be read or is structurally unusable (missing file, corrupt file, bad timestamp).

    `transient` marks what a retry may fix (storage unreachable, data not landed yet); the rest is a
    verdict on the data that retrying cannot change.
    """

    def __init__(self, message: str, *, transient: bool = False, output: Any = None) -> None:
        super().__init__(message, output=output)
        self.transient = transient

    @property
    def retryable(self) -> bool:  # type: ignore[override]
        return self.transient


class DataValidationError(RetrainError):
    """The data was read but failed the validation suite."""

    retryable = False


class TrainingError(RetrainError):
    """The training job failed, timed out or produced no result."""


class RegistryError(RetrainError):
    """The model registry is unreachable or not in the state a step expected."""


class PromotionConflictError(RegistryError):
    """The champion alias moved between evaluation and promotion (or approval): a retry compares against the
    same evaluation and cannot succeed; rerun the DAG."""

    retryable = False


class ApprovalMissingError(RetrainError):
    """The spec asks a person before promoting and no approval is recorded for the version."""

    retryable = False


class RollbackRefusedError(RegistryError):
    """A rollback was refused by rule (no target, not vetted, not READY): retrying cannot help."""

    retryable = False


class StepSkipped(Exception):  # a verdict, not an error: the run ends here on purpose
    """A step decided the rest of the run has nothing to do (no drift, declined, dry run).

    Carries the step's output, which is recorded before the step ends skipped.
    """

    def __init__(self, reason: str, *, output: Any = None) -> None:
        super().__init__(reason)
        self.output = output
