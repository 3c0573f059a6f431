"""Champion versus challenger on the same holdout: primary and secondary metrics, a baseline,
slices and a paired bootstrap of the difference. Pure: models in, numbers out.

Any scikit-learn scorer name works (higher is better: `neg_log_loss`, not `log_loss`). Each model
predicts once; the bootstrap re-scores cached predictions through the real scorer objects.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin

from retrain.spec import ModelSpec

MIN_SLICE_ROWS = 30


class _Cached(BaseEstimator):
    """Serves predictions computed once; X is an (n, 1) array of row indices into them."""

    def __init__(self, responses: dict[str, np.ndarray] | None = None, classes: np.ndarray | None = None):
        self.responses = responses
        self.classes = classes

    def _rows(self, name: str, X) -> np.ndarray:
        return self.responses[name][np.asarray(X)[:, 0].astype(int)]

    def predict(self, X):
        return self._rows("predict", X)

    def fit(self, X, y=None):  # scorers never fit; present for the estimator interface
        return self


class CachedClassifier(ClassifierMixin, _Cached):
    @property
    def classes_(self):
        return self.classes

    def predict_proba(self, X):
        return self._rows("predict_proba", X)


class CachedDecisionClassifier(CachedClassifier):
    """Only models that have decision_function get it: scorers choose their method by presence."""

    def decision_function(self, X):
        return self._rows("decision_function", X)


class CachedRegressor(RegressorMixin, _Cached):
    pass


def cache_predictions(model, X: pd.DataFrame, classification: bool) -> _Cached:
    responses = {"predict": np.asarray(model.predict(X))}
    if classification:
        if hasattr(model, "predict_proba"):
            responses["predict_proba"] = np.asarray(model.predict_proba(X))
        if hasattr(model, "decision_function"):
            try:
                responses["decision_function"] = np.asarray(model.decision_function(X))
            except AttributeError:
                pass
        cls = CachedDecisionClassifier if "decision_function" in responses else CachedClassifier
        return cls(responses, np.asarray(model.classes_))
    return CachedRegressor(responses)


def _score(scorer, cached: _Cached, index: np.ndarray, y: np.ndarray) -> float | None:
    try:
        value = float(scorer(cached, index.reshape(-1, 1), y[index]))
    except ValueError:  # undefined on this subset, e.g. a single class for roc_auc
        return None
    return value if math.isfinite(value) else None


@dataclass(frozen=True)
class ModelScores:
    primary: float | None
    secondary: dict[str, float | None] = field(default_factory=dict)
    slices: dict[str, dict[str, float | None]] = field(default_factory=dict)


@dataclass(frozen=True)
class BootstrapResult:
    mean_difference: float
    low: float
    high: float
    confidence: float
    resamples: int


@dataclass(frozen=True)
class Comparison:
    metric: str
    challenger: ModelScores
    champion: ModelScores | None
    baseline: float | None
    bootstrap: BootstrapResult | None
    holdout_rows: int

    def to_dict(self) -> dict[str, Any]:
        def clean(value):
            if isinstance(value, float):
                return value if math.isfinite(value) else None
            if isinstance(value, dict):
                return {k: clean(v) for k, v in value.items()}
            return value

        return clean(
            {
                "metric": self.metric,
                "challenger": asdict(self.challenger),
                "champion": None if self.champion is None else asdict(self.champion),
                "baseline": self.baseline,
                "bootstrap": None if self.bootstrap is None else asdict(self.bootstrap),
                "holdout_rows": self.holdout_rows,
            }
        )


def score(cached: _Cached, X: pd.DataFrame, y: np.ndarray, spec: ModelSpec) -> ModelScores:
    from sklearn.metrics import get_scorer

    everything = np.arange(len(y))
    primary = _score(get_scorer(spec.evaluation.metric), cached, everything, y)
    secondary = {name: _score(get_scorer(name), cached, everything, y) for name in spec.evaluation.secondary_metrics}
    slices: dict[str, dict[str, float | None]] = {}
    scorer = get_scorer(spec.evaluation.metric)
    for column in spec.evaluation.slices:
        values = X[column].astype("object").where(X[column].notna(), "<missing>").astype(str).to_numpy()
        slices[column] = {
            value: _score(scorer, cached, np.flatnonzero(values == value), y)
            for value in sorted(set(values))
            if (values == value).sum() >= MIN_SLICE_ROWS
        }
    return ModelScores(primary, secondary, slices)


def baseline_score(y_train: pd.Series, X: pd.DataFrame, y: np.ndarray, spec: ModelSpec) -> float | None:
    """The metric of a model that knows only the training labels: class priors or the mean."""
    from sklearn.dummy import DummyClassifier, DummyRegressor
    from sklearn.metrics import get_scorer

    dummy = DummyClassifier(strategy="prior") if spec.task == "classification" else DummyRegressor(strategy="mean")
    dummy.fit(np.zeros((len(y_train), 1)), np.asarray(y_train))
    cached = cache_predictions(dummy, np.zeros((len(y), 1)), spec.task == "classification")
    return _score(get_scorer(spec.evaluation.metric), cached, np.arange(len(y)), y)


def paired_bootstrap(champion: _Cached, challenger: _Cached, y: np.ndarray, metric: str, resamples: int,
                     confidence: float, seed: int) -> BootstrapResult | None:  # fmt: skip
    """Challenger minus champion on the same resampled rows; percentile interval."""
    from sklearn.metrics import get_scorer

    if resamples <= 0:
        return None
    scorer = get_scorer(metric)
    rng = np.random.default_rng(seed)
    differences = []
    for _ in range(resamples):
        index = rng.integers(0, len(y), size=len(y))
        a, b = _score(scorer, challenger, index, y), _score(scorer, champion, index, y)
        if a is not None and b is not None:
            differences.append(a - b)
    if not differences:
        return None
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(differences, [tail, 100 - tail])
    return BootstrapResult(float(np.mean(differences)), float(low), float(high), confidence, len(differences))


def compare(
    champion_model, challenger_model, X: pd.DataFrame, y: pd.Series, y_train: pd.Series, spec: ModelSpec
) -> Comparison:
    classification = spec.task == "classification"
    y_true = np.asarray(y)
    challenger = cache_predictions(challenger_model, X, classification)
    champion = None if champion_model is None else cache_predictions(champion_model, X, classification)
    bootstrap = None
    if champion is not None:
        bootstrap = paired_bootstrap(
            champion, challenger, y_true, spec.evaluation.metric, spec.evaluation.bootstrap.resamples,
            spec.evaluation.bootstrap.confidence, spec.model.random_state,
        )  # fmt: skip
    return Comparison(
        metric=spec.evaluation.metric,
        challenger=score(challenger, X, y_true, spec),
        champion=None if champion is None else score(champion, X, y_true, spec),
        baseline=baseline_score(y_train, X, y_true, spec),
        bootstrap=bootstrap,
        holdout_rows=len(y_true),
    )
