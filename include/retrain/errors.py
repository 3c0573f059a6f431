"""Exceptions a data engineer sees in a task log. Each message names the file, field or rule."""


class RetrainError(Exception):
    """Base class of every error this package raises on purpose."""


class SpecError(RetrainError):
    """A model spec is malformed: names the file, the field and the reason."""


class DataError(RetrainError):
    """The data cannot be read or is structurally unusable (missing file, corrupt file, bad timestamp).

    `transient` marks what a retry may fix (storage unreachable, data not landed yet); the rest is a
    verdict on the data that retrying cannot change.
    """

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


class DataValidationError(RetrainError):
    """The data was read but failed the validation suite."""


class TrainingError(RetrainError):
    """The training job failed, timed out or produced no result."""


class RegistryError(RetrainError):
    """The model registry is unreachable or not in the state a step expected."""


class PromotionConflictError(RegistryError):
    """The champion alias moved between evaluation and promotion."""


class RollbackRefusedError(RegistryError):
    """A rollback was refused by rule (no target, not vetted, not READY): retrying cannot help."""
