"""Champion versus challenger on the same holdout: primary and secondary metrics, a baseline,
slices and a paired bootstrap of the difference. Pure: models in, numbers out.

Any scikit-learn scorer name works (higher is better: `neg_log_loss`, not `log_loss`). Each model
runs each prediction method the scorers need once; the bootstrap re-scores those cached predictions,
for the common metrics many resamples at once (`retrain.bootstrap`), through the real scorer objects
for the others.

Class labels may be of any type scikit-learn takes (strings, booleans, integers). On a binary problem
the positive class is `evaluation.positive_label`, or else the greater of the two sorted classes:
scikit-learn's own rule (`classes_[1]`, the column `roc_auc` scores; 1 of 0/1, True of False, "yes"
of "no", but "stayed" of "churned"/"stayed": declare it). Every scorer whose value depends on it gets
it explicitly, including those scikit-learn would refuse for text labels (`f1`, `average_precision`).
"""

from __future__ import annotations

import inspect
import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin

from retrain.bootstrap import block_scorer, block_sizes
from retrain.errors import SpecError
from retrain.sklearn_catalog import BINARY_ONLY_SCORERS
from retrain.spec import ModelSpec

MIN_SLICE_ROWS = 30
MAX_LISTED_CLASSES = 20  # in the evaluation JSON, which an MLflow tag carries
DEFAULT_POSITIVE_RULE = "the greater of the two sorted classes (scikit-learn's rule)"


def plain_label(value: Any) -> Any:
    """A class label as a plain Python value (numpy scalars are not JSON)."""
    return value.item() if isinstance(value, np.generic) else value


@dataclass(frozen=True)
class ClassLabels:
    """A classifier's classes (sorted, as scikit-learn's `classes_`) and, for two classes, the positive one."""

    classes: tuple
    positive: Any = None
    rule: str = ""  # how the positive class was chosen

    @property
    def binary(self) -> bool:
        return len(self.classes) == 2

    def scorer(self, name: str):
        """scikit-learn's scorer `name`, told which class is positive where its value depends on it."""
        from sklearn.metrics import get_scorer, make_scorer

        base = get_scorer(name)
        if len(self.classes) > 2 and name in BINARY_ONLY_SCORERS:
            instead = BINARY_ONLY_SCORERS[name]
            raise SpecError(
                f"field 'evaluation.metric': {name!r} scores two classes only and the target has {len(self.classes)}"
                f" ({_listed(self.classes)}); {f'use {instead!r}' if instead else 'choose a multiclass scorer'}"
            )
        if not self.binary:
            return base
        negative = self.classes[0] if self.positive == self.classes[1] else self.classes[1]
        if name in _LIKELIHOOD_RATIOS:  # scikit-learn's wrappers take no positive class: its `labels` order does
            return make_scorer(
                _likelihood_ratio, greater_is_better=base._sign > 0,
                labels=[negative, self.positive], which=_LIKELIHOOD_RATIOS[name],
            )  # fmt: skip
        takes_positive = "pos_label" in inspect.signature(base._score_func).parameters
        if not takes_positive or base._kwargs.get("pos_label", "") is None:  # None: an average over classes
            return base
        return make_scorer(
            base._score_func, response_method=base._response_method, greater_is_better=base._sign > 0,
            **{**base._kwargs, "pos_label": self.positive},
        )  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return {
            "classes": list(self.classes[:MAX_LISTED_CLASSES]),
            "class_count": len(self.classes),
            "positive_label": self.positive,
            "positive_label_rule": self.rule,
        }


_LIKELIHOOD_RATIOS = {"positive_likelihood_ratio": 0, "neg_negative_likelihood_ratio": 1}


def _likelihood_ratio(y_true, y_pred, *, labels, which: int) -> float:
    from sklearn.metrics import class_likelihood_ratios

    return class_likelihood_ratios(y_true, y_pred, labels=labels, replace_undefined_by=1.0)[which]


def _listed(classes: tuple) -> str:
    shown = ", ".join(repr(c) for c in classes[:MAX_LISTED_CLASSES])
    return shown + (f", … {len(classes)} classes" if len(classes) > MAX_LISTED_CLASSES else "")


def class_labels(spec: ModelSpec, classes) -> ClassLabels | None:
    """The classes a model was trained on and its positive class (None for a regression spec).

    Raises SpecError naming `evaluation.positive_label` when the declared label is not one of the classes.
    """
    if spec.task != "classification":
        return None
    classes = tuple(plain_label(c) for c in classes)
    declared = spec.evaluation.positive_label
    if declared is not None:
        if declared not in classes:
            raise SpecError(
                f"field 'evaluation.positive_label': {declared!r} ({type(declared).__name__}) is not one of the"
                f" classes of target {spec.target!r}: {_listed(classes)}{_type_hint(declared, classes)}"
            )
        positive = next(c for c in classes if c == declared)
        return ClassLabels(classes, positive if len(classes) == 2 else None, "declared in evaluation.positive_label")
    if len(classes) == 2:
        return ClassLabels(classes, classes[1], DEFAULT_POSITIVE_RULE)
    return ClassLabels(classes)


def _type_hint(declared: Any, classes: tuple) -> str:
    same_text = [c for c in classes if str(c).lower() == str(declared).lower()]
    if isinstance(declared, bool) and any(isinstance(c, str) for c in classes):
        return "; YAML reads yes/no/true/false unquoted as a boolean: quote the label ('yes')"
    if same_text:
        return f"; the data's label is {same_text[0]!r} ({type(same_text[0]).__name__}): write it with that type"
    return ""


def positive_label_tag(positive: Any) -> str:
    """The positive class as the version's tag stores it: JSON, so "1", 1 and true stay apart; empty if none."""
    return "" if positive is None else json.dumps(plain_label(positive))


class _Cached(BaseEstimator):
    """Serves predictions computed once; X is an (n, 1) array of row indices into them.

    Each prediction method of the model runs on every row the first time a scorer asks for it, and only
    then: roc_auc reads the decision function alone, so predict and predict_proba never run for it.
    """

    def __init__(self, responses: dict[str, np.ndarray] | None = None, classes: np.ndarray | None = None,
                 source: tuple[Any, Any] | None = None):  # fmt: skip
        self.responses = responses
        self.classes = classes
        self.source = source

    def response(self, name: str) -> np.ndarray:
        """The model's `name` output (predict, predict_proba, decision_function) on every row."""
        if name not in self.responses:
            model, X = self.source
            self.responses[name] = np.asarray(getattr(model, name)(X))
        return self.responses[name]

    def _rows(self, name: str, X) -> np.ndarray:
        return self.response(name)[np.asarray(X)[:, 0].astype(int)]

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
    """The model as the scorers see it, predicting each of its methods once on X (when first asked)."""
    if classification:
        # scikit-learn's `available_if` makes hasattr exact: a method is present only if the model can run it.
        cls = CachedDecisionClassifier if hasattr(model, "decision_function") else CachedClassifier
        return cls({}, np.asarray(model.classes_), (model, X))
    return CachedRegressor({}, None, (model, X))


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
    labels: ClassLabels | None = None

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
                **({} if self.labels is None else self.labels.to_dict()),
            }
        )


def _scorer(name: str, labels: ClassLabels | None):
    from sklearn.metrics import get_scorer

    return get_scorer(name) if labels is None else labels.scorer(name)


def score(
    cached: _Cached, X: pd.DataFrame, y: np.ndarray, spec: ModelSpec, labels: ClassLabels | None = None
) -> ModelScores:
    """The primary and secondary metrics on every row, and the primary per slice value."""
    everything = np.arange(len(y))
    scorer = _scorer(spec.evaluation.metric, labels)
    primary = _score(scorer, cached, everything, y)
    secondary = {
        name: _score(_scorer(name, labels), cached, everything, y) for name in spec.evaluation.secondary_metrics
    }
    slices: dict[str, dict[str, float | None]] = {}
    for column in spec.evaluation.slices:
        values = X[column].astype("object").where(X[column].notna(), "<missing>").astype(str).to_numpy()
        slices[column] = {
            value: _score(scorer, cached, np.flatnonzero(values == value), y)
            for value in sorted(set(values))
            if (values == value).sum() >= MIN_SLICE_ROWS
        }
    return ModelScores(primary, secondary, slices)


def baseline_score(
    y_train: pd.Series, X: pd.DataFrame, y: np.ndarray, spec: ModelSpec, labels: ClassLabels | None = None
) -> float | None:
    """The metric of a model that knows only the training labels: class priors (the majority class's
    predictions) or the mean; scored with the same positive class as the models."""
    from sklearn.dummy import DummyClassifier, DummyRegressor

    classification = spec.task == "classification"
    dummy = DummyClassifier(strategy="prior") if classification else DummyRegressor(strategy="mean")
    dummy.fit(np.zeros((len(y_train), 1)), np.asarray(y_train))
    if classification and labels is None:
        labels = class_labels(spec, dummy.classes_)
    cached = cache_predictions(dummy, np.zeros((len(y), 1)), classification)
    return _score(_scorer(spec.evaluation.metric, labels), cached, np.arange(len(y)), y)


def paired_bootstrap(champion: _Cached, challenger: _Cached, y: np.ndarray, metric: str, resamples: int,
                     confidence: float, seed: int,
                     labels: ClassLabels | None = None) -> BootstrapResult | None:  # fmt: skip
    """Challenger minus champion on the same resampled rows; percentile interval.

    The resamples are drawn in blocks (the same rows as one draw per resample) and scored by
    `retrain.bootstrap` for the metrics it knows, by the scorer for the others.
    """
    if resamples <= 0:
        return None
    scorer = _scorer(metric, labels)
    rng = np.random.default_rng(seed)
    score_challenger = resample_scorer(scorer, metric, challenger, y, labels)
    score_champion = resample_scorer(scorer, metric, champion, y, labels)
    differences = []
    for count in block_sizes(resamples, len(y)):
        index = rng.integers(0, len(y), size=(count, len(y)))
        for a, b in zip(score_challenger(index), score_champion(index), strict=True):
            if a is not None and b is not None:
                differences.append(a - b)
    if not differences:
        return None
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(differences, [tail, 100 - tail])
    return BootstrapResult(float(np.mean(differences)), float(low), float(high), confidence, len(differences))


def resample_scorer(scorer, metric: str, cached: _Cached, y: np.ndarray, labels: ClassLabels | None = None):
    """A function from a block of resampled row indices to the scorer's value on each resample (None where
    undefined), vectorised where `retrain.bootstrap` knows the metric.

    The vectorised form must give the scorer's value on the whole holdout first; otherwise (a label type or a
    model the scorer treats differently) every resample goes through the scorer.
    """
    positive = None if labels is None else labels.positive
    fast = block_scorer(metric, cached, y, positive) if labels is not None or not _is_classifier(cached) else None
    everything = np.arange(len(y))
    if fast is not None and not _agrees(fast(everything[None, :])[0], _score(scorer, cached, everything, y)):
        fast = None

    def scores(index: np.ndarray) -> list[float | None]:
        values = fast(index) if fast is not None else np.full(len(index), np.nan)
        return [
            float(v) if math.isfinite(v) else _score(scorer, cached, rows, y)
            for v, rows in zip(values, index, strict=True)
        ]

    return scores


def _is_classifier(cached: _Cached) -> bool:
    return hasattr(cached, "classes_")


def _agrees(vectorised: float, scorer_value: float | None) -> bool:
    if scorer_value is None:
        return not math.isfinite(vectorised)
    return math.isfinite(vectorised) and math.isclose(vectorised, scorer_value, rel_tol=1e-9, abs_tol=1e-12)


def compare(
    champion_model, challenger_model, X: pd.DataFrame, y: pd.Series, y_train: pd.Series, spec: ModelSpec
) -> Comparison:
    """Both models (the champion may be None) and the baseline on the holdout, with the challenger's
    classes and positive class for every score. Raises SpecError when the spec's metrics or positive
    class do not fit those classes."""
    classification = spec.task == "classification"
    labels = class_labels(spec, challenger_model.classes_) if classification else None
    for name in (spec.evaluation.metric, *spec.evaluation.secondary_metrics):
        _scorer(name, labels)  # a metric that cannot score these classes fails here, named, not as a None score
    y_true = np.asarray(y)
    challenger = cache_predictions(challenger_model, X, classification)
    champion = None if champion_model is None else cache_predictions(champion_model, X, classification)
    bootstrap = None
    if champion is not None:
        bootstrap = paired_bootstrap(
            champion, challenger, y_true, spec.evaluation.metric, spec.evaluation.bootstrap.resamples,
            spec.evaluation.bootstrap.confidence, spec.model.random_state, labels,
        )  # fmt: skip
    return Comparison(
        metric=spec.evaluation.metric,
        challenger=score(challenger, X, y_true, spec, labels),
        champion=None if champion is None else score(champion, X, y_true, spec, labels),
        baseline=baseline_score(y_train, X, y_true, spec, labels),
        bootstrap=bootstrap,
        holdout_rows=len(y_true),
        labels=labels,
    )
