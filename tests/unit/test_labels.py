"""Every label type scikit-learn takes (text, booleans, categories, integers; binary and multiclass), layer
by layer: the spec, validation, features, evaluation (positive class, baseline, slices, bootstrap), drift,
the training job's metrics and the run report. Data: scikit-learn's own breast cancer and iris sets."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score, get_scorer

from retrain import features
from retrain.drift import compute_drift
from retrain.errors import DataError, SpecError
from retrain.evaluation import (
    DEFAULT_POSITIVE_RULE,
    CachedDecisionClassifier,
    cache_predictions,
    class_labels,
    compare,
    positive_label_tag,
)
from retrain.features import build_pipeline, feature_matrix, prepare_frame, read_partition
from retrain.report import render_run_report
from retrain.sklearn_catalog import CLASSIFICATION_SCORERS
from retrain.spec import parse_spec
from retrain.train import holdout_metrics, training_labels
from retrain.validation import failure_message, validate_frame
from retrain.window import Window
from tests.support.labelled import events, spec_document

END = dt.date(2025, 3, 29)  # a 28-day window inside the 30 days of events()


def spec_for(frame: pd.DataFrame, **evaluation):
    return parse_spec(spec_document("labels", "unused/", frame, **evaluation))


@pytest.fixture(scope="module")
def cancer() -> pd.DataFrame:
    return events("breast_cancer")


@pytest.fixture(scope="module")
def iris() -> pd.DataFrame:
    return events("iris")


def window_of(spec) -> Window:
    return Window.ending(END, spec.data)


def in_window(frame: pd.DataFrame, spec) -> pd.DataFrame:
    window = window_of(spec)
    stamps = frame["event_time"]
    return frame[(stamps >= window.start) & (stamps < window.end)].reset_index(drop=True)


def as_kind(frame: pd.DataFrame, kind: str) -> pd.DataFrame:
    """The breast cancer labels stored as each type a file can hold."""
    text = frame["label"].astype(str)
    stored = {
        "str": text.astype("str"),
        "object": text.astype(object),
        "category": text.astype("category"),
        "bool": text == "malignant",
        "int": (text == "malignant").astype("int64"),
        "float": (text == "malignant").astype(float),
    }[kind]
    return frame.assign(label=stored)


# --- the spec -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("declared", "kept"), [("yes", "yes"), (True, True), (1, 1), ("1", "1")])
def test_the_spec_keeps_the_positive_labels_type(cancer, declared, kept):
    spec = spec_for(cancer, positive_label=declared)
    assert spec.evaluation.positive_label == kept and type(spec.evaluation.positive_label) is type(kept)
    again = type(spec).model_validate_json(spec.model_dump_json())  # how the training job receives it
    assert type(again.evaluation.positive_label) is type(kept)


def test_the_spec_refuses_what_cannot_be_a_positive_label(cancer):
    with pytest.raises(SpecError, match=r"field 'evaluation\.positive_label': .*a class label is text, an integer or"):
        spec_for(cancer, positive_label=0.5)
    regression = spec_document("labels", "unused/", cancer, positive_label="yes")
    regression.update(task="regression", model={"estimator": "sklearn.linear_model.Ridge"})
    with pytest.raises(
        SpecError, match=r"field 'evaluation\.positive_label': a positive class needs task: classification"
    ):
        parse_spec(regression)


# --- validation -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["str", "object", "category", "bool", "int", "float"])
def test_every_label_type_passes_the_default_suite(cancer, kind):
    spec = spec_for(cancer, metric="roc_auc", secondary_metrics=["f1"])
    frame = as_kind(in_window(cancer, spec), kind)
    outcome = validate_frame(frame, spec, window_of(spec))
    assert outcome.success, failure_message(outcome)


def test_a_classification_target_must_hold_class_labels(cancer):
    spec = spec_for(cancer)
    frame = in_window(cancer, spec)
    frame["label"] = np.where(frame["label"] == "malignant", 0.5, 1.0)
    message = failure_message(validate_frame(frame, spec, window_of(spec)))
    assert "FAILED expect_column_values_to_be_class_labels(column='label'):" in message
    assert "e.g. [0.5, 0.5, 0.5]" in message and "rule: a classification target holds class labels" in message
    stamps = frame.assign(label=frame["event_time"])
    assert "expect_column_values_to_be_class_labels" in failure_message(validate_frame(stamps, spec, window_of(spec)))


def test_a_regression_target_must_be_numeric(cancer):
    document = spec_document("labels", "unused/", cancer)
    document.update(task="regression", model={"estimator": "sklearn.linear_model.Ridge"})
    spec = parse_spec(document)
    message = failure_message(validate_frame(in_window(cancer, spec), spec, window_of(spec)))
    assert "FAILED expect_column_values_to_be_in_type_list(column='label'" in message
    assert "rule: a regression target is numeric" in message


def test_a_positive_label_that_is_not_a_class_fails_validation_naming_the_field(cancer):
    spec = spec_for(cancer, positive_label="cancer")
    message = failure_message(validate_frame(in_window(cancer, spec), spec, window_of(spec)))
    assert "FAILED expect_column_distinct_values_to_contain_set(column='label', value_set=['cancer'])" in message
    assert "evaluation.positive_label 'cancer' (str) must be one of the target's classes" in message
    # YAML reads an unquoted yes as true: a boolean is not the text label "yes"
    answers = in_window(cancer, spec).assign(label=lambda f: np.where(f["label"] == "malignant", "yes", "no"))
    unquoted = spec_for(cancer, positive_label=True)
    message = failure_message(validate_frame(answers, unquoted, window_of(unquoted)))
    assert "evaluation.positive_label True (bool)" in message and "quote a label that is text" in message
    quoted = spec_for(cancer, positive_label="yes")
    assert validate_frame(answers, quoted, window_of(quoted)).success


def test_a_two_class_metric_on_three_classes_fails_validation_with_the_alternative(iris):
    spec = spec_for(iris, metric="roc_auc", secondary_metrics=["f1"])
    message = failure_message(validate_frame(in_window(iris, spec), spec, window_of(spec)))
    assert (
        "FAILED expect_column_unique_value_count_to_be_between(column='label', min_value=2, max_value=2): observed 3"
        in message
    )
    assert "roc_auc scores two classes only (for more: roc_auc_ovr)" in message
    assert "f1 scores two classes only (for more: f1_macro)" in message and "field evaluation.metric" in message
    multiclass = spec_for(iris, metric="roc_auc_ovr", secondary_metrics=["f1_macro", "average_precision"])
    assert validate_frame(in_window(iris, multiclass), multiclass, window_of(multiclass)).success


def test_a_window_with_a_single_class_fails(cancer):
    spec = spec_for(cancer, metric="accuracy")
    frame = in_window(cancer, spec)
    message = failure_message(validate_frame(frame[frame["label"] == "benign"], spec, window_of(spec)))
    assert "expect_column_unique_value_count_to_be_between(column='label', min_value=2): observed 1" in message


# --- features -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "dtype"),
    [("str", "str"), ("object", "str"), ("category", "str"), ("bool", "bool"), ("int", "int64"), ("float", "int64")],
)
def test_labels_keep_their_type_through_the_partition(cancer, tmp_path, kind, dtype):
    spec = spec_for(cancer)
    window = window_of(spec)
    frame = as_kind(cancer, kind)
    partition = features.build_partition(frame, spec, window, tmp_path / "p")
    train, holdout, _ = read_partition(partition.path)
    assert str(train["label"].dtype) == str(holdout["label"].dtype) == dtype
    assert str(prepare_frame(frame, spec)["label"].dtype) == dtype
    again = features.build_partition(frame.sample(frac=1.0, random_state=3), spec, window, tmp_path / "q")
    assert again.input_hash == partition.input_hash  # deterministic whatever the row order


def test_text_labels_hash_alike_however_the_file_stored_them(cancer, tmp_path):
    spec = spec_for(cancer)
    window = window_of(spec)
    hashes = {
        kind: features.build_partition(as_kind(cancer, kind), spec, window, tmp_path / kind).input_hash
        for kind in ("str", "object", "category")
    }
    assert len(set(hashes.values())) == 1, hashes


def test_fractional_labels_are_refused_by_features_too(cancer, tmp_path):
    spec = spec_for(cancer)
    frame = cancer.assign(label=np.where(cancer["label"] == "malignant", 0.5, 1.0))
    with pytest.raises(DataError, match=r"target 'label' has \d+ value\(s\) that are not class labels, e\.g\. \[0\.5"):
        features.build_partition(frame, spec, window_of(spec), tmp_path / "p")


# --- evaluation -----------------------------------------------------------------------------------------


def _recoded(cached: CachedDecisionClassifier, positive: str) -> CachedDecisionClassifier:
    """The same predictions with `positive` as 1 and the other class as 0: what scikit-learn scores by default."""
    classes = list(cached.classes)
    flip = classes.index(positive) == 0
    proba, decision = cached.response("predict_proba"), cached.response("decision_function")
    responses = {
        "predict": (cached.response("predict") == positive).astype(int),
        "predict_proba": proba[:, ::-1] if flip else proba,
        "decision_function": -decision if flip else decision,
    }
    return CachedDecisionClassifier(responses, np.array([0, 1]))


@pytest.mark.parametrize("positive", ["malignant", "benign"])
def test_every_scorer_on_text_labels_equals_scikit_learn_on_0_1_with_that_class_as_1(positive):
    X, y01 = make_classification(500, weights=[0.7], flip_y=0.1, random_state=2)
    y = np.where(y01 == 1, "malignant", "benign").astype(object)
    cached = cache_predictions(LogisticRegression().fit(X, y), X, True)
    rows = np.arange(len(y)).reshape(-1, 1)
    labels = class_labels(spec_for(events(), positive_label=positive), cached.classes)
    assert labels.positive == positive
    recoded, y_as_1 = _recoded(cached, positive), (y == positive).astype(int)
    for name in sorted(CLASSIFICATION_SCORERS):
        expected = get_scorer(name)(recoded, rows, y_as_1)
        assert labels.scorer(name)(cached, rows, y) == pytest.approx(expected, rel=1e-12), name


def test_the_default_positive_class_is_the_greater_of_the_two_sorted_classes(cancer):
    spec = spec_for(cancer)
    assert class_labels(spec, ["benign", "malignant"]).positive == "malignant"
    assert class_labels(spec, ["churned", "stayed"]).positive == "stayed"  # declare "churned" to count churn
    assert class_labels(spec, [False, True]).positive is True
    assert class_labels(spec, np.array([0, 1])).positive == 1
    assert class_labels(spec, np.array([0, 1])).rule == DEFAULT_POSITIVE_RULE
    assert class_labels(spec, ["setosa", "versicolor", "virginica"]).positive is None
    assert [positive_label_tag(v) for v in ("churned", True, 1, np.int64(1), None)] == [
        '"churned"',
        "true",
        "1",
        "1",
        "",
    ]


def test_a_positive_label_that_is_not_a_class_names_the_field(cancer):
    with pytest.raises(
        SpecError, match=r"field 'evaluation\.positive_label': 'cancer' \(str\) is not one of the classes"
    ):
        class_labels(spec_for(cancer, positive_label="cancer"), ["benign", "malignant"])
    with pytest.raises(SpecError, match=r"YAML reads yes/no/true/false unquoted as a boolean: quote the label"):
        class_labels(spec_for(cancer, positive_label=True), ["no", "yes"])
    with pytest.raises(SpecError, match=r"the data's label is 1 \(int\): write it with that type"):
        class_labels(spec_for(cancer, positive_label="1"), [0, 1])


def _fitted(frame: pd.DataFrame, spec):
    window = window_of(spec)
    train, holdout = features.split(prepare_frame(frame, spec), spec, window)
    X, y = feature_matrix(train, spec)
    return build_pipeline(spec).fit(X, y), train, holdout


@pytest.mark.parametrize(("kind", "positive"), [("str", "malignant"), ("str", "benign"), ("bool", True)])
def test_compare_scores_text_and_boolean_labels_with_the_positive_class(cancer, kind, positive):
    spec = spec_for(cancer, metric="roc_auc", secondary_metrics=["f1", "average_precision", "neg_log_loss"],
                    slices=["size_band"], positive_label=positive)  # fmt: skip
    frame = as_kind(cancer, kind)
    challenger, train, holdout = _fitted(frame, spec)
    champion = build_pipeline(spec, {"max_iter": 3}).fit(*feature_matrix(train, spec))
    X, y = feature_matrix(holdout, spec)
    result = compare(champion, challenger, X, y, train["label"], spec)
    expected_f1 = f1_score(y, challenger.predict(X), pos_label=positive)
    assert result.challenger.secondary["f1"] == pytest.approx(expected_f1)
    assert None not in (result.challenger.primary, result.challenger.secondary["average_precision"], result.baseline)
    assert result.champion.secondary["f1"] is not None and result.bootstrap.resamples == 20
    assert set(result.challenger.slices["size_band"]) <= {"small", "medium", "large"}
    document = result.to_dict()
    assert document["positive_label"] == positive and document["positive_label_rule"].startswith("declared")
    assert json.loads(json.dumps(document, allow_nan=False))["classes"] == sorted({positive, *document["classes"]})
    # the training job's holdout metrics use the same positive class
    labels = training_labels(spec, train["label"])
    metrics = holdout_metrics(challenger, X, y, spec, labels)
    assert metrics["f1"] == pytest.approx(result.challenger.secondary["f1"])
    assert metrics["roc_auc"] == pytest.approx(result.challenger.primary)


def test_the_positive_class_changes_what_f1_measures(cancer):
    scores = {}
    for positive in ("malignant", "benign"):
        spec = spec_for(cancer, metric="f1", positive_label=positive)
        challenger, train, holdout = _fitted(cancer, spec)
        scores[positive] = compare(None, challenger, *feature_matrix(holdout, spec), train["label"], spec)
    assert scores["malignant"].challenger.primary != scores["benign"].challenger.primary
    # the majority baseline predicts "benign" everywhere: no malignant case found, every benign one
    assert scores["malignant"].baseline == 0.0 and scores["benign"].baseline > 0.7


def test_multiclass_text_labels_score_with_multiclass_metrics_and_refuse_two_class_ones(iris, tmp_path):
    spec = spec_for(iris, metric="roc_auc_ovr", secondary_metrics=["f1_macro", "accuracy", "average_precision"])
    challenger, train, holdout = _fitted(iris, spec)
    X, y = feature_matrix(holdout, spec)
    result = compare(challenger, challenger, X, y, train["label"], spec)
    assert result.challenger.primary > 0.9 and result.baseline == pytest.approx(0.5)
    assert result.to_dict()["classes"] == ["setosa", "versicolor", "virginica"]
    assert result.to_dict()["positive_label"] is None and result.bootstrap.low == 0.0
    two_class = spec_for(iris, metric="roc_auc")
    with pytest.raises(
        SpecError,
        match=r"field 'evaluation\.metric': 'roc_auc' scores two classes only and the target has 3 .* use 'roc_auc_ovr'",
    ):
        compare(None, challenger, X, y, train["label"], two_class)
    with pytest.raises(Exception, match=r"the training set does not fit the spec: field 'evaluation\.metric'"):
        training_labels(two_class, train["label"])


def test_the_run_report_shows_labels_as_escaped_text(cancer):
    spec = spec_for(cancer, positive_label="<b>malignant</b>")
    frame = cancer.assign(label=cancer["label"].str.replace("malignant", "<b>malignant</b>"))
    challenger, train, holdout = _fitted(frame, spec)
    comparison = compare(None, challenger, *feature_matrix(holdout, spec), train["label"], spec).to_dict()
    summary = {"model": "m", "decision": {"promote": True, "reasons": []}, "metric_table": {}, "metric": "roc_auc",
               "challenger_version": "1", "window": "w", "run_id": "r", "comparison": comparison}  # fmt: skip
    page = render_run_report(summary, [])
    assert "positive class <code>&quot;&lt;b&gt;malignant&lt;/b&gt;&quot;</code>" in page
    assert "<b>malignant</b>" not in page


# --- drift ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["str", "bool"])
def test_the_label_drifts_as_a_category_whatever_its_type(cancer, kind):
    spec = spec_for(cancer)
    frame = features.typed_frame(as_kind(cancer, kind), spec)
    positive = frame["label"].iloc[0]
    shifted = pd.concat([frame[frame["label"] == positive]] * 5 + [frame], ignore_index=True)
    report = compute_drift(frame, shifted, spec)
    [label] = [c for c in report.columns if c.role == "label"]
    assert (label.kind, label.test) == ("categorical", "chi2") and label.drifted and report.label_drifted
    assert not compute_drift(frame, frame, spec).label_drifted
