"""Where a model's rows come from: files (`data.uri`) or a database table or query (`data.conn_id`).

A source reads a run's window, streams the window's needed columns in the partition's row order, and
describes itself (for reports and lineage, never with a credential). It also answers what each data
step asks of it: files are read into the worker and checked there; a database validates and counts in
the database, and only the training set leaves it, streamed. The steps call these methods and do not
know which kind of source they hold.

A database is reached through a SQLAlchemy engine the caller passes in (`engines(conn_id) -> Engine`):
the Airflow side builds it from the connection, so this package never imports Airflow.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from retrain.data import WindowData
    from retrain.drift import DriftReport
    from retrain.features import Partition
    from retrain.spec import ModelSpec
    from retrain.validation import ValidationOutcome
    from retrain.window import Window

# Rows per chunk when a window is streamed: the same as a partition's row group.
CHUNK_ROWS = 262_144


@dataclass(frozen=True)
class Validated:
    """A validation's outcome and what was read for it (files, or the table or query)."""

    outcome: ValidationOutcome
    read: tuple[str, ...]


@dataclass(frozen=True)
class Drifted:
    """A drift report, the window's rows the report's plots draw (all of them, or a sample), and how the
    statistics were computed (said in the report)."""

    report: DriftReport
    current: pd.DataFrame
    method: dict[str, str] = field(default_factory=dict)


class DataSource(ABC):
    """One model's data, as the data steps and (later) scoring and monitoring read it."""

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec

    @abstractmethod
    def describe(self) -> dict[str, str]:
        """What and where the data is, for reports and lineage: kind, location, and no credential."""

    @abstractmethod
    def read_window(self, window: Window, columns: Sequence[str] | None = None, untimed: bool = False) -> WindowData:
        """The window's rows in memory (every column, or the timestamp and `columns`) in one bounded read.
        `untimed`: also the rows whose timestamp is null (or, in files, does not parse), for validation to count."""

    @abstractmethod
    def stream_window(
        self, window: Window, columns: Sequence[str], chunk_rows: int = CHUNK_ROWS
    ) -> Iterator[pd.DataFrame]:
        """The window's timestamp and `columns` in chunks of rows, ordered by the timestamp, then every column."""

    @abstractmethod
    def validate(self, window: Window) -> Validated:
        """The validation suite's outcome on the window."""

    @abstractmethod
    def drift(self, reference: pd.DataFrame, window: Window) -> Drifted:
        """The window's drift against the champion's reference sample."""

    @abstractmethod
    def build_partition(self, window: Window, path: Path) -> Partition:
        """The window's training and holdout sets written as the feature partition at `path`."""


def open_source(spec: ModelSpec, engines: Callable[[str], Any] | None = None, section: str = "data") -> DataSource:
    """The spec's source: files for `data.uri`, a database for `data.conn_id` (through `engines`).

    `section`: the spec's section `data` stands for, named in errors: `data`, or `scoring.input` and
    `monitoring.labels` when `spec` is a view whose data is rows to score or labels (retrain.scoring.rows_view).
    """
    if spec.data.uri is not None:
        from retrain.sources.files import FileSource

        return FileSource(spec)
    from retrain.sources.sql import SqlSource

    if engines is None:
        from retrain.errors import SpecError

        raise SpecError(
            f"field '{section}.conn_id': {spec.name} reads connection {spec.data.conn_id!r}, but this process was"
            " given no way to open connections (run it through Airflow, or pass an engine factory)"
        )
    return SqlSource(spec, engines(spec.data.conn_id), section)
