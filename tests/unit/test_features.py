"""Features: deterministic, leak-free at the window boundaries, written atomically, served by the same pipeline."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from retrain import features
from retrain.errors import DataError, SpecError
from retrain.features import (
    build_pipeline,
    clean_stale_temporaries,
    content_hash,
    estimator_params,
    prepare_frame,
    read_partition,
    reference_sample,
    split,
    write_partition,
)
from retrain.spec import load_spec
from retrain.window import Window
from tests.support import REPO

SPEC = load_spec(REPO / "include" / "models" / "churn.yaml")


def frame_at(stamps: list[str]) -> pd.DataFrame:
    n = len(stamps)
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "event_time": pd.to_datetime(stamps, utc=True, format="ISO8601"),
            "tenure_months": rng.random(n) * 10,
            "monthly_spend": rng.random(n) * 50,
            "support_tickets": rng.integers(0, 3, n).astype(float),
            "sessions_last_week": rng.integers(0, 9, n).astype(float),
            "plan": rng.choice(["basic", "premium"], n),
            "region": rng.choice(["north", "south"], n),
            "churned": rng.integers(0, 2, n),
        }
    )


def test_window_bounds_follow_the_spec():
    window = Window.ending(dt.datetime(2025, 5, 1, 2, 30, tzinfo=dt.UTC), SPEC.data)
    assert window.end == dt.datetime(2025, 5, 1, tzinfo=dt.UTC)
    assert window.start == dt.datetime(2025, 3, 6, tzinfo=dt.UTC)
    assert window.holdout_start == dt.datetime(2025, 4, 24, tzinfo=dt.UTC)
    assert window.partition == "end_date=2025-05-01"
    assert Window.from_dict(window.to_dict()) == window


def test_split_has_no_leakage_at_the_boundaries():
    window = Window.ending(dt.date(2025, 5, 1), SPEC.data)
    stamps = [
        "2025-03-05T23:59:59.999999Z",  # before the window
        "2025-03-06T00:00:00Z",  # first instant of the window: training
        "2025-04-23T23:59:59.999999Z",  # last instant of training
        "2025-04-24T00:00:00Z",  # first instant of the holdout
        "2025-04-30T23:59:59.999999Z",  # last instant of the holdout
        "2025-05-01T00:00:00Z",  # the window end itself is excluded
    ]
    train, holdout = split(prepare_frame(frame_at(stamps), SPEC), SPEC, window)
    assert train["event_time"].tolist() == pd.to_datetime(stamps[1:3], utc=True, format="ISO8601").tolist()
    assert holdout["event_time"].tolist() == pd.to_datetime(stamps[3:5], utc=True, format="ISO8601").tolist()
    assert train["event_time"].max() < window.holdout_start <= holdout["event_time"].min()
    assert holdout["event_time"].max() < window.end


def test_prepare_frame_is_deterministic_whatever_the_input_order():
    frame = frame_at([f"2025-04-{d:02d}T0{h}:00:00Z" for d in range(1, 20) for h in range(3)])
    shuffled = frame.sample(frac=1.0, random_state=3)
    a, b = prepare_frame(frame, SPEC), prepare_frame(shuffled, SPEC)
    pd.testing.assert_frame_equal(a, b)
    assert content_hash(a) == content_hash(b)
    changed = a.copy()
    changed.loc[0, "monthly_spend"] += 1
    assert content_hash(changed) != content_hash(a)


def test_rows_with_the_same_timestamp_are_ordered_by_content_not_by_arrival():
    frame = frame_at(["2025-04-01T00:00:00Z"] * 40)
    frame["monthly_spend"] = range(40)
    a = prepare_frame(frame, SPEC)
    b = prepare_frame(frame.iloc[::-1], SPEC)
    pd.testing.assert_frame_equal(a, b)
    assert sorted(a["monthly_spend"]) == list(range(40))


def test_prepare_frame_refuses_non_numeric_feature():
    frame = frame_at(["2025-04-01T00:00:00Z"])
    frame["tenure_months"] = ["ten"]
    with pytest.raises(ValueError, match="ten"):
        prepare_frame(frame, SPEC)


def test_partition_is_written_atomically_and_replaced_on_rerun(tmp_path):
    window = Window.ending(dt.date(2025, 5, 1), SPEC.data)
    frame = prepare_frame(frame_at(["2025-04-01T00:00:00Z", "2025-04-25T00:00:00Z"]), SPEC)
    train, holdout = split(frame, SPEC, window)
    target = tmp_path / "features" / window.partition
    first = write_partition(train, holdout, target, window)
    second = write_partition(train, holdout, target, window)
    assert first.input_hash == second.input_hash
    assert sorted(p.name for p in (tmp_path / "features").iterdir()) == [window.partition]
    loaded_train, loaded_holdout, manifest = read_partition(target)
    pd.testing.assert_frame_equal(loaded_train, train)
    pd.testing.assert_frame_equal(loaded_holdout, holdout)
    assert manifest["input_hash"] == first.input_hash and manifest["window"] == window.to_dict()
    labels_only, same_holdout, _ = read_partition(target, train_columns=[SPEC.target])
    assert list(labels_only.columns) == [SPEC.target]  # evaluate reads only the labels of the training rows
    pd.testing.assert_series_equal(labels_only[SPEC.target], train[SPEC.target])
    pd.testing.assert_frame_equal(same_holdout, holdout)


def test_a_killed_writer_leaves_nothing_under_the_final_path(tmp_path, monkeypatch):
    window = Window.ending(dt.date(2025, 5, 1), SPEC.data)
    frame = prepare_frame(frame_at(["2025-04-01T00:00:00Z", "2025-04-25T00:00:00Z"]), SPEC)
    train, holdout = split(frame, SPEC, window)
    target = tmp_path / window.partition

    def die(*args, **kwargs):
        raise KeyboardInterrupt("worker killed")

    monkeypatch.setattr(features.pq.ParquetWriter, "write_table", die)
    with pytest.raises(KeyboardInterrupt):
        write_partition(train, holdout, target, window)
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_partition_without_manifest_is_not_read(tmp_path):
    (tmp_path / "end_date=2025-05-01").mkdir()
    (tmp_path / "end_date=2025-05-01" / "train.parquet").write_bytes(b"half")
    with pytest.raises(DataError, match="no complete feature partition"):
        read_partition(tmp_path / "end_date=2025-05-01")


def test_stale_temporaries_are_cleaned(tmp_path):
    (tmp_path / ".tmp-end_date=2025-05-01-abc").mkdir()
    (tmp_path / "end_date=2025-04-30").mkdir()
    removed = clean_stale_temporaries(tmp_path)
    assert [p.name for p in removed] == [".tmp-end_date=2025-05-01-abc"]
    assert [p.name for p in tmp_path.iterdir()] == ["end_date=2025-04-30"]


def test_estimator_params_are_checked_against_the_signature():
    assert estimator_params(SPEC)["random_state"] == SPEC.model.random_state
    assert estimator_params(SPEC, {"max_iter": 5})["max_iter"] == 5
    with pytest.raises(
        SpecError, match=r"model.params.n_trees: not a parameter of sklearn.ensemble.HistGradientBoostingClassifier"
    ):
        estimator_params(SPEC, {"n_trees": 5})


def test_pipeline_serves_raw_rows_including_unseen_and_missing_categories():
    frame = prepare_frame(frame_at([f"2025-04-{d:02d}T00:00:00Z" for d in range(1, 29)] * 5), SPEC)
    X, y = frame[list(SPEC.features.columns)], frame["churned"]
    pipeline = build_pipeline(SPEC, {"max_iter": 10}).fit(X, y)
    serving = X.head(3).copy()
    serving.loc[serving.index[0], "plan"] = "enterprise"  # unseen at training time
    serving.loc[serving.index[1], "region"] = np.nan
    serving.loc[serving.index[2], "monthly_spend"] = np.nan
    proba = pipeline.predict_proba(serving)
    assert proba.shape == (3, 2) and np.isfinite(proba).all()


def test_reference_sample_is_seeded_and_bounded():
    frame = prepare_frame(frame_at([f"2025-04-{d:02d}T00:00:00Z" for d in range(1, 29)] * 10), SPEC)
    small = SPEC.model_copy(update={"drift": SPEC.drift.model_copy(update={"reference_sample_rows": 100})})
    a, b = reference_sample(frame, small), reference_sample(frame, small)
    assert len(a) == 100 and list(a.columns) == [*SPEC.features.columns, SPEC.target]
    pd.testing.assert_frame_equal(a, b)
    json.dumps(a.head(1).to_dict())


def test_categories_stay_compact_strings_and_serve_object_strings_alike(tmp_path):
    """Categories are Arrow-backed `str` (no Python object per value) from the window to the partition,
    and a pipeline fitted on them predicts the same for the object strings a serving client sends."""
    frame = frame_at([f"2025-04-{d:02d}T00:00:00Z" for d in range(1, 29)] * 5)
    frame["plan"] = frame["plan"].astype(object)
    frame.loc[frame.index[::9], "plan"] = None
    frame["region"] = frame["region"].astype("category")
    prepared = prepare_frame(frame, SPEC)
    for column in SPEC.features.categorical:
        assert prepared[column].dtype == "str", column
    assert prepared["plan"].isna().sum() == len(frame.index[::9])
    window = Window.ending(dt.date(2025, 5, 1), SPEC.data)
    write_partition(*split(prepared, SPEC, window), tmp_path / window.partition, window)
    train, holdout, _ = read_partition(tmp_path / window.partition)
    assert [train[c].dtype for c in SPEC.features.categorical] == ["str", "str"]
    X, y = train[list(SPEC.features.columns)], train["churned"]
    pipeline = build_pipeline(SPEC, {"max_iter": 10}).fit(X, y)
    served = holdout[list(SPEC.features.columns)].astype({c: object for c in SPEC.features.categorical})
    served = served.where(served.notna(), None)
    assert served["plan"].dtype == object
    np.testing.assert_array_equal(
        pipeline.predict_proba(served), pipeline.predict_proba(holdout[list(SPEC.features.columns)])
    )


@pytest.mark.parametrize("rows_per_chunk", [7, 100_000])
def test_build_partition_writes_what_prepare_split_and_write_do(tmp_path, monkeypatch, rows_per_chunk):
    """The operator's one-pass path against the in-memory one: same rows, dtypes, files and hashes,
    whatever the input order and the chunk size (7 rows: many chunks, a last short one)."""
    monkeypatch.setattr(features, "CHUNK_ROWS", rows_per_chunk)
    window = Window.ending(dt.date(2025, 5, 1), SPEC.data)
    stamps = [f"2025-{m:02d}-{d:02d}T0{h}:00:00Z" for m in (3, 4, 5) for d in range(1, 29) for h in range(2)]
    frame = frame_at(stamps).sample(frac=1.0, random_state=4).reset_index(drop=True)
    frame.loc[frame.index[::11], "plan"] = None
    frame.loc[frame.index[::13], "monthly_spend"] = np.nan
    expected = write_partition(*split(prepare_frame(frame, SPEC), SPEC, window), tmp_path / "a", window)
    built = features.build_partition(frame, SPEC, window, tmp_path / "b")
    assert built.to_dict() | {"path": ""} == expected.to_dict() | {"path": ""}
    # March 6-28 and April 1-23 train, April 24-28 is the holdout; two rows a day
    assert built.train_rows == 2 * (23 + 23) and built.holdout_rows == 2 * 5
    for a, b in zip(read_partition(tmp_path / "a")[:2], read_partition(tmp_path / "b")[:2], strict=True):
        pd.testing.assert_frame_equal(a, b)
    if rows_per_chunk == 7:
        assert pq.ParquetFile(tmp_path / "b" / features.TRAIN_FILE).num_row_groups == -(-built.train_rows // 7)


def test_build_partition_refuses_an_empty_holdout_and_writes_nothing(tmp_path):
    window = Window.ending(dt.date(2025, 5, 1), SPEC.data)
    frame = frame_at([f"2025-04-{d:02d}T00:00:00Z" for d in range(1, 20)])
    with pytest.raises(DataError, match=r"has 19 training and 0 holdout rows; both must be non-empty"):
        features.build_partition(frame, SPEC, window, tmp_path / window.partition)
    assert list(tmp_path.iterdir()) == []


def test_build_partition_names_a_column_that_does_not_take_its_type(tmp_path):
    window = Window.ending(dt.date(2025, 5, 1), SPEC.data)
    frame = frame_at(["2025-04-01T00:00:00Z", "2025-04-25T00:00:00Z"])
    frame["tenure_months"] = ["ten", 3]
    with pytest.raises(DataError, match=r"cannot build features for window .*ten"):
        features.build_partition(frame, SPEC, window, tmp_path / window.partition)
