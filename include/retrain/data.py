"""Reading a run's data window from a file or a folder of CSV/Parquet files, local or remote.

Structural problems (nothing to read, a corrupt file, no timestamp column) raise DataError naming the
file, the column and the rule. Content problems are the validation suite's job, including rows whose
timestamp is null or does not parse: they belong to no window, so features and training never see
them, and the validation step reads them (`untimed=True`) so that its suite counts them, in every
window until they are fixed or tolerated (`validation.timestamp_null_tolerance`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from retrain.errors import DataError
from retrain.settings import data_path_allowed, resolve_data_uri
from retrain.spec import ModelSpec
from retrain.window import Window

SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
MAX_UNTIMED_EXAMPLES = 10


@dataclass(frozen=True)
class WindowData:
    """The window's rows (with `untimed=True`, also those without a valid timestamp, as NaT) and the files read."""

    frame: pd.DataFrame
    files: tuple[str, ...]
    untimed_rows: int = 0
    untimed_examples: tuple[str, ...] = ()  # "file: 'raw value'" or "file: null"


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


def _window_filters(schema: pa.Schema, column: str, window: Window, untimed: bool = False):
    """Parquet predicate pushdown on a timestamp-typed column: row groups outside the window are not read
    (nor, with `untimed`, row groups without a null timestamp: their statistics count the nulls)."""
    if column not in schema.names or not pa.types.is_timestamp(schema.field(column).type):
        return None
    start, end = window.start, window.end
    if schema.field(column).type.tz is None:  # naive timestamps are UTC (see parse_timestamps)
        start, end = start.replace(tzinfo=None), end.replace(tzinfo=None)
    if untimed:
        stamp = pc.field(column)
        return ((stamp >= pa.scalar(start)) & (stamp < pa.scalar(end))) | stamp.is_null()
    return [(column, ">=", start), (column, "<", end)]


def _read_file(
    path: str, file_format: str, columns: Sequence[str] | None, timestamp_column: str, window: Window,
    untimed: bool = False,
) -> pd.DataFrame:  # fmt: skip
    if "://" in path:  # pyarrow and pandas do not read every scheme fsspec lists (http): open it through fsspec
        import fsspec

        try:
            handle = fsspec.open(path, "rb").open()
        except Exception as error:  # noqa: BLE001 - any transport error means "unreachable"
            raise DataError(f"{path}: cannot open the data file: {error}", transient=True) from None
        with handle:
            return _read_source(handle, path, file_format, columns, timestamp_column, window, untimed)
    return _read_source(path, path, file_format, columns, timestamp_column, window, untimed)


def _read_source(
    source, path: str, file_format: str, columns: Sequence[str] | None, timestamp_column: str, window: Window,
    untimed: bool = False,
) -> pd.DataFrame:  # fmt: skip
    try:
        if file_format == "parquet":
            schema = pq.read_schema(source)
            if columns is not None:
                columns = [c for c in columns if c in schema.names]
            # pre_buffer coalesces reads for object stores; on a local disk it only doubles peak memory.
            table = pq.read_table(
                source,
                columns=columns,
                filters=_window_filters(schema, timestamp_column, window, untimed),
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
    """The column as UTC timestamps (naive ones are UTC); a null or unparseable value becomes NaT."""
    return _parsed(frame, column, source)[0]


def _parsed(frame: pd.DataFrame, column: str, source: str) -> tuple[pd.Series, pd.Series | None]:
    """The column as UTC timestamps, and the raw values that did not parse (None when it was typed)."""
    if column not in frame.columns:
        raise DataError(f"{source}: missing timestamp column {column!r} (rule: data.timestamp_column must exist)")
    values = frame[column]
    unparsed = None
    if pd.api.types.is_datetime64_any_dtype(values):
        parsed = values
    else:
        parsed = pd.to_datetime(values, errors="coerce", utc=True, format="mixed")
        unparsed = values[parsed.isna() & values.notna()]
    if getattr(parsed.dt, "tz", None) is None:
        parsed = parsed.dt.tz_localize("UTC")
    return parsed.dt.tz_convert("UTC"), unparsed


def _untimed_examples(path: str, unparsed: pd.Series | None, nulls: int) -> list[str]:
    """What a file held where a timestamp should be: a few raw values, and `null` if some were empty."""
    name = os.path.basename(path)
    raw = [] if unparsed is None else unparsed.astype(str).unique()[:MAX_UNTIMED_EXAMPLES].tolist()
    return [f"{name}: {value!r}" for value in raw] + ([f"{name}: null"] if nulls else [])


def read_window(
    spec: ModelSpec, window: Window, columns: Sequence[str] | None = None, untimed: bool = False
) -> WindowData:
    """All rows with timestamp in [window.start, window.end), from every file, in file order.

    columns=None reads every column (validation needs to see unexpected ones); otherwise only those.
    untimed=True also keeps every file's rows whose timestamp is null or does not parse (NaT), after the
    window's rows, and counts them with examples: what validation judges. Training never asks for them.
    """
    ts = spec.data.timestamp_column
    wanted = None if columns is None else list(dict.fromkeys([ts, *columns]))
    required = wanted or list(spec.input_columns)
    parts: list[pd.DataFrame] = []
    untimed_parts: list[pd.DataFrame] = []
    examples: list[str] = []
    used: list[str] = []
    for path in list_data_files(spec.data.uri, spec.data.format):
        frame = _read_file(path, _file_format(path, spec.data.format), wanted, ts, window, untimed)
        stamps, unparsed = _parsed(frame, ts, path)
        mask = (stamps >= window.start) & (stamps < window.end)
        missing_stamps = stamps.isna() if untimed else None
        keep_untimed = missing_stamps is not None and bool(missing_stamps.any())
        if mask.any() or keep_untimed:
            missing = [c for c in required if c not in frame.columns]
            if missing:
                # Concatenating would fill the gap with nulls that a `mostly` expectation may let through.
                raise DataError(
                    f"{path}: missing column(s) {missing} that the spec needs"
                    " (rule: every file with rows in the window has every input column)"
                )
            used.append(path)
        if keep_untimed:
            nulls = int(missing_stamps.sum()) - (0 if unparsed is None else len(unparsed))
            examples += _untimed_examples(path, unparsed, nulls)
            rows = frame.loc[missing_stamps.to_numpy()]
            rows[ts] = stamps[missing_stamps]
            untimed_parts.append(rows)
        if mask.any():
            if mask.all():  # the whole file is in the window: no copy at all
                selected = frame
                selected[ts] = stamps
            else:  # a boolean selection is already a new frame (copy-on-write): no second .copy()
                selected = frame.loc[mask.to_numpy()]
                selected[ts] = stamps[mask]
            parts.append(selected)
    parts += untimed_parts
    untimed_rows = sum(len(p) for p in untimed_parts)
    if not parts:
        return WindowData(frame=pd.DataFrame(columns=wanted or [ts]), files=())
    frame = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0].reset_index(drop=True)
    return WindowData(frame=frame, files=tuple(used), untimed_rows=untimed_rows, untimed_examples=tuple(examples))
