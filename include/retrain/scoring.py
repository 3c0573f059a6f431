"""Scoring with the champion: the rows of one day, read behind one function, and the day's predictions as a
Parquet partition written atomically and idempotently.

`read_rows` is the one place that reads rows to score, `rows_source` the one that opens rows to score or
labels: a view of the spec whose `data` is that section (`rows_view`) opened as a source like the training
data's (retrain.sources): files, or a table or query through a connection, read in one bounded SELECT
of the needed columns (retrain.sources.sql).

A day's predictions live in `<artifacts>/<model>/predictions/date=<day>/predictions.parquet` (and, with
`scoring.output`, in a table as well: retrain.sources.sql_output): key
columns, `prediction`, `probability` (classifiers), `model_version`, `run_id`, with the version, the rows'
content hash and the classes in the file's metadata. A rerun of a day with the same version on the same
rows keeps the file as it is; another version (a new champion) or other rows replace it, by a rename, so a
reader sees the old file or the new one, never half of one.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from retrain.data import WindowData
from retrain.errors import DataError, RetrainError
from retrain.features import content_hash, strings
from retrain.settings import predictions_dir, resolve_data_uri
from retrain.sources import DataSource, open_source
from retrain.spec import DataSpec, ModelSpec, RowsSpec
from retrain.window import Window

PREDICTIONS_FILE = "predictions.parquet"
PREDICTION = "prediction"
PROBABILITY = "probability"
MODEL_VERSION = "model_version"
RUN_ID = "run_id"
# Keys of the Parquet file's own metadata (the schema's key-value pairs).
META_VERSION, META_HASH, META_CLASSES, META_DAY = (
    b"retrain_model_version",
    b"retrain_input_hash",
    b"retrain_classes",
    b"retrain_day",
)


def day_window(day: dt.date) -> Window:
    """[day, day + 1) in UTC: the rows of one day (there is no holdout: `holdout_start` is the end)."""
    start = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
    end = start + dt.timedelta(days=1)
    return Window(start=start, holdout_start=end, end=end)


def days_window(first: dt.date, last: dt.date) -> Window:
    """[first, last + 1): the rows of several whole days."""
    return Window(start=day_window(first).start, holdout_start=day_window(last).end, end=day_window(last).end)


def rows_view(spec: ModelSpec, rows: RowsSpec) -> ModelSpec:
    """The spec as the data reader sees it when it reads `rows` (rows to score, or labels) instead of the
    training data: the same reader, its rules and its error messages. Files stay files; a table or a query
    through a connection becomes a SQL data section (the window's :start and :end bound the query)."""
    data = DataSpec(
        uri=rows.uri, conn_id=rows.conn_id, table=rows.table, query=rows.query, format=rows.format,
        timestamp_column=rows.timestamp_column, lookback_days=2, holdout_days=1,
    )  # fmt: skip
    return spec.model_copy(update={"data": data})


def rows_source(
    spec: ModelSpec, rows: RowsSpec, section: str, engines: Callable[[str], Any] | None = None
) -> DataSource:
    """The source of `rows` (the spec's `section`: scoring.input or monitoring.labels), errors named on it."""
    return open_source(rows_view(spec, rows), engines, section)


def rows_location(rows: RowsSpec) -> str:
    """Where `rows` are, for messages: the resolved files, or the table or query and the connection's id."""
    if rows.uri is not None:
        return resolve_data_uri(rows.uri)
    return f"{f'table {rows.table}' if rows.table else 'query'} through connection {rows.conn_id}"


def scoring_spec(spec: ModelSpec):
    if spec.scoring is None:
        raise RetrainError(f"model {spec.name} has no scoring section: nothing to score")
    return spec.scoring


def read_rows(
    spec: ModelSpec,
    window: Window,
    columns: Sequence[str] | None = None,
    untimed: bool = False,
    engines: Callable[[str], Any] | None = None,
) -> WindowData:
    """The rows to score with timestamps in `window`: the timestamp and `columns` (default: the key columns and
    the features; a file with rows in the window that lacks one, or a table or query without it, is an error
    naming the file or the field and the column). `untimed`: also the rows whose timestamp is null or does
    not parse, for validation to count (as training's). `engines`: connection id -> SQLAlchemy engine, for
    rows in a database (one SELECT of those columns, the window's bounds bind parameters).

    The one function that reads rows to score.
    """
    wanted = [*scoring_spec(spec).key_columns, *spec.features.columns] if columns is None else columns
    source = rows_source(spec, scoring_spec(spec).input, "scoring.input", engines)
    return source.read_window(window, wanted, untimed=untimed)


def read_day_rows(
    spec: ModelSpec,
    day: dt.date,
    columns: Sequence[str] | None = None,
    untimed: bool = False,
    engines: Callable[[str], Any] | None = None,
) -> WindowData:
    """The rows to score of one day (columns and engines as `read_rows`). No row that day is an error naming the
    day and the source (the rows may not have landed yet: a retry may find them)."""
    data = read_rows(spec, day_window(day), columns, untimed, engines)
    if data.frame.empty:
        raise DataError(
            f"{rows_location(scoring_spec(spec).input)}: no rows to score for {day}"
            " (rule: scoring.input has rows whose timestamp is on the day scored)",
            transient=True,
        )
    return data


def feature_frame(frame: pd.DataFrame, spec: ModelSpec) -> pd.DataFrame:
    """The features with the types the model was trained on (numeric as float, categories as text), no target.

    Raises DataError naming the column when a numeric feature holds something that is not a number.
    """
    columns: dict[str, pd.Series] = {}
    for column in spec.features.numeric:
        try:
            columns[column] = pd.to_numeric(frame[column], errors="raise").astype("float64")
        except (TypeError, ValueError) as error:
            raise DataError(
                f"rows to score: numeric feature {column!r} holds a value that is not a number: {error}"
            ) from None
    for column in spec.features.categorical:
        columns[column] = strings(frame[column])
    return pd.DataFrame(columns, index=frame.index)


@dataclass(frozen=True)
class Predictions:
    """A day's predictions and what the file says about them."""

    frame: pd.DataFrame
    path: Path
    version: str
    input_hash: str
    classes: tuple[Any, ...] = ()
    day: str = ""


def prediction_path(model: str, day: dt.date) -> Path:
    """The file holding one day's predictions."""
    return predictions_dir(model) / f"date={day.isoformat()}" / PREDICTIONS_FILE


def scored_days(model: str, first: dt.date, last: dt.date) -> list[dt.date]:
    """The days in [first, last] that have a prediction file, in order."""
    days = []
    for folder in sorted(predictions_dir(model).glob("date=*")):
        try:
            day = dt.date.fromisoformat(folder.name.removeprefix("date="))
        except ValueError:
            continue
        if first <= day <= last and (folder / PREDICTIONS_FILE).is_file():
            days.append(day)
    return days


def rows_hash(rows: pd.DataFrame, keys: Sequence[str]) -> str:
    """The content hash of the rows scored, in key order (so file order does not change it)."""
    return content_hash(rows.sort_values(list(keys), kind="stable").reset_index(drop=True))


def predict(model: Any, rows: pd.DataFrame, spec: ModelSpec, version: str, run_id: str) -> tuple[pd.DataFrame, tuple]:
    """The predictions of `model` for `rows`, one per row in key order, and the model's classes (classifiers).

    `probability` is the probability of the positive class (the larger label) for a binary classifier, and of
    the predicted class for more classes.
    """
    keys = list(scoring_spec(spec).key_columns)
    rows = rows.sort_values(keys, kind="stable").reset_index(drop=True)
    features = feature_frame(rows, spec)
    out = rows[keys].copy()
    out[PREDICTION] = np.asarray(model.predict(features))
    classes: tuple = ()
    if spec.task == "classification" and hasattr(model, "predict_proba"):
        classes = tuple(np.asarray(model.classes_).tolist())
        proba = np.asarray(model.predict_proba(features), dtype=float)
        out[PROBABILITY] = proba[:, 1] if proba.shape[1] == 2 else proba.max(axis=1)
    out[MODEL_VERSION] = str(version)
    out[RUN_ID] = run_id
    return out, classes


def read_predictions(model: str, day: dt.date) -> Predictions:
    """A day's predictions. A day never scored, or a file that is not a readable prediction file, is a DataError
    naming the file."""
    path = prediction_path(model, day)
    if not path.is_file():
        raise DataError(f"{path}: no predictions for {day} (score_{model} has not scored that day)")
    try:
        table = pq.read_table(path)
        meta = table.schema.metadata or {}
        classes = tuple(json.loads(meta.get(META_CLASSES, b"[]")))
        return Predictions(
            table.to_pandas(), path, meta[META_VERSION].decode(), meta[META_HASH].decode(), classes,
            meta.get(META_DAY, b"").decode(),
        )  # fmt: skip
    except (pa.ArrowException, OSError, ValueError, KeyError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise DataError(f"{path}: not a readable prediction file (corrupt or truncated?): {reason}") from None


@dataclass(frozen=True)
class Written:
    """What `write_predictions` did: wrote the file, or kept the one already there; and what it replaced."""

    path: Path
    written: bool
    replaced_version: str | None = None
    notes: Mapping[str, str] = field(default_factory=dict)


def write_predictions(
    frame: pd.DataFrame, model: str, day: dt.date, version: str, input_hash: str, classes: tuple = ()
) -> Written:
    """Writes the day's predictions atomically: a temporary file in the same folder, then a rename.

    The same version on the same rows keeps the existing file (a rerun changes nothing); anything else
    replaces it. An existing file that cannot be read is replaced too (and said so).
    """
    path = prediction_path(model, day)
    replaced, note = None, {}
    if path.exists():
        try:
            existing = read_predictions(model, day)
        except DataError as error:
            note = {"replaced_unreadable": str(error)}
        else:
            if existing.version == str(version) and existing.input_hash == input_hash:
                return Written(path, written=False)
            replaced = existing.version
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    metadata = {
        **(table.schema.metadata or {}),
        META_VERSION: str(version).encode(),
        META_HASH: input_hash.encode(),
        META_CLASSES: json.dumps(list(classes), default=str).encode(),
        META_DAY: day.isoformat().encode(),
    }
    tmp = path.parent / f".{PREDICTIONS_FILE}.tmp-{uuid.uuid4().hex}"
    try:
        pq.write_table(table.replace_schema_metadata(metadata), tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return Written(path, written=True, replaced_version=replaced, notes=note)
