"""The spec checks scorer names at parse time from a static table: it must be scikit-learn's own."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.metrics import get_scorer, get_scorer_names

from retrain.sklearn_catalog import CLASSIFICATION_SCORERS, OTHER_SCORERS, REGRESSION_SCORERS, scorer_problem


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
