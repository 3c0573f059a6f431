"""Great Expectations validation, for real, on the demo data and on each kind of bad input."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest

from retrain.demo_data import generate
from retrain.errors import SpecError
from retrain.spec import load_spec
from retrain.validation import failure_message, render_html, validate_frame
from retrain.window import Window
from tests.support import REPO

SPEC = load_spec(REPO / "include" / "models" / "churn.yaml")
SMALL = SPEC.model_copy(update={"validation": SPEC.validation.model_copy(update={"min_rows": 100})})
WINDOW = Window.ending(dt.date(2025, 5, 1), SPEC.data)


@pytest.fixture(scope="module")
def good():
    return generate(dt.date(2025, 3, 6), dt.date(2025, 5, 1), rows_per_day=20)


def with_policy(spec, extra_columns):
    return spec.model_copy(update={"data": spec.data.model_copy(update={"extra_columns": extra_columns})})


def test_good_data_passes(good):
    outcome = validate_frame(good, SMALL, WINDOW)
    assert outcome.success, failure_message(outcome)
    assert outcome.rows == len(good)
    assert len(outcome.results) >= 14
    json.dumps(outcome.to_dict(), default=str)


def test_missing_column_is_named(good):
    outcome = validate_frame(good.drop(columns=["plan"]), SMALL, WINDOW)
    assert not outcome.success
    assert "FAILED expect_column_to_exist(column='plan'): column 'plan' is missing from the data" in failure_message(
        outcome
    )


def test_extra_column_fails_or_warns_per_policy(good):
    frame = good.assign(debug_flag=1)
    failing = validate_frame(frame, with_policy(SMALL, "fail"), WINDOW)
    assert not failing.success and "expect_table_columns_to_match_set" in failure_message(failing)
    warning = validate_frame(frame, with_policy(SMALL, "warn"), WINDOW)
    assert warning.success and [w.type for w in warning.warnings] == ["expect_table_columns_to_match_set"]
    assert validate_frame(frame, SMALL, WINDOW).success  # allow


def test_wrong_dtype_is_a_failure_and_its_range_check_an_error(good):
    frame = good.assign(tenure_months=good["tenure_months"].astype(str))
    outcome = validate_frame(frame, SMALL, WINDOW)
    message = failure_message(outcome)
    assert "FAILED expect_column_values_to_be_in_type_list(column='tenure_months'" in message
    assert "ERROR expect_column_values_to_be_between(column='tenure_months'" in message
    assert "could not be evaluated" in message


def test_nulls_in_target(good):
    frame = good.copy()
    frame.loc[frame.index[:7], "churned"] = np.nan
    message = failure_message(validate_frame(frame, SMALL, WINDOW))
    assert "FAILED expect_column_values_to_not_be_null(column='churned'): 7 of" in message


def test_timestamp_outside_window(good):
    frame = good.copy()
    frame.loc[frame.index[0], "event_time"] = frame["event_time"].iloc[0] - dt.timedelta(days=400)
    assert "expect_column_values_to_be_between(column='event_time'" in failure_message(
        validate_frame(frame, SMALL, WINDOW)
    )


def test_empty_window(good):
    outcome = validate_frame(good.iloc[:0], SMALL, WINDOW)
    assert not outcome.success
    assert "the window has no rows (rule: validation.min_rows)" in failure_message(outcome)


def test_warn_severity_does_not_fail(good):
    frame = good.copy()
    frame.loc[frame.index[: len(frame) // 10], "monthly_spend"] = np.nan  # the spec's warn expectation: mostly 0.95
    outcome = validate_frame(frame, SMALL, WINDOW)
    assert outcome.success
    assert [w.kwargs.get("column") for w in outcome.warnings] == ["monthly_spend"]


def test_suite_files_and_unknown_expectations(good, tmp_path, monkeypatch):
    monkeypatch.setenv("RETRAIN_EXPECTATIONS_DIR", str(tmp_path))
    (tmp_path / "extra.json").write_text(json.dumps({"name": "extra", "expectations": [
        {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "plan", "value_set": ["basic"]},
         "meta": {"severity": "fail"}}]}))  # fmt: skip
    spec = SMALL.model_copy(update={"validation": SMALL.validation.model_copy(update={"suite_files": ("extra.json",)})})
    outcome = validate_frame(good, spec, WINDOW)
    assert not outcome.success
    assert any(r.source.endswith("extra.json") and not r.success for r in outcome.results)
    (tmp_path / "bad.json").write_text(json.dumps({"expectations": [{"type": "expect_the_moon", "kwargs": {}}]}))
    spec = SMALL.model_copy(update={"validation": SMALL.validation.model_copy(update={"suite_files": ("bad.json",)})})
    with pytest.raises(SpecError, match=r"bad.json: unknown Great Expectations expectation 'expect_the_moon'"):
        validate_frame(good, spec, WINDOW)


def test_report_lists_failures_first(good):
    frame = good.drop(columns=["region"])
    page = render_html(validate_frame(frame, SMALL, WINDOW), ["a.parquet"])
    assert "FAILED" in page and page.index("region") < page.index("pass")


def with_validation(spec, **fields):
    return spec.model_copy(update={"validation": spec.validation.model_copy(update=fields)})


def test_infinite_values_fail_on_their_column_and_nan_is_left_to_the_null_rules(good):
    """The default suite alone (no range the user wrote) refuses +/-inf, which training cannot take."""
    bare = with_validation(SMALL, expectations=(), suite_files=())
    frame = good.copy()
    frame.loc[frame.index[:2], "tenure_months"] = np.inf
    frame.loc[frame.index[5], "monthly_spend"] = -np.inf
    outcome = validate_frame(frame, bare, WINDOW)
    message = failure_message(outcome)
    assert not outcome.success
    finite = [r for r in outcome.failures if "finite" in (r.rule or "")]
    assert {r.column: r.observed for r in finite} == {
        "tenure_months": {"infinite_values": 2}, "monthly_spend": {"infinite_values": 1}
    }
    assert 'FAILED expect_column_values_to_be_finite(column=\'tenure_months\'): observed {"infinite_values": 2}' in message
    assert "(rule: numeric features must be finite" in message
    json.dumps(outcome.to_dict(), allow_nan=False)  # XCom and the reports stay strict JSON
    assert good["monthly_spend"].isna().any()  # NaN alone passes: the demo data has holes
    assert validate_frame(good, bare, WINDOW).success
    empty = validate_frame(good.assign(monthly_spend=np.nan), bare, WINDOW)  # all null: that rule only
    assert [r.rule for r in empty.failures] == ["a feature must not be entirely null"]


@pytest.mark.parametrize("column", ["sessions_last_week", "plan"])
def test_a_feature_that_is_entirely_null_fails(good, column):
    frame = good.assign(**{column: None})
    outcome = validate_frame(frame, SMALL, WINDOW)
    assert not outcome.success
    failed = [r for r in outcome.failures if r.column == column]
    assert failed and any("entirely null" in (r.rule or "") for r in failed), failure_message(outcome)
    almost = good.copy()
    almost.loc[almost.index[1:], column] = None  # one value left: a sparse feature, not a dead one
    assert not [r for r in validate_frame(almost, SMALL, WINDOW).failures if "entirely null" in (r.rule or "")]


def test_duplicated_rows_beyond_the_threshold_fail_with_the_exact_count(good):
    doubled = pd.concat([good, good], ignore_index=True)
    outcome = validate_frame(doubled, SMALL, WINDOW)
    assert not outcome.success
    [duplicates] = [r for r in outcome.failures if "max_duplicate_fraction" in (r.rule or "")]
    assert (duplicates.unexpected_count, duplicates.element_count) == (len(good), 2 * len(good))
    assert "validation.max_duplicate_fraction 0.01" in failure_message(outcome)

    few = pd.concat([good, good.iloc[:5]], ignore_index=True)  # 5 repeats in ~1100 rows: under 1%
    assert validate_frame(few, SMALL, WINDOW).success
    strict = validate_frame(few, with_validation(SMALL, max_duplicate_fraction=0.0), WINDOW)
    assert [r.unexpected_count for r in strict.failures] == [5]
    off = validate_frame(doubled, with_validation(SMALL, max_duplicate_fraction=1.0), WINDOW)
    assert off.success


def test_rows_without_a_timestamp_are_judged_with_their_examples(good):
    frame = good.copy()
    frame["event_time"] = frame["event_time"].astype("datetime64[us, UTC]")
    frame.loc[frame.index[:3], "event_time"] = pd.NaT
    outcome = validate_frame(frame, SMALL, WINDOW, untimed_examples=("late.csv: 'yesterday'", "late.csv: null"))
    message = failure_message(outcome)
    assert not outcome.success
    assert "FAILED expect_column_values_to_not_be_null(column='event_time'): 3 of" in message
    assert "late.csv: 'yesterday'" in message and "validation.timestamp_null_tolerance" in message
    tolerant = validate_frame(frame, with_validation(SMALL, timestamp_null_tolerance=0.01), WINDOW)
    assert tolerant.success, failure_message(tolerant)


def test_an_infinite_observed_value_stays_strict_json(good):
    """A warning's observed mean over an infinite value is inf: the step's XCom output must still be JSON."""
    frame = good.copy()
    frame.loc[frame.index[0], "monthly_spend"] = np.inf
    outcome = validate_frame(frame, SMALL, WINDOW)
    [mean] = [r for r in outcome.results if r.type == "expect_column_mean_to_be_between"]
    assert not mean.success and mean.observed == "inf"
    json.dumps(outcome.to_dict(), allow_nan=False)
