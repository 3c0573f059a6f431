"""Files (`data.uri`): every step reads the window into the worker and works on it there."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import pandas as pd

from retrain.data import WindowData, read_window
from retrain.drift import compute_drift
from retrain.features import Partition, build_partition, prepare_frame, typed_frame
from retrain.sources import CHUNK_ROWS, DataSource, Drifted, Validated
from retrain.validation import validate_frame
from retrain.window import Window


class FileSource(DataSource):
    """A file or a folder of CSV/Parquet files, local or remote."""

    def describe(self) -> dict[str, str]:
        return {"kind": "files", "location": self.spec.data.location}

    def read_window(self, window: Window, columns: Sequence[str] | None = None, untimed: bool = False) -> WindowData:
        return read_window(self.spec, window, columns, untimed=untimed)

    def stream_window(
        self, window: Window, columns: Sequence[str], chunk_rows: int = CHUNK_ROWS
    ) -> Iterator[pd.DataFrame]:
        # Files have no order to stream in: the window is read and sorted whole, then handed out in chunks.
        frame = prepare_frame(self.read_window(window, columns).frame, self.spec)
        for start in range(0, len(frame), chunk_rows):
            yield frame.iloc[start : start + chunk_rows]

    def validate(self, window: Window) -> Validated:
        data = read_window(self.spec, window, untimed=True)  # rows without a timestamp too: the suite counts them
        return Validated(validate_frame(data.frame, self.spec, window, data.untimed_examples), data.files)

    def drift(self, reference: pd.DataFrame, window: Window) -> Drifted:
        spec = self.spec
        current = typed_frame(self.read_window(window, [*spec.features.columns, spec.target]).frame, spec)
        return Drifted(compute_drift(reference, current, spec), current, {"computed": "on the worker, every row"})

    def build_partition(self, window: Window, path: Path) -> Partition:
        spec = self.spec
        data = self.read_window(window, [*spec.features.columns, spec.target])
        return build_partition(data.frame, spec, window, path)
