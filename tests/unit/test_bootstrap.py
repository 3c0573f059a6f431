"""The vectorised bootstrap gives the scorer's value on every resample, for every metric it vectorises."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.datasets import make_classification, make_regression
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LinearRegression, LogisticRegression

from retrain import bootstrap
from retrain.evaluation import (
    ClassLabels,
    _score,
    _scorer,
    cache_predictions,
    compare,
    paired_bootstrap,
    resample_scorer,
)
from retrain.spec import load_spec
from tests.support import REPO

SPEC = load_spec(REPO / "include" / "models" / "churn.yaml")
BINARY = ["accuracy", "balanced_accuracy", "precision", "recall", "f1", "jaccard", "roc_auc", "average_precision",
          "neg_log_loss"]  # fmt: skip
MULTICLASS = ["accuracy", "balanced_accuracy", "neg_log_loss"]
RESAMPLES = 40


def _classifier(kind: str, n: int, classes: int, seed: int, labels=None):
    X, y = make_classification(n, n_features=6, n_informative=3, n_classes=classes, random_state=seed)
    if labels is not None:
        y = np.asarray(labels, dtype=object if isinstance(labels[0], str) else None)[y]
    if kind == "ties":  # few distinct scores: the ranking metrics must count ties as scikit-learn does
        X = np.round(X[:, :2])
    model = RandomForestClassifier(n_estimators=5, random_state=0) if kind == "forest" else LogisticRegression()
    model.fit(X, y)
    return cache_predictions(model, X, True), np.asarray(y)


def _resamples(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, n, size=(RESAMPLES, n))


def _check_against_the_scorer(metric: str, cached, y: np.ndarray, labels: ClassLabels | None) -> None:
    scorer = _scorer(metric, labels)
    fast = bootstrap.block_scorer(metric, cached, y, None if labels is None else labels.positive)
    assert fast is not None, f"{metric} is not vectorised"
    index = _resamples(len(y))
    vectorised = fast(index)
    expected = [_score(scorer, cached, rows, y) for rows in index]
    finite = [i for i, v in enumerate(vectorised) if math.isfinite(v)]
    assert len(finite) >= 0.9 * RESAMPLES, f"{metric}: the vectorised form gave up on most resamples"
    for i in finite:
        assert expected[i] is not None, f"{metric}: resample {i} is undefined for the scorer"
        assert vectorised[i] == pytest.approx(expected[i], rel=1e-9, abs=1e-12), (metric, i)
    # NaN hands the resample to the scorer: together they are the scorer, undefined cases included.
    combined = resample_scorer(scorer, metric, cached, y, labels)(index)
    assert combined == pytest.approx(expected, rel=1e-9, abs=1e-12) if None not in expected else combined == expected


@pytest.mark.parametrize("metric", BINARY)
@pytest.mark.parametrize("kind", ["linear", "forest", "ties"])
def test_binary_metrics_equal_the_scorer_on_0_1_labels(metric, kind):
    cached, y = _classifier(kind, 300, 2, seed=1)
    _check_against_the_scorer(metric, cached, y, ClassLabels((0, 1), 1))


@pytest.mark.parametrize("metric", BINARY)
@pytest.mark.parametrize("positive", ["benign", "malignant"])  # the first and the second sorted class
def test_binary_metrics_equal_the_scorer_on_text_labels_with_either_class_positive(metric, positive):
    cached, y = _classifier("linear", 300, 2, seed=2, labels=["benign", "malignant"])
    _check_against_the_scorer(metric, cached, y, ClassLabels(("benign", "malignant"), positive))


@pytest.mark.parametrize("metric", BINARY)
def test_binary_metrics_equal_the_scorer_on_boolean_labels(metric):
    cached, y = _classifier("forest", 300, 2, seed=3, labels=[False, True])
    _check_against_the_scorer(metric, cached, y, ClassLabels((False, True), True))


@pytest.mark.parametrize("metric", MULTICLASS)
@pytest.mark.parametrize("kind", ["linear", "forest"])
def test_multiclass_metrics_equal_the_scorer(metric, kind):
    cached, y = _classifier(kind, 400, 3, seed=4)
    _check_against_the_scorer(metric, cached, y, ClassLabels((0, 1, 2)))


@pytest.mark.parametrize("metric", MULTICLASS)
def test_a_class_missing_from_a_resample_is_handled_as_the_scorer_does(metric):
    """One row of class 2 in 300: about a third of the resamples miss it (balanced accuracy leaves it out,
    log loss is undefined there)."""
    X, y = make_classification(300, n_features=6, n_informative=3, n_classes=3, random_state=10)
    y = np.where(y == 2, 0, y)
    y[0] = 2
    cached = cache_predictions(LogisticRegression().fit(X, y), X, True)
    labels = ClassLabels((0, 1, 2))
    scorer = _scorer(metric, labels)
    index = _resamples(len(y), seed=2)
    expected = [_score(scorer, cached, rows, y) for rows in index]
    assert sum((index == 0).any(axis=1)) < RESAMPLES  # some resamples do miss the rare class
    combined = resample_scorer(scorer, metric, cached, y, labels)(index)
    assert [v is None for v in combined] == [v is None for v in expected]
    assert [v for v in combined if v is not None] == pytest.approx([v for v in expected if v is not None], rel=1e-9)


@pytest.mark.parametrize("metric", bootstrap.REGRESSION)
def test_regression_metrics_equal_the_scorer(metric):
    X, y = make_regression(300, n_features=5, noise=10.0, random_state=5)
    cached = cache_predictions(LinearRegression().fit(X[:, :3], y), X[:, :3], False)
    _check_against_the_scorer(metric, cached, y, None)


@pytest.mark.parametrize("metric", ["roc_auc", "neg_log_loss", "precision", "balanced_accuracy"])
def test_tiny_holdouts_hand_their_degenerate_resamples_to_the_scorer(metric):
    """12 rows: some resamples hold one class or no predicted positive; the scorer decides those."""
    cached, y = _classifier("linear", 12, 2, seed=6)
    scorer, labels = _scorer(metric, ClassLabels((0, 1), 1)), ClassLabels((0, 1), 1)
    index = _resamples(len(y), seed=1)
    expected = [_score(scorer, cached, rows, y) for rows in index]
    combined = resample_scorer(scorer, metric, cached, y, labels)(index)
    assert [v is None for v in combined] == [v is None for v in expected]
    assert [v for v in combined if v is not None] == pytest.approx([v for v in expected if v is not None], rel=1e-9)


def _bootstrap_by_the_scorer(champion, challenger, y, metric, resamples, confidence, seed, labels):
    """The bootstrap as it was: the scorer called on each resample, one resample drawn at a time."""
    scorer = _scorer(metric, labels)
    rng = np.random.default_rng(seed)
    differences = []
    for _ in range(resamples):
        index = rng.integers(0, len(y), size=len(y))
        a, b = _score(scorer, challenger, index, y), _score(scorer, champion, index, y)
        if a is not None and b is not None:
            differences.append(a - b)
    tail = (1 - confidence) / 2 * 100
    return float(np.mean(differences)), *np.percentile(differences, [tail, 100 - tail]), len(differences)


@pytest.mark.parametrize("metric", ["roc_auc", "average_precision", "neg_log_loss", "f1", "roc_auc_ovr", "f1_macro"])
def test_paired_bootstrap_draws_the_same_resamples_and_gives_the_same_interval(metric, monkeypatch):
    monkeypatch.setattr(bootstrap, "BLOCK_ELEMENTS", 1000)  # several blocks of 3 resamples
    X, y = make_classification(300, n_informative=3, random_state=7)
    good = cache_predictions(LogisticRegression().fit(X, y), X, True)
    weak = cache_predictions(LogisticRegression().fit(X[:, :1], y), X[:, :1], True)
    labels = ClassLabels((0, 1), 1)
    result = paired_bootstrap(weak, good, y, metric, 25, 0.9, seed=11, labels=labels)
    mean, low, high, count = _bootstrap_by_the_scorer(weak, good, y, metric, 25, 0.9, 11, labels)
    assert (result.mean_difference, result.low, result.high) == pytest.approx((mean, low, high), rel=1e-9, abs=1e-12)
    assert result.resamples == count == 25


def test_a_vectorised_form_that_disagrees_with_the_scorer_is_not_used(monkeypatch):
    cached, y = _classifier("linear", 200, 2, seed=8)
    monkeypatch.setattr(bootstrap, "_mean_over_rows", lambda per_row: lambda index: np.full(len(index), 0.5))
    scorer = _scorer("accuracy", ClassLabels((0, 1), 1))
    index = _resamples(len(y))
    combined = resample_scorer(scorer, "accuracy", cached, y, ClassLabels((0, 1), 1))(index)
    assert combined == pytest.approx([_score(scorer, cached, rows, y) for rows in index])


class _Counting(LogisticRegression):
    calls: dict[str, int] = {}

    def _count(self, name):
        _Counting.calls[name] = _Counting.calls.get(name, 0) + 1

    def predict(self, X):
        self._count("predict")
        return super().predict(X)

    def predict_proba(self, X):
        self._count("predict_proba")
        return super().predict_proba(X)

    def decision_function(self, X):
        self._count("decision_function")
        return super().decision_function(X)


def test_each_model_runs_only_the_prediction_its_metrics_need_and_only_once():
    import pandas as pd

    X, y = make_classification(400, n_features=4, random_state=9)
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(4)])
    champion, challenger = _Counting().fit(frame, y), _Counting().fit(frame, y)
    _Counting.calls = {}
    evaluation = SPEC.evaluation.model_copy(update={"metric": "roc_auc", "secondary_metrics": (), "slices": ()})
    spec = SPEC.model_copy(update={"evaluation": evaluation})
    compare(champion, challenger, frame, pd.Series(y), pd.Series(y), spec)
    assert _Counting.calls == {"decision_function": 2}  # roc_auc reads the decision function of each model
