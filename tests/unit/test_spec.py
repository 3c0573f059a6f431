"""The model spec is the public contract: valid specs parse, every invalid one names file, field and reason."""

from __future__ import annotations

import copy

import pytest
import yaml

from retrain.errors import SpecError
from retrain.spec import ModelSpec, load_spec, parse_spec
from tests.support import REPO

DEMO = yaml.safe_load((REPO / "include" / "models" / "churn.yaml").read_text())


def minimal() -> dict:
    return {
        "name": "demo_model",
        "data": {"uri": "include/data/demo/", "timestamp_column": "event_time"},
        "target": "label",
        "task": "classification",
        "features": {"numeric": ["f1", "f2"], "categorical": ["c1"]},
        "model": {"estimator": "sklearn.ensemble.HistGradientBoostingClassifier", "params": {"max_iter": 200}},
        "evaluation": {"metric": "roc_auc"},
    }


def test_demo_spec_parses_with_every_section():
    spec = load_spec(REPO / "include" / "models" / "churn.yaml")
    assert spec.dag_id == "retrain_churn"
    assert spec.features.columns == (
        "tenure_months",
        "monthly_spend",
        "support_tickets",
        "sessions_last_week",
        "plan",
        "region",
    )
    assert spec.input_columns[0] == "event_time" and spec.input_columns[-1] == "churned"
    assert spec.evaluation.slices == ("plan",)
    assert spec.promotion.min_improvement == 0.002


def test_minimal_spec_gets_documented_defaults():
    spec = parse_spec(minimal())
    assert spec.data.lookback_days == 56 and spec.data.holdout_days == 7
    assert spec.drift.retrain == "always"
    assert spec.schedule.cron == "0 2 * * *"
    assert spec.training.resources.memory_limit == "4Gi"
    assert spec.promotion.min_improvement == 0.0


def test_spec_is_frozen():
    spec = parse_spec(minimal())
    with pytest.raises(Exception, match="frozen"):
        spec.name = "other"  # type: ignore[misc]


def _set(document: dict, dotted: str, value) -> dict:
    document = copy.deepcopy(document)
    node = document
    *parents, leaf = dotted.split(".")
    for key in parents:
        node = node[key]
    if value is _DELETE:
        del node[leaf]
    else:
        node[leaf] = value
    return document


_DELETE = object()


@pytest.mark.parametrize(
    ("dotted", "value", "field", "reason"),
    [
        ("name", "Bad-Name", "name", "pattern"),
        ("target", _DELETE, "target", "Field required"),
        ("task", "clustering", "task", "classification"),
        ("data.lookback_days", "many", "data.lookback_days", "integer"),
        ("data.holdout_days", 60, "data", "holdout_days (60) must be smaller than lookback_days"),
        ("data.colour", "blue", "data.colour", "Extra inputs are not permitted"),
        ("features", {"numeric": [], "categorical": []}, "features", "at least one"),
        ("features.categorical", ["f1"], "features", "listed twice"),
        ("model.estimator", "os.system", "model.estimator", "not allowed"),
        ("model.estimator", "sklearn", "model.estimator", "pattern"),
        ("target", "f1", "target", "also listed as a feature"),
        ("evaluation.slices", ["f1"], "evaluation.slices", "must be categorical"),
        ("evaluation.metric", "rocauc", "evaluation.metric", "not a scikit-learn scorer name"),
        ("evaluation.metric", "r2", "evaluation.metric", "'r2' is a regression scorer; this spec's task is classification"),
        ("evaluation.secondary_metrics", ["accuracy", "f1_samples"], "evaluation.secondary_metrics.1", "multilabel"),
        ("training", {"resources": {"memory_limit": "lots"}}, "training.resources.memory_limit", "memory quantity"),
        ("drift", {"retrain": "sometimes"}, "drift.retrain", "always"),
        ("validation", {"expectations": [{"type": "drop_table"}]}, "validation.expectations.0.type", "pattern"),
    ],
)
def test_invalid_specs_name_the_field_and_reason(dotted, value, field, reason):
    with pytest.raises(SpecError) as error:
        parse_spec(_set(minimal(), dotted, value), source="models/demo_model.yaml")
    message = str(error.value)
    assert message.startswith("models/demo_model.yaml: invalid model spec")
    assert f"field '{field}'" in message
    assert reason in message


def test_not_a_mapping(tmp_path):
    path = tmp_path / "demo_model.yaml"
    path.write_text("- just\n- a list\n")
    with pytest.raises(SpecError, match=r"demo_model.yaml: a model spec must be a YAML mapping"):
        load_spec(path)


def test_broken_yaml_names_the_file(tmp_path):
    path = tmp_path / "demo_model.yaml"
    path.write_text("name: [unclosed\n")
    with pytest.raises(SpecError, match=r"demo_model.yaml: not valid YAML"):
        load_spec(path)


def test_yaml_is_loaded_safely(tmp_path):
    path = tmp_path / "demo_model.yaml"
    path.write_text("name: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(SpecError, match="not valid YAML"):
        load_spec(path)


def test_file_name_must_match_model_name(tmp_path):
    path = tmp_path / "other.yaml"
    path.write_text(yaml.safe_dump(minimal()))
    with pytest.raises(SpecError, match=r"other.yaml: field 'name' is 'demo_model' but the file is named"):
        load_spec(path)


def test_estimator_allowlist_is_extendable(monkeypatch):
    document = _set(minimal(), "model.estimator", "xgboost.XGBClassifier")
    with pytest.raises(SpecError, match="not allowed"):
        parse_spec(document)
    monkeypatch.setenv("RETRAIN_ALLOWED_ESTIMATOR_PREFIXES", "xgboost.")
    assert parse_spec(document).model.estimator == "xgboost.XGBClassifier"


def test_spec_round_trips_through_json():
    spec = parse_spec(DEMO)
    assert ModelSpec.model_validate_json(spec.model_dump_json()) == spec
