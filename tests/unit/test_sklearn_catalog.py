"""The spec checks scorer names at parse time from a static table: it must be scikit-learn's own."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.metrics import get_scorer, get_scorer_names

from retrain.sklearn_catalog import (
    BINARY_ONLY_SCORERS,
    CLASSIFICATION_SCORERS,
    OTHER_SCORERS,
    POSITIVE_CLASS_SCORERS,
    REGRESSION_SCORERS,
    scorer_problem,
)


def test_the_tables_cover_every_scorer_of_the_installed_scikit_learn_once():
    tables = [CLASSIFICATION_SCORERS, REGRESSION_SCORERS, OTHER_SCORERS]
    assert set().union(*tables) == set(get_scorer_names())
    assert sum(len(t) for t in tables) == len(set(get_scorer_names()))


@pytest.mark.parametrize("name", sorted(CLASSIFICATION_SCORERS))
def test_each_classification_scorer_scores_a_binary_classifier(name):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(60, 2)), np.array([0, 1] * 30)
    model = DummyClassifier(strategy="stratified", random_state=0).fit(X, y)
    assert np.isfinite(get_scorer(name)(model, X, y)) or name.endswith("likelihood_ratio")


@pytest.mark.parametrize("name", sorted(REGRESSION_SCORERS))
def test_each_regression_scorer_scores_a_regressor(name):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(60, 2)), rng.uniform(1, 2, size=60)
    assert np.isfinite(get_scorer(name)(DummyRegressor().fit(X, y), X, y))


def test_problems_name_what_is_wrong():
    assert scorer_problem("roc_auc", "classification") is None
    assert "regression scorer" in scorer_problem("r2", "classification")
    assert "classification scorer" in scorer_problem("roc_auc", "regression")
    assert "clustering or multilabel" in scorer_problem("rand_score", "classification")
    assert "not a scikit-learn scorer name" in scorer_problem("rocauc", "classification")


def test_binary_only_scorers_are_those_that_refuse_three_classes_and_their_alternatives_do_not():
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression

    X, y = make_classification(300, n_classes=3, n_informative=4, random_state=0)
    model = LogisticRegression().fit(X, y)
    refused = set()
    for name in CLASSIFICATION_SCORERS:
        try:
            get_scorer(name)(model, X, y)
        except ValueError:
            refused.add(name)
    assert refused == set(BINARY_ONLY_SCORERS)
    for alternative in filter(None, BINARY_ONLY_SCORERS.values()):
        assert alternative in CLASSIFICATION_SCORERS and alternative not in refused


def test_positive_class_scorers_are_those_whose_value_changes_when_the_classes_swap():
    """Same predictions, the 0/1 encoding swapped (probabilities and decisions mirrored with it)."""
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression

    X, y = make_classification(400, weights=[0.7], flip_y=0.1, random_state=2)
    model = LogisticRegression().fit(X, y)
    swapped = LogisticRegression().fit(X, 1 - y)
    changed = {
        name for name in CLASSIFICATION_SCORERS
        if abs(get_scorer(name)(model, X, y) - get_scorer(name)(swapped, X, 1 - y)) > 1e-6
    }  # fmt: skip
    assert changed == POSITIVE_CLASS_SCORERS
