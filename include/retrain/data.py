"""Reading a run's data window from a file or a folder of CSV/Parquet files, local or remote.

Structural problems (nothing to read, a corrupt file, a timestamp that does not parse) raise
DataError naming the file, the column and the rule. Content problems are the validation suite's job.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from retrain.errors import DataError
from retrain.settings import data_path_allowed, resolve_data_uri
from retrain.spec import ModelSpec
from retrain.window import Window

SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


@dataclass(frozen=True)
class WindowData:
    frame: pd.DataFrame
    files: tuple[str, ...]


def _fs_and_path(uri: str):
    import fsspec

    fs, path = fsspec.core.url_to_fs(uri)
    return fs, path


def list_data_files(uri: str, file_format: str = "auto") -> list[str]:
    """Every data file under the spec's URI, sorted, so row order is the same on every run. Only files the
    URI allows (retrain.settings.resolve_data_uri): a symlink in the folder pointing elsewhere is skipped."""
    resolved = resolve_data_uri(uri)
    if "://" not in resolved:
        path = Path(resolved)
        if not path.exists():
            raise DataError(
                f"{resolved}: data URI does not exist (rule: data.uri must name a file or folder)", transient=True
            )
        candidates = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        files = [str(p) for p in candidates if not p.name.startswith((".", "_"))]
    else:
        try:
            fs, root = _fs_and_path(resolved)
            if not fs.exists(root):
                raise DataError(
                    f"{resolved}: data URI does not exist (rule: data.uri must name a file or folder)", transient=True
                )
            # A trailing slash names a folder (HTTP cannot tell a folder's URL from a file's).
            found = [root] if not resolved.endswith("/") and fs.isfile(root) else sorted(fs.find(root))
        except DataError:
            raise
        except Exception as error:  # noqa: BLE001 - any transport error means "unreachable"
            raise DataError(f"{resolved}: data URI is unreachable: {error}", transient=True) from None
        # Some filesystems list full URLs (http), others bare paths (s3): unstrip_protocol gives one form.
        files = [fs.unstrip_protocol(f) for f in found if not os.path.basename(f.rstrip("/")).startswith((".", "_"))]
    files = [f for f in files if data_path_allowed(f, resolved)]
    if file_format != "auto":
        files = [f for f in files if SUFFIXES.get(Path(f).suffix.lower()) == file_format]
    else:
        files = [f for f in files if Path(f).suffix.lower() in SUFFIXES]
    if not files:
        raise DataError(
            f"{resolved}: no CSV or Parquet files found (rule: data.uri must contain data files)", transient=True
        )
    return files


def _file_format(path: str, declared: str) -> str:
    return declared if declared != "auto" else SUFFIXES[Path(path).suffix.lower()]


def _window_filters(schema: pa.Schema, column: str, window: Window) -> list[tuple] | None:
    """Parquet predicate pushdown on a timestamp-typed column: row groups outside the window are not read."""
    if column not in schema.names or not pa.types.is_timestamp(schema.field(column).type):
        return None
    start, end = window.start, window.end
    if schema.field(column).type.tz is None:  # naive timestamps are UTC (see parse_timestamps)
        start, end = start.replace(tzinfo=None), end.replace(tzinfo=None)
    return [(column, ">=", start), (column, "<", end)]


def _read_file(
    path: str, file_format: str, columns: Sequence[str] | None, timestamp_column: str, window: Window
) -> pd.DataFrame:
    if "://" in path:  # pyarrow and pandas do not read every scheme fsspec lists (http): open it through fsspec
        import fsspec

        try:
            handle = fsspec.open(path, "rb").open()
        except Exception as error:  # noqa: BLE001 - any transport error means "unreachable"
            raise DataError(f"{path}: cannot open the data file: {error}", transient=True) from None
        with handle:
            return _read_source(handle, path, file_format, columns, timestamp_column, window)
    return _read_source(path, path, file_format, columns, timestamp_column, window)


def _read_source(
    source, path: str, file_format: str, columns: Sequence[str] | None, timestamp_column: str, window: Window
) -> pd.DataFrame:
    try:
        if file_format == "parquet":
            schema = pq.read_schema(source)
            if columns is not None:
                columns = [c for c in columns if c in schema.names]
            # pre_buffer coalesces reads for object stores; on a local disk it only doubles peak memory.
            table = pq.read_table(
                source,
                columns=columns,
                filters=_window_filters(schema, timestamp_column, window),
                pre_buffer="://" in path,
            )
            # Release Arrow buffers column by column while converting: peak memory near one copy, not two.
            return table.to_pandas(split_blocks=True, self_destruct=True)
        return pd.read_csv(source, usecols=lambda c: columns is None or c in columns, low_memory=False)
    except (pa.ArrowException, OSError, ValueError, pd.errors.ParserError, UnicodeDecodeError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise DataError(
            f"{path}: cannot read as {file_format.upper()} (file corrupt or truncated?): {reason}"
        ) from None


def parse_timestamps(frame: pd.DataFrame, column: str, source: str) -> pd.Series:
    if column not in frame.columns:
        raise DataError(f"{source}: missing timestamp column {column!r} (rule: data.timestamp_column must exist)")
    values = frame[column]
    if pd.api.types.is_datetime64_any_dtype(values):
        parsed = values
    else:
        parsed = pd.to_datetime(values, errors="coerce", utc=True, format="mixed")
        bad = parsed.isna() & values.notna()
        if bad.any():
            examples = values[bad].astype(str).unique()[:3].tolist()
            raise DataError(
                f"{source}: column {column!r} has {int(bad.sum())} value(s) that do not parse as timestamps,"
                f" e.g. {examples} (rule: timestamps must parse)"
            )
    if getattr(parsed.dt, "tz", None) is None:
        parsed = parsed.dt.tz_localize("UTC")
    return parsed.dt.tz_convert("UTC")


def read_window(spec: ModelSpec, window: Window, columns: Sequence[str] | None = None) -> WindowData:
    """All rows with timestamp in [window.start, window.end), from every file, in file order.

    columns=None reads every column (validation needs to see unexpected ones); otherwise only those.
    """
    ts = spec.data.timestamp_column
    wanted = None if columns is None else list(dict.fromkeys([ts, *columns]))
    required = wanted or list(spec.input_columns)
    parts: list[pd.DataFrame] = []
    used: list[str] = []
    for path in list_data_files(spec.data.uri, spec.data.format):
        frame = _read_file(path, _file_format(path, spec.data.format), wanted, ts, window)
        stamps = parse_timestamps(frame, ts, path)
        mask = (stamps >= window.start) & (stamps < window.end)
        if mask.any():
            missing = [c for c in required if c not in frame.columns]
            if missing:
                # Concatenating would fill the gap with nulls that a `mostly` expectation may let through.
                raise DataError(
                    f"{path}: missing column(s) {missing} that the spec needs"
                    " (rule: every file with rows in the window has every input column)"
                )
            if mask.all():  # the whole file is in the window: no copy at all
                selected = frame
                selected[ts] = stamps
            else:  # a boolean selection is already a new frame (copy-on-write): no second .copy()
                selected = frame.loc[mask.to_numpy()]
                selected[ts] = stamps[mask]
            parts.append(selected)
            used.append(path)
    if not parts:
        return WindowData(frame=pd.DataFrame(columns=wanted or [ts]), files=())
    frame = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0].reset_index(drop=True)
    return WindowData(frame=frame, files=tuple(used))
