"""Evaluation math: cached predictions score exactly like the model; bootstrap and baseline behave."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_classification, make_regression
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import get_scorer

from retrain.errors import SpecError
from retrain.evaluation import baseline_score, cache_predictions, compare, paired_bootstrap
from retrain.spec import load_spec, parse_spec
from tests.support import REPO

SPEC = load_spec(REPO / "include" / "models" / "churn.yaml")


def _rows(n: int) -> np.ndarray:
    return np.arange(n).reshape(-1, 1)


@pytest.mark.parametrize(
    "metric", ["roc_auc", "average_precision", "neg_log_loss", "accuracy", "f1", "balanced_accuracy"]
)
@pytest.mark.parametrize("model", [LogisticRegression(), HistGradientBoostingClassifier(max_iter=20)])
def test_cached_predictions_score_exactly_like_the_model(metric, model):
    X, y = make_classification(400, random_state=0)
    model.fit(X, y)
    assert get_scorer(metric)(cache_predictions(model, X, True), _rows(len(y)), y) == pytest.approx(
        get_scorer(metric)(model, X, y), abs=1e-12
    )


@pytest.mark.parametrize("metric", ["r2", "neg_mean_absolute_error", "neg_root_mean_squared_error"])
def test_cached_predictions_for_regression(metric):
    X, y = make_regression(300, random_state=0)
    model = LinearRegression().fit(X, y)
    assert get_scorer(metric)(cache_predictions(model, X, False), _rows(len(y)), y) == pytest.approx(
        get_scorer(metric)(model, X, y)
    )


def test_bootstrap_is_seeded_and_sees_a_real_difference():
    X, y = make_classification(600, n_informative=3, random_state=1)
    good = cache_predictions(LogisticRegression().fit(X, y), X, True)
    weak = cache_predictions(LogisticRegression().fit(X[:, :1], y), X[:, :1], True)
    first = paired_bootstrap(weak, good, y, "roc_auc", 100, 0.95, seed=7)
    assert first == paired_bootstrap(weak, good, y, "roc_auc", 100, 0.95, seed=7)
    assert first.low > 0 and first.resamples == 100
    same = paired_bootstrap(good, good, y, "roc_auc", 50, 0.95, seed=7)
    assert same.low == same.high == 0.0
    assert paired_bootstrap(good, good, y, "roc_auc", 0, 0.95, seed=7) is None


def test_baseline_is_the_prior_for_classification_and_the_mean_for_regression():
    y = np.array([0, 0, 0, 1] * 50)
    assert baseline_score(pd.Series(y), None, y, SPEC) == 0.5
    regression = parse_spec({**SPEC.model_dump(mode="json"), "task": "regression", "evaluation": {"metric": "r2"},
                             "model": {"estimator": "sklearn.linear_model.Ridge"},
                             "monitoring": None})  # the demo's live metric (neg_log_loss) is a classifier's  # fmt: skip
    values = np.array([1.0, 2.0, 3.0, 4.0])
    assert baseline_score(pd.Series(values), None, values, regression) == pytest.approx(0.0)


def test_compare_scores_slices_and_is_json_safe():
    import json

    rng = np.random.default_rng(0)
    X = pd.DataFrame({c: rng.normal(size=500) for c in SPEC.features.numeric})
    X["plan"] = rng.choice(["basic", "premium", "standard"], 500)
    X["region"] = rng.choice(["north", "south"], 500)
    y = pd.Series((X["monthly_spend"] + rng.normal(size=500) > 0).astype(int))
    numeric = list(SPEC.features.numeric)
    challenger = LogisticRegression().fit(X[numeric], y)

    class OnNumeric:
        classes_ = challenger.classes_

        def __init__(self, model):
            self.model = model

        def predict(self, frame):
            return self.model.predict(frame[numeric])

        def predict_proba(self, frame):
            return self.model.predict_proba(frame[numeric])

    result = compare(OnNumeric(challenger), OnNumeric(challenger), X, y, y, SPEC)
    assert result.champion.primary == result.challenger.primary
    assert set(result.challenger.slices["plan"]) == {"basic", "premium", "standard"}
    assert result.bootstrap.low == 0.0
    json.dumps(result.to_dict(), allow_nan=False)


def test_unknown_metric_is_refused_when_the_spec_is_parsed():
    with pytest.raises(SpecError, match=r"field 'evaluation\.metric': 'log_loss' is not a scikit-learn scorer name"):
        parse_spec({**SPEC.model_dump(mode="json"), "evaluation": {"metric": "log_loss"}})
