"""A spec or a suite file is configuration, never code: what Great Expectations would evaluate as an
expression (a row condition, a suite parameter) is refused before it reaches GX, and nothing runs."""

from __future__ import annotations

import copy
import datetime as dt
import json

import pytest
import yaml

from retrain.errors import SpecError
from retrain.spec import parse_spec
from tests.support import DEMO_SPEC, TASKS, files_under, registry_snapshot, run_dag, write_spec

pytestmark = pytest.mark.security

DEMO = yaml.safe_load(DEMO_SPEC.read_text())


def shell_payload(sentinel) -> str:
    """A pandas query expression that runs a shell command (it did, through GX's row_condition)."""
    return f'@pd.io.common.os.system("touch {sentinel}")'


def with_expectation(kwargs: dict) -> dict:
    document = copy.deepcopy(DEMO)
    document["validation"]["expectations"] = [{"type": "expect_column_values_to_not_be_null", "kwargs": kwargs}]
    return document


@pytest.mark.parametrize(
    "extra",
    [
        {"condition_parser": "pandas"},
        {"condition_parser": "great_expectations"},
        {},
    ],
    ids=["pandas-parser", "gx-parser", "no-parser"],
)
def test_a_row_condition_in_a_spec_is_refused_at_parse_time_and_runs_nothing(tmp_path, extra):
    sentinel = tmp_path / "ran"
    document = with_expectation({"column": "plan", "row_condition": shell_payload(sentinel), **extra})
    with pytest.raises(SpecError) as refused:
        parse_spec(document, source="hostile.yaml")
    assert "field 'validation.expectations.0.kwargs'" in str(refused.value)
    assert "row_condition" in str(refused.value) and "DataFrame.query" in str(refused.value)
    assert not sentinel.exists()


def test_a_structured_row_condition_is_refused_too(tmp_path):
    # GX builds a DataFrame.query string from the column name without escaping backticks.
    condition = {"type": "comparison", "column": {"name": "plan` + @pd.io.common.os.system('id') + `"},
                 "operator": "==", "parameter": 1}  # fmt: skip
    with pytest.raises(SpecError, match="row_condition"):
        parse_spec(with_expectation({"column": "plan", "row_condition": condition}), source="hostile.yaml")


def test_a_suite_parameter_expression_is_refused(tmp_path):
    kwargs = {"column": "tenure_months", "min_value": {"$PARAMETER": "9^9^9^9"}, "max_value": 10}
    document = with_expectation(kwargs)
    document["validation"]["expectations"][0]["type"] = "expect_column_values_to_be_between"
    with pytest.raises(SpecError, match=r"suite parameter \(\$PARAMETER\)"):
        parse_spec(document, source="hostile.yaml")


def hostile_suite(directory, sentinel) -> str:
    directory.mkdir(parents=True, exist_ok=True)
    suite = {"expectations": [{"type": "expect_column_values_to_not_be_null",
                               "kwargs": {"column": "plan", "row_condition": shell_payload(sentinel),
                                          "condition_parser": "pandas"}}]}  # fmt: skip
    (directory / "hostile_suite.json").write_text(json.dumps(suite))
    return "hostile_suite.json"


def test_a_row_condition_in_a_suite_file_is_refused_before_great_expectations_sees_it(tmp_path, monkeypatch):
    import pandas as pd

    from retrain.validation import validate_frame
    from retrain.window import Window
    from tests.support import DEMO_DATA

    sentinel = tmp_path / "ran"
    monkeypatch.setenv("RETRAIN_EXPECTATIONS_DIR", str(tmp_path / "suites"))
    document = copy.deepcopy(DEMO)
    document["validation"]["suite_files"] = [hostile_suite(tmp_path / "suites", sentinel)]
    spec = parse_spec(document)
    frame = pd.read_parquet(sorted(DEMO_DATA.glob("*.parquet"))[0])
    with pytest.raises(SpecError) as refused:
        validate_frame(frame, spec, Window.ending(frame["event_time"].max(), spec.data))
    assert "hostile_suite.json" in str(refused.value) and "row_condition" in str(refused.value)
    assert not sentinel.exists()


@pytest.mark.integration
def test_a_run_whose_suite_file_holds_a_row_condition_fails_at_validation_and_changes_nothing(
    guarded_model, tmp_path, monkeypatch
):
    """Through a real DAG run: validate_data fails at once, nothing after it runs, the command never ran,
    no partition or version is written and the champion stays."""
    from tests.support import artifacts

    _, registry = guarded_model
    sentinel = tmp_path / "ran"
    monkeypatch.setenv("RETRAIN_EXPECTATIONS_DIR", str(tmp_path / "suites"))
    (tmp_path / "specs").mkdir()
    hostile = write_spec(tmp_path / "specs", name="guarded", **{"validation.suite_files": [hostile_suite(tmp_path / "suites", sentinel)]})
    before, features_before = registry_snapshot(registry, "guarded"), files_under(artifacts("guarded") / "features")
    states, _ = run_dag(hostile, dt.date(2025, 5, 2))
    assert states == {TASKS[0]: "failed", **dict.fromkeys(TASKS[1:], "upstream_failed")}
    assert not sentinel.exists()
    assert registry_snapshot(registry, "guarded") == before
    assert files_under(artifacts("guarded") / "features") == features_before
