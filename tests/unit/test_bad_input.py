"""Unreadable data fails with the file, the column and the rule named."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pandas as pd
import pytest

from retrain.data import read_window
from retrain.demo_data import generate
from retrain.errors import DataError
from retrain.spec import load_spec
from retrain.window import Window
from tests.support import REPO

BASE = load_spec(REPO / "include" / "models" / "churn.yaml")
WINDOW = Window.ending(dt.date(2025, 5, 1), BASE.data)


def spec_at(uri: Path | str):
    return BASE.model_copy(update={"data": BASE.data.model_copy(update={"uri": str(uri)})})


@pytest.fixture
def folder(tmp_path) -> Path:
    generate(dt.date(2025, 4, 1), dt.date(2025, 4, 10), rows_per_day=10).to_parquet(tmp_path / "good.parquet")
    return tmp_path


def test_good_folder_reads_only_the_window(folder):
    data = read_window(spec_at(folder), WINDOW)
    assert len(data.frame) == 90 and data.files == (str(folder / "good.parquet"),)


def test_window_across_files_keeps_exactly_the_rows_inside(folder):
    """A file wholly inside the window is taken as it is; a CSV straddling both ends is cut to the window."""
    frame = generate(dt.date(2025, 2, 20), dt.date(2025, 5, 10), rows_per_day=4)
    frame.to_csv(folder / "straddling.csv", index=False)
    data = read_window(spec_at(folder), WINDOW)
    stamps = data.frame["event_time"]
    inside = (frame["event_time"] >= WINDOW.start) & (frame["event_time"] < WINDOW.end)
    assert len(data.frame) == 90 + int(inside.sum()) and str(stamps.dt.tz) == "UTC"
    assert stamps.min() >= WINDOW.start and stamps.max() < WINDOW.end
    assert data.files == (str(folder / "good.parquet"), str(folder / "straddling.csv"))


def test_corrupt_parquet(folder):
    (folder / "zz.parquet").write_bytes(os.urandom(2048))
    with pytest.raises(DataError, match=r"zz.parquet: cannot read as PARQUET \(file corrupt or truncated\?\)"):
        read_window(spec_at(folder), WINDOW)


def test_truncated_parquet(folder):
    whole = (folder / "good.parquet").read_bytes()
    (folder / "good.parquet").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(DataError, match=r"good.parquet: cannot read as PARQUET"):
        read_window(spec_at(folder), WINDOW)


def test_corrupt_csv(folder):
    (folder / "late.csv").write_bytes(b'event_time,churned\n\xff\xfe\x00garbage,"unterminated\n')
    with pytest.raises(DataError, match=r"late.csv: cannot read as CSV"):
        read_window(spec_at(folder), WINDOW)


def test_missing_timestamp_column(folder):
    pd.DataFrame({"when": ["2025-04-02"], "churned": [0]}).to_csv(folder / "late.csv", index=False)
    with pytest.raises(DataError, match=r"late.csv: missing timestamp column 'event_time'"):
        read_window(spec_at(folder), WINDOW)


def test_unreachable_uri(tmp_path):
    with pytest.raises(DataError, match=r"nowhere: data URI does not exist"):
        read_window(spec_at(tmp_path / "nowhere"), WINDOW)


def test_folder_without_data_files(tmp_path):
    (tmp_path / "README.txt").write_text("no data here")
    with pytest.raises(DataError, match=r"no CSV or Parquet files found"):
        read_window(spec_at(tmp_path), WINDOW)


def test_csv_and_parquet_mix(folder):
    extra = generate(dt.date(2025, 4, 20), dt.date(2025, 4, 21), rows_per_day=5)
    extra.to_csv(folder / "late.csv", index=False)
    data = read_window(spec_at(folder), WINDOW)
    assert len(data.frame) == 95
    assert data.frame["event_time"].dt.tz is not None


def test_a_file_missing_a_column_is_named_not_filled_with_nulls(folder):
    late = pd.read_parquet(folder / "good.parquet").tail(50)
    late.drop(columns=["monthly_spend"]).to_parquet(folder / "late.parquet", index=False)
    with pytest.raises(DataError, match=r"late\.parquet: missing column\(s\) \['monthly_spend'\]"):
        read_window(spec_at(folder), WINDOW)


def test_rows_without_a_valid_timestamp_reach_validation_and_nothing_else(folder):
    """Null and unparseable timestamps are counted with examples for validation; features never see them."""
    late = generate(dt.date(2025, 4, 2), dt.date(2025, 4, 3), rows_per_day=5)
    late["event_time"] = ["2025-04-02", "yesterday", None, "soon", "2025-04-03"]
    late.to_csv(folder / "late.csv", index=False)
    base = pd.read_parquet(folder / "good.parquet")
    base.loc[base.index[:4], "event_time"] = pd.NaT  # a typed Parquet column: read with predicate pushdown
    base.to_parquet(folder / "good.parquet")
    data = read_window(spec_at(folder), WINDOW, untimed=True)
    stamps = data.frame["event_time"]
    assert (data.untimed_rows, int(stamps.isna().sum())) == (7, 7)
    assert len(data.frame) == 90 + 2 + 3
    assert "late.csv: 'yesterday'" in data.untimed_examples and "late.csv: 'soon'" in data.untimed_examples
    assert any(e.endswith("late.csv: null") for e in data.untimed_examples)
    assert any(e.endswith("good.parquet: null") for e in data.untimed_examples)
    timed = read_window(spec_at(folder), WINDOW)
    assert not timed.frame["event_time"].isna().any() and len(timed.frame) == 86 + 2 and timed.untimed_rows == 0
