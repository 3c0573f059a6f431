"""Features, defined once.

Two halves: `prepare_frame` gives every run the same typed, ordered columns; `build_pipeline`
is the scikit-learn Pipeline (imputation, encoding, estimator) that is fitted, logged and served as
one MLflow model, so serving applies exactly the transform training did.

The build_features task writes a window's partition with `build_partition`: what `prepare_frame`,
`split` and `write_partition` give, in one pass over chunks of rows. Partitions are written
atomically: a temporary folder is filled, then renamed into place; a rerun of the same date replaces
the partition, never adds a second one.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import shutil
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from retrain.errors import DataError, SpecError
from retrain.estimator_params import format_problems, import_estimator, param_problems, signature_problems
from retrain.spec import ModelSpec
from retrain.window import Window

# The version of what build_pipeline fits around the estimator (imputation, encoding, scaling). Bump it
# when that changes: it is part of the key that lets a rerun reuse a trained version (retrain.train).
PIPELINE_VERSION = "1"
TRAIN_FILE = "train.parquet"
HOLDOUT_FILE = "holdout.parquet"
MANIFEST_FILE = "_manifest.json"
MISSING_CATEGORY = "__missing__"


def prepare_frame(frame: pd.DataFrame, spec: ModelSpec) -> pd.DataFrame:
    """Select the spec's columns with fixed dtypes and a fixed row order (timestamp, then content)."""
    columns = _typed_columns(frame, spec)
    # Take from the arrays, not the Series: no index to reorder, one copy of the window.
    return _take(columns, _row_order(columns))


def typed_frame(frame: pd.DataFrame, spec: ModelSpec) -> pd.DataFrame:
    """The spec's columns with the dtypes `prepare_frame` gives, in the rows' own order and without a
    copy: for what does not depend on row order (drift statistics)."""
    return pd.DataFrame(_typed_columns(frame, spec), copy=False)


def _typed_columns(frame: pd.DataFrame, spec: ModelSpec) -> dict[str, pd.Series]:
    ts, target = spec.data.timestamp_column, spec.target
    columns = {ts: frame[ts]}
    for column in spec.features.numeric:
        columns[column] = _typed(frame[column], "float64")
    for column in spec.features.categorical:
        columns[column] = strings(frame[column])
    columns[target] = class_labels(frame[target]) if spec.task == "classification" else _typed(frame[target], "float64")
    return columns


def class_labels(values: pd.Series) -> pd.Series:
    """A classification target with the type of its labels, whatever the file stored: booleans as `bool`,
    integers (and integral floats, as a column with a gap once became) as `int64`, anything else as text
    in the Arrow-backed `str` dtype of the categories. A category column takes its categories' type.

    Raises ValueError naming the values that are not class labels (validation refuses them first).
    """
    if isinstance(values.dtype, pd.CategoricalDtype):
        values = values.astype(values.cat.categories.dtype)
    dtype = values.dtype
    if pd.api.types.is_object_dtype(dtype):  # what the values are, in one pass in C
        kind = pd.api.types.infer_dtype(values, skipna=True)
        numeric = {"boolean": bool, "integer": "int64", "floating": float, "mixed-integer-float": float}
        dtype = np.dtype(numeric[kind]) if kind in numeric else dtype
    if pd.api.types.is_bool_dtype(dtype):
        return values if values.dtype == bool else values.astype(bool)
    if pd.api.types.is_integer_dtype(dtype):
        return _typed(values, "int64")
    if pd.api.types.is_float_dtype(dtype):
        numbers = values.to_numpy(dtype=float)
        fractional = ~np.isfinite(numbers) | (numbers != np.floor(numbers))
        if fractional.any():
            raise ValueError(
                f"target {values.name!r} has {int(fractional.sum())} value(s) that are not class labels, e.g."
                f" {numbers[fractional][:3].tolist()} (rule: a classification target holds class labels)"
            )
        return pd.Series(numbers.astype("int64"), index=values.index, name=values.name)
    return strings(values)


def _row_order(columns: dict[str, pd.Series]) -> np.ndarray:
    """One order whatever order the files came in: the first column (the timestamp), then every other in
    turn, a total order on content. Arrow compares the later columns only among rows tied on the earlier
    ones (few), where a full lexicographic sort would compare strings across the whole window."""
    keys = pa.Table.from_pandas(pd.DataFrame(columns, copy=False), preserve_index=False)
    return pc.sort_indices(keys, sort_keys=[(column, "ascending") for column in columns]).to_numpy().astype(np.intp)


def _take(columns: dict[str, pd.Series], rows: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({column: values.array.take(rows) for column, values in columns.items()}, copy=False)


def _typed(values: pd.Series, dtype: str) -> pd.Series:
    """The column as dtype; a column already of that dtype is used as it is, not copied."""
    if values.dtype == dtype:
        return values
    if dtype == "int64":
        return values.astype(dtype)
    return pd.to_numeric(values, errors="raise").astype(dtype)


def strings(values: pd.Series) -> pd.Series:
    """Categories as pandas' Arrow-backed `str` dtype, NaN for missing, in one contiguous Arrow array.

    Compact (no Python object per value), and what the scikit-learn encoders of the logged pipeline
    accept as they accept object strings: a model fitted on either predicts the same on either. One
    array, not the reader's chunks: taking rows from a chunked array locates every row's chunk on
    every call, which made writing a partition chunk by chunk grow faster than its rows.
    """
    values = values.astype("str")
    arrow = values.array.__arrow_array__()
    if isinstance(arrow, pa.ChunkedArray) and arrow.num_chunks > 1:
        values = pd.Series(pd.array(arrow.combine_chunks(), dtype="str"), index=values.index, name=values.name)
    return values


def split(frame: pd.DataFrame, spec: ModelSpec, window: Window) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train: [start, holdout_start). Holdout: [holdout_start, end). No row is in both."""
    stamps = frame[spec.data.timestamp_column]
    if stamps.is_monotonic_increasing and not stamps.hasnans:
        # A prepared frame is sorted by time: the two sets are slices of it (no copy of the data).
        lo, mid, hi = _bounds(stamps, window)
        return frame.iloc[lo:mid].reset_index(drop=True), frame.iloc[mid:hi].reset_index(drop=True)
    train = frame[(stamps >= window.start) & (stamps < window.holdout_start)].reset_index(drop=True)
    holdout = frame[(stamps >= window.holdout_start) & (stamps < window.end)].reset_index(drop=True)
    return train, holdout


def _bounds(sorted_stamps, window: Window) -> tuple[int, int, int]:
    """Where training starts, the holdout starts and the window ends, in timestamps sorted ascending."""
    lo, mid, hi = sorted_stamps.searchsorted([window.start, window.holdout_start, window.end], side="left")
    return int(lo), int(mid), int(hi)


# Rows per Parquet row group and per chunk written; and per chunk of row hashes, small enough that each
# chunk's temporaries stay in the CPU cache, so hashing time grows linearly with the rows.
CHUNK_ROWS = 262_144
HASH_CHUNK_ROWS = 65_536


def content_hash(frame: pd.DataFrame) -> str:
    """Order- and content-sensitive digest of a frame (columns, dtypes and values).

    SHA-256 of the dtypes, then of every row's hash in order: the same digest however the rows are
    chunked on the way, so a partition written chunk by chunk has the hash of the whole frame.
    """
    digest = hashlib.sha256(_dtypes_key(frame))
    _add_row_hashes(digest, frame)
    return digest.hexdigest()


def _dtypes_key(frame: pd.DataFrame) -> bytes:
    return json.dumps([[c, str(t)] for c, t in frame.dtypes.items()]).encode()


def _add_row_hashes(digest, frame: pd.DataFrame) -> None:
    for start in range(0, len(frame), HASH_CHUNK_ROWS):
        rows = frame.iloc[start : start + HASH_CHUNK_ROWS]
        digest.update(pd.util.hash_pandas_object(rows, index=False).to_numpy().tobytes())


@dataclass(frozen=True)
class Partition:
    path: Path
    train_rows: int
    holdout_rows: int
    train_hash: str
    holdout_hash: str

    @property
    def input_hash(self) -> str:
        return hashlib.sha256(f"{self.train_hash}:{self.holdout_hash}".encode()).hexdigest()

    def to_dict(self) -> dict:
        return {
            "path": str(self.path),
            "train_rows": self.train_rows,
            "holdout_rows": self.holdout_rows,
            "train_hash": self.train_hash,
            "holdout_hash": self.holdout_hash,
            "input_hash": self.input_hash,
        }


def write_partition(train: pd.DataFrame, holdout: pd.DataFrame, path: Path, window: Window) -> Partition:
    """Writes prepared training and holdout frames as the partition at path, atomically."""
    return _publish(Path(path), window, _slices(train), _slices(holdout))


def build_partition(frame: pd.DataFrame, spec: ModelSpec, window: Window, path: Path) -> Partition:
    """`prepare_frame`, `split` and `write_partition` in one pass over chunks of rows: the same files, rows
    and hashes (tests/unit/test_features.py), without a sorted copy of the window in memory.

    Raises DataError when a column cannot take its type, or when the training or holdout set is empty.
    """
    try:
        columns = _typed_columns(frame, spec)
    except (KeyError, ValueError, TypeError) as error:
        raise DataError(f"{spec.data.location}: cannot build features for window {window}: {error}") from None
    order = _row_order(columns)
    stamps = columns[spec.data.timestamp_column].array.take(order)
    timed = len(stamps) - int(stamps.isna().sum())  # rows without a timestamp sort last and are in no window
    lo, mid, hi = _bounds(stamps[:timed], window)
    if mid == lo or hi == mid:
        raise empty_split_error(spec, window, mid - lo, hi - mid)
    return _publish(Path(path), window, _taken(columns, order[lo:mid]), _taken(columns, order[mid:hi]))


def empty_split_error(spec: ModelSpec, window: Window, train_rows: int, holdout_rows: int) -> DataError:
    """The error for a window whose training or holdout set is empty."""
    return DataError(
        f"{spec.data.location}: window {window} has {train_rows} training and {holdout_rows} holdout rows;"
        " both must be non-empty (rule: data.lookback_days / data.holdout_days)"
    )


def build_partition_from_ordered(
    chunks: Iterable[pd.DataFrame], spec: ModelSpec, window: Window, path: Path
) -> Partition:
    """`build_partition` for rows that arrive in chunks already in the partition's order (the timestamp,
    then every column: a database's ORDER BY) and inside the window: the same files, rows and hashes,
    with memory bounded by a chunk. The caller checks that neither set is empty before streaming."""
    ts = spec.data.timestamp_column
    rest: list[pd.DataFrame] = []  # the holdout's first rows, read with the training set's last ones
    train_rows = [0]
    source = iter(chunks)

    def typed(chunk: pd.DataFrame) -> pd.DataFrame:
        try:
            return pd.DataFrame(_typed_columns(chunk, spec), copy=False)
        except (KeyError, ValueError, TypeError) as error:
            raise DataError(f"{spec.data.location}: cannot build features for window {window}: {error}") from None

    def train() -> Iterator[pd.DataFrame]:
        for chunk in map(typed, source):
            cut = int(chunk[ts].searchsorted(window.holdout_start, side="left"))
            train_rows[0] += min(cut, len(chunk))
            if cut < len(chunk):
                if cut:
                    yield chunk.iloc[:cut].reset_index(drop=True)
                rest.append(chunk.iloc[cut:].reset_index(drop=True))
                return
            yield chunk

    def holdout() -> Iterator[pd.DataFrame]:
        if not rest:  # the rows changed since the caller counted them: nothing is published
            raise empty_split_error(spec, window, train_rows[0], 0)
        yield from rest
        yield from map(typed, source)

    return _publish(Path(path), window, train(), holdout())


def _slices(frame: pd.DataFrame) -> Iterator[pd.DataFrame]:
    for start in range(0, max(len(frame), 1), CHUNK_ROWS):  # an empty frame is one empty chunk
        yield frame.iloc[start : start + CHUNK_ROWS]


def _taken(columns: dict[str, pd.Series], rows: np.ndarray) -> Iterator[pd.DataFrame]:
    for start in range(0, max(len(rows), 1), CHUNK_ROWS):
        yield _take(columns, rows[start : start + CHUNK_ROWS])


def _publish(path: Path, window: Window, train: Iterator[pd.DataFrame], holdout: Iterator[pd.DataFrame]) -> Partition:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".tmp-{path.name}-{uuid.uuid4().hex}"
    tmp.mkdir()
    try:
        train_rows, train_hash = _write_chunks(train, tmp / TRAIN_FILE)
        holdout_rows, holdout_hash = _write_chunks(holdout, tmp / HOLDOUT_FILE)
        partition = Partition(path, train_rows, holdout_rows, train_hash, holdout_hash)
        manifest = {**partition.to_dict(), "window": window.to_dict()}
        (tmp / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=True))
        _swap_into_place(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return partition


def _write_chunks(chunks: Iterator[pd.DataFrame], path: Path) -> tuple[int, str]:
    """Writes the chunks as one Parquet file (a row group each); returns the rows and their content hash.

    String columns only are dictionary-encoded: measurements are mostly distinct values, where trying a
    dictionary first costs 40% of the write time and saves nothing (benchmarks/README.md).
    """
    digest, writer, rows = None, None, 0
    try:
        for chunk in chunks:
            table = pa.Table.from_pandas(chunk, preserve_index=False)
            if writer is None:
                digest = hashlib.sha256(_dtypes_key(chunk))
                text = [f.name for f in table.schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]
                writer = pq.ParquetWriter(path, table.schema, use_dictionary=text)
            writer.write_table(table)
            _add_row_hashes(digest, chunk)
            rows += len(chunk)
    finally:
        if writer is not None:
            writer.close()
    return rows, digest.hexdigest()


def _swap_into_place(tmp: Path, path: Path) -> None:
    """Rename tmp to path. A reader sees the old partition, no partition, or the new one: never a mix."""
    old = None
    if path.exists():
        old = path.parent / f".old-{path.name}-{uuid.uuid4().hex}"
        os.replace(path, old)
    os.replace(tmp, path)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def clean_stale_temporaries(parent: Path) -> list[Path]:
    """Remove temporaries a killed writer left behind (they are never read, only tidied)."""
    removed = []
    if parent.exists():
        for leftover in parent.glob(".tmp-*"):
            shutil.rmtree(leftover, ignore_errors=True)
            removed.append(leftover)
        for leftover in parent.glob(".old-*"):
            shutil.rmtree(leftover, ignore_errors=True)
            removed.append(leftover)
    return removed


def read_partition(
    path: str | os.PathLike[str], train_columns: list[str] | None = None
) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """The partition's training rows (only `train_columns` when given), holdout rows and manifest."""
    path = Path(path)
    manifest_path = path / MANIFEST_FILE
    if not manifest_path.exists():
        raise DataError(f"{path}: no complete feature partition here (missing {MANIFEST_FILE}); rerun build_features")
    manifest = json.loads(manifest_path.read_text())
    try:
        train = pd.read_parquet(path / TRAIN_FILE, columns=train_columns)
        holdout = pd.read_parquet(path / HOLDOUT_FILE)
    except (OSError, ValueError) as error:
        raise DataError(f"{path}: cannot read feature partition: {error}") from None
    return train, holdout, manifest


def feature_matrix(frame: pd.DataFrame, spec: ModelSpec) -> tuple[pd.DataFrame, pd.Series]:
    return frame[list(spec.features.columns)], frame[spec.target]


def resolve_estimator_class(dotted: str, task: str | None = None) -> type:
    """The estimator class, imported only when the spec's rules admit it (retrain.estimator_params)."""
    return import_estimator(dotted, task)


def estimator_params(spec: ModelSpec, overrides: dict | None = None) -> dict:
    """The spec's params, then the trigger's overrides, checked again here, where the model is built (the
    spec and the run's first task checked them already): the same rules, then the class's signature."""
    cls = resolve_estimator_class(spec.model.estimator, spec.task)
    params = {**spec.model.params, **(overrides or {})}
    problems = param_problems(spec.model.estimator, params) or signature_problems(cls, params)
    if problems:
        raise SpecError(f"{spec.model.estimator}: {format_problems('model.params', problems)}")
    if "random_state" in inspect.signature(cls.__init__).parameters:
        params.setdefault("random_state", spec.model.random_state)
    return params


def build_pipeline(spec: ModelSpec, overrides: dict | None = None):
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    transformers = []
    if spec.features.numeric:
        numeric = Pipeline(
            [("impute", SimpleImputer(strategy="median", add_indicator=True)), ("scale", StandardScaler())]
        )
        transformers.append(("numeric", numeric, list(spec.features.numeric)))
    if spec.features.categorical:
        categorical = Pipeline(
            [
                ("impute", SimpleImputer(strategy="constant", fill_value=MISSING_CATEGORY)),
                ("encode", OneHotEncoder(handle_unknown="ignore", min_frequency=5, sparse_output=False)),
            ]
        )
        transformers.append(("categorical", categorical, list(spec.features.categorical)))
    estimator = resolve_estimator_class(spec.model.estimator, spec.task)(**estimator_params(spec, overrides))
    return Pipeline([("features", ColumnTransformer(transformers, remainder="drop")), ("model", estimator)])


def reference_sample(train: pd.DataFrame, spec: ModelSpec) -> pd.DataFrame:
    """A seeded sample of the training set kept with the model: the drift reference."""
    columns = [*spec.features.columns, spec.target]
    rows = min(len(train), spec.drift.reference_sample_rows)
    rng = np.random.default_rng(spec.model.random_state)
    index = np.sort(rng.choice(len(train), size=rows, replace=False)) if rows < len(train) else np.arange(len(train))
    return train.iloc[index][columns].reset_index(drop=True)
