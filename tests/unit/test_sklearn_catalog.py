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
    estimator_entry,
    estimator_problem,
    scorer_problem,
    value_matches,
)
from tests.support import REPO


def table_estimators() -> list[str]:
    from retrain.sklearn_catalog import _estimator_lines

    return [path for path in _estimator_lines() if "tasks" in (estimator_entry(path) or {})]


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


def test_the_estimator_table_is_what_the_installed_scikit_learn_gives():
    """The committed table equals a fresh run of its generator (rerun scripts/sklearn_catalog.py after an upgrade)."""
    import runpy

    from retrain.sklearn_catalog import ESTIMATOR_TABLE

    generator = runpy.run_path(str(REPO / "scripts" / "sklearn_catalog.py"))
    assert ESTIMATOR_TABLE.read_text() == generator["render"](), "stale: run python scripts/sklearn_catalog.py"


def test_every_table_estimator_is_exported_at_its_path_and_is_of_its_task():
    import importlib

    from sklearn.utils import all_estimators

    classifiers = {cls for _, cls in all_estimators(type_filter="classifier")}
    regressors = {cls for _, cls in all_estimators(type_filter="regressor")}
    for path in table_estimators():
        module, _, name = path.rpartition(".")
        cls = getattr(importlib.import_module(module), name)
        tasks = estimator_entry(path)["tasks"]
        assert ("classification" in tasks) == (cls in classifiers) and ("regression" in tasks) == (cls in regressors)
        assert estimator_problem(path, tasks[0]) is None
    assert {"sklearn.ensemble.HistGradientBoostingClassifier", "sklearn.linear_model.Ridge"} <= set(table_estimators())


CANDIDATES = [None, True, False, 0, 1, -1, 2, 3, 0.5, 1.5, -0.5, 1e3, "auto", "balanced", "sqrt", "rbf", "squared_error",
              "log_loss", "x", [1, 2], [0.5], {"a": 1}, float("inf")]  # fmt: skip


def deliberately_stricter(value, alternatives) -> bool:
    """Plain values scikit-learn takes that the table refuses on purpose: a boolean for a number, a
    non-finite number, folds or arrays given as a mapping or a list of splits."""
    kinds = {a[0] for a in alternatives}
    if isinstance(value, bool):
        return True
    if isinstance(value, float) and value == float("inf"):
        return "inf" not in kinds
    return isinstance(value, (list, dict)) and ("cv" in kinds or isinstance(value, dict))


def test_what_the_table_accepts_scikit_learn_accepts_and_the_reverse_for_plain_values():
    """For every parameter of every table estimator and a set of plain values (what YAML or JSON can give):
    nothing the table accepts is refused by scikit-learn's own validation, and what scikit-learn accepts
    the table accepts too, except where it is stricter on purpose."""
    import importlib

    from sklearn.utils._param_validation import InvalidParameterError, validate_parameter_constraints

    accepted_only_by_us, refused_by_us = [], []
    for path in table_estimators():
        module, _, name = path.rpartition(".")
        cls = getattr(importlib.import_module(module), name)
        for param, alternatives in estimator_entry(path)["params"].items():
            constraints = {param: cls._parameter_constraints[param]}
            for value in CANDIDATES:
                ours = any(value_matches(value, a) for a in alternatives)
                try:
                    validate_parameter_constraints(constraints, {param: value}, caller_name=name)
                    theirs = True
                except InvalidParameterError:
                    theirs = False
                if ours and not theirs:
                    accepted_only_by_us.append((path, param, value))
                elif theirs and not ours and not deliberately_stricter(value, alternatives):
                    refused_by_us.append((path, param, value))
    assert accepted_only_by_us == []
    assert refused_by_us == []


def test_estimator_problems_name_what_is_wrong():
    assert "is a regressor" in estimator_problem("sklearn.linear_model.Ridge", "classification")
    assert "not a classifier" in estimator_problem("sklearn.cluster.KMeans", "classification")
    assert "did you mean sklearn.linear_model.LogisticRegression" in estimator_problem(
        "sklearn.linear_model._logistic.LogisticRegression", "classification"
    )


def test_the_estimator_table_ships_with_the_package():
    """The images install the package with `pip install .`: the table must be package data."""
    import tomllib

    from retrain.sklearn_catalog import ESTIMATOR_TABLE

    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert ESTIMATOR_TABLE.name in pyproject["tool"]["setuptools"]["package-data"]["retrain"]
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
