"""The spec's `scoring`, `monitoring` and `schedule.events` fields: defaults taken from the rest of the spec, and
every inconsistency named on the field to change."""

from __future__ import annotations

import copy

import pytest
import yaml

from retrain.errors import SpecError
from retrain.spec import load_spec, parse_spec
from tests.support import DEMO_SPEC

DEMO = yaml.safe_load(DEMO_SPEC.read_text())


def test_the_demo_spec_scores_monitors_and_listens_to_both_events():
    spec = load_spec(DEMO_SPEC)
    assert spec.schedule.events == ("data", "monitoring")
    assert spec.scoring.key_columns == ("customer_id",) and spec.scoring.input.timestamp_column == "event_time"
    labels = spec.monitoring.labels
    assert (labels.label_column, labels.key_columns, labels.timestamp_column) == ("churned", ("customer_id",), "event_time")
    assert spec.monitoring.metric == "neg_log_loss" and spec.monitoring.policy.max_drop == 0.1


def test_without_the_sections_nothing_changes():
    document = copy.deepcopy(DEMO)
    for key in ("scoring", "monitoring"):
        document.pop(key)
    document["schedule"].pop("events")
    spec = parse_spec(document)
    assert spec.scoring is None and spec.monitoring is None and spec.schedule.events == ()


def test_the_live_metric_defaults_to_the_evaluation_metric():
    document = copy.deepcopy(DEMO)
    document["monitoring"].pop("metric")
    assert parse_spec(document).monitoring.metric == "roc_auc"


def change(dotted: str, value) -> dict:
    document = copy.deepcopy(DEMO)
    node = document
    *parents, leaf = dotted.split(".")
    for key in parents:
        node = node[key]
    if value is None:
        node.pop(leaf)
    else:
        node[leaf] = value
    return document


@pytest.mark.parametrize(
    ("dotted", "value", "field", "reason"),
    [
        ("scoring", None, "monitoring", "add a scoring section"),
        ("monitoring.metric", "f1", "monitoring.metric", "must be one of the evaluation's metrics"),
        ("monitoring.metric", "accuracy", "monitoring.metric", "must be one of the evaluation's metrics"),
        ("monitoring.policy", {"max_drop": 0.1, "breaches": 6, "days": 5}, "monitoring.policy.breaches", "cannot fit in 5 days"),
        ("monitoring.policy", {"max_drop": 0.1, "days": 30}, "monitoring.policy.days", "each run reads 14"),
        ("monitoring.policy", {"breaches": 1, "days": 1}, "monitoring.policy", "give min_score"),
        ("monitoring.policy", {"max_drop": -1}, "monitoring.policy.max_drop", "greater than or equal to 0"),
        ("monitoring.labels", {"uri": "x", "key_columns": ["a", "b"]}, "monitoring.labels.key_columns", "one label column per scoring key"),
        ("monitoring.labels", {"delay_days": 1}, "monitoring.labels.uri", "name the data: monitoring.labels.uri (files)"),
        ("scoring.key_columns", ["churned"], "scoring.key_columns", "cannot be a key"),
        ("scoring.key_columns", ["customer_id", "customer_id"], "scoring.key_columns", "listed twice"),
        ("scoring.key_columns", [], "scoring.key_columns", "at least 1 item"),
        ("scoring.input", {"uri": ""}, "scoring.input.uri", "at least 1 character"),
        ("scoring.extra", 1, "scoring.extra", "Extra inputs are not permitted"),
        ("schedule.events", ["data", "drift"], "schedule.events.1", "'data' or 'monitoring'"),
        ("schedule.events", ["data", "data"], "schedule.events", "listed twice"),
        ("schedule.ready_file", "/data/_READY", None, None),  # valid: events has data
    ],
)
def test_loop_sections_are_checked_on_the_field_to_change(dotted, value, field, reason):
    document = change(dotted, value)
    if field is None:
        assert parse_spec(document).schedule.ready_file == "/data/_READY"
        return
    with pytest.raises(SpecError) as error:
        parse_spec(document, source="churn.yaml")
    message = str(error.value)
    assert message.startswith("churn.yaml: invalid model spec")
    assert f"field '{field}'" in message and reason in message, message


def test_a_ready_file_needs_data_events():
    document = change("schedule.events", ["monitoring"])
    document["schedule"]["ready_file"] = "/data/_READY"
    with pytest.raises(SpecError, match=r"field 'schedule.ready_file': a ready_file emits data events"):
        parse_spec(document)
