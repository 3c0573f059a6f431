"""Scoring's domain: the rows of a day, the feature part of the suite, and the prediction partition (atomic,
idempotent for the same version and rows, replaced by a new champion, refused when corrupt)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from retrain.errors import DataError
from retrain.features import build_pipeline
from retrain.scoring import (
    PREDICTIONS_FILE,
    day_window,
    feature_frame,
    predict,
    prediction_path,
    read_day_rows,
    read_predictions,
    rows_hash,
    rows_view,
    scored_days,
    write_predictions,
)
from retrain.spec import parse_spec
from retrain.validation import feature_suite, validate_frame
from tests.support import DEMO_SPEC

DAY = dt.date(2025, 6, 2)


@pytest.fixture
def spec(tmp_path, monkeypatch):
    import yaml

    monkeypatch.setenv("RETRAIN_ARTIFACTS_ROOT", str(tmp_path / "artifacts"))
    document = yaml.safe_load(DEMO_SPEC.read_text())
    document["scoring"]["input"]["uri"] = str(tmp_path / "rows")
    document["monitoring"]["labels"]["uri"] = str(tmp_path / "labels")
    return parse_spec(document)


def rows(n: int = 40, day: dt.date = DAY, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "event_time": pd.Timestamp(day, tz="UTC") + pd.to_timedelta(rng.integers(0, 86_400, n), unit="s"),
            "customer_id": np.arange(1000, 1000 + n),
            "tenure_months": rng.gamma(2.0, 12.0, n),
            "monthly_spend": rng.lognormal(3.5, 0.3, n),
            "support_tickets": rng.poisson(1.0, n).astype(float),
            "sessions_last_week": rng.poisson(6.0, n).astype(float),
            "plan": rng.choice(["basic", "standard", "premium"], n),
            "region": rng.choice(["north", "south", "east", "west"], n),
        }
    )


def model(spec):
    frame = rows(300, seed=1)
    y = (frame["support_tickets"] > 1).astype(int)
    return build_pipeline(spec).fit(frame[list(spec.features.columns)], y)


def land(spec, frame: pd.DataFrame, name: str = "rows.parquet") -> None:
    folder = rows_view(spec, spec.scoring.input).data.uri
    import pathlib

    pathlib.Path(folder).mkdir(parents=True, exist_ok=True)
    frame.to_parquet(pathlib.Path(folder) / name, index=False)


def test_the_rows_of_a_day_are_read_and_a_day_without_rows_is_a_clear_error(spec):
    land(spec, pd.concat([rows(30), rows(20, DAY + dt.timedelta(days=1), seed=2)]))
    assert len(read_day_rows(spec, DAY).frame) == 30
    with pytest.raises(DataError, match=r"rows: no rows to score for 2025-06-05 \(rule: scoring.input has rows"):
        read_day_rows(spec, dt.date(2025, 6, 5))


def test_a_file_of_rows_without_the_key_or_a_feature_is_named(spec):
    land(spec, rows().drop(columns=["customer_id", "plan"]), "export.parquet")
    with pytest.raises(DataError, match=r"export.parquet: missing column\(s\) \['customer_id', 'plan'\]"):
        read_day_rows(spec, DAY)


def test_the_feature_suite_has_no_target_rule_and_checks_the_keys(spec):
    view = rows_view(spec, spec.scoring.input)
    suite = feature_suite(view, day_window(DAY), ("customer_id",))
    assert not [d for d in suite if d.kwargs.get("column") == spec.target]
    assert {(d.type, d.kwargs.get("column")) for d in suite} >= {
        ("expect_column_values_to_be_unique", "customer_id"),
        ("expect_column_values_to_not_be_null", "customer_id"),
        ("expect_column_to_exist", "monthly_spend"),
    }
    good = rows()
    assert validate_frame(good, view, day_window(DAY), definitions=suite).success
    repeated = pd.concat([good, good.head(2)])
    outcome = validate_frame(repeated, view, day_window(DAY), definitions=suite)
    failed = {(r.type, r.column) for r in outcome.failures}
    assert failed == {("expect_column_values_to_be_unique", "customer_id")}


def test_rows_to_score_without_a_valid_timestamp_are_counted_by_the_suite_not_dropped(spec):
    """As for training data (issue 15): a null or unparseable timestamp is a row the suite judges."""
    frame = rows()
    frame["event_time"] = frame["event_time"].astype(str).astype(object)
    frame.loc[:4, "event_time"] = None
    frame.loc[5:6, "event_time"] = "yesterday"
    land(spec, frame)
    assert len(read_day_rows(spec, DAY).frame) == 33  # scoring itself never sees them
    data = read_day_rows(spec, DAY, untimed=True)
    assert data.untimed_rows == 7
    view = rows_view(spec, spec.scoring.input)
    window = day_window(DAY)
    suite = feature_suite(view, window, ("customer_id",))
    outcome = validate_frame(data.frame, view, window, data.untimed_examples, definitions=suite)
    assert not outcome.success
    assert {r.column for r in outcome.failures} == {"event_time"}


def test_predictions_hold_keys_prediction_probability_version_and_run(spec):
    frame, classes = predict(model(spec), rows().sample(frac=1, random_state=3), spec, "4", "manual__x")
    assert list(frame.columns) == ["customer_id", "prediction", "probability", "model_version", "run_id"]
    assert frame["customer_id"].is_monotonic_increasing  # key order, whatever order the files had
    assert classes == (0, 1) and frame["probability"].between(0, 1).all()
    assert set(frame["model_version"]) == {"4"} and set(frame["run_id"]) == {"manual__x"}


def test_a_numeric_feature_that_is_not_a_number_is_named(spec):
    with pytest.raises(DataError, match="numeric feature 'monthly_spend'"):
        feature_frame(rows().astype({"monthly_spend": object}).assign(monthly_spend="lots"), spec)


def write(spec, version: str, frame_rows: pd.DataFrame, run_id: str = "run-a"):
    frame, classes = predict(model(spec), frame_rows, spec, version, run_id)
    return write_predictions(frame, spec.name, DAY, version, rows_hash(frame_rows, ["customer_id"]), classes)


def test_same_version_same_rows_keeps_the_file_a_new_champion_replaces_it(spec):
    day_rows = rows()
    first = write(spec, "1", day_rows)
    assert first.written and first.replaced_version is None
    before = first.path.read_bytes()
    again = write(spec, "1", day_rows.sample(frac=1, random_state=5), run_id="run-b")  # same rows, other order
    assert not again.written and first.path.read_bytes() == before
    replaced = write(spec, "2", day_rows, run_id="run-c")
    assert replaced.written and replaced.replaced_version == "1"
    stored = read_predictions(spec.name, DAY)
    assert stored.version == "2" and set(stored.frame["run_id"]) == {"run-c"} and stored.classes == (0, 1)
    assert [p.name for p in first.path.parent.iterdir()] == [PREDICTIONS_FILE]  # no temporary left behind
    assert scored_days(spec.name, DAY - dt.timedelta(days=3), DAY) == [DAY]


def test_new_rows_for_the_same_version_replace_the_file(spec):
    write(spec, "1", rows())
    assert write(spec, "1", rows(41)).written


def test_a_failed_write_leaves_the_previous_file_whole(spec):
    write(spec, "1", rows())
    before = prediction_path(spec.name, DAY).read_bytes()
    broken = pd.DataFrame({"customer_id": [1], "prediction": [object()]})  # Arrow cannot store an object
    with pytest.raises(Exception):  # noqa: B017 - whatever Arrow raises, the file must be intact
        write_predictions(broken, spec.name, DAY, "2", "h")
    assert prediction_path(spec.name, DAY).read_bytes() == before
    assert read_predictions(spec.name, DAY).version == "1"
    assert [p.name for p in prediction_path(spec.name, DAY).parent.iterdir()] == [PREDICTIONS_FILE]


def test_a_corrupt_or_missing_prediction_file_is_a_clear_error_and_a_rescore_replaces_it(spec):
    with pytest.raises(DataError, match=r"no predictions for 2025-06-02 \(score_churn has not scored that day\)"):
        read_predictions(spec.name, DAY)
    path = prediction_path(spec.name, DAY)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(DataError, match=rf"{path}: not a readable prediction file"):
        read_predictions(spec.name, DAY)
    rescored = write(spec, "1", rows())
    assert rescored.written and "replaced_unreadable" in rescored.notes
    assert read_predictions(spec.name, DAY).version == "1"
