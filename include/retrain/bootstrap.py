"""The common metrics on many bootstrap resamples at once, from predictions made once.

`retrain.evaluation.paired_bootstrap` scores two models on the same resampled rows. Calling the
scikit-learn scorer once per resample and model repeats its input checks, finds the classes again and
sorts every score again (roc_auc): at 125,000 holdout rows and 200 resamples that is 400 calls and
most of the evaluate task. Here a metric is computed for a block of resamples (a `(resamples, rows)`
array of row indices) with a few NumPy operations: per-row losses averaged over each resample's rows,
counts of true and false positives, and for the ranking metrics counts per distinct score, sorted once.

Each function returns the scorer's value (sign included) to rounding (tests/unit/test_bootstrap.py),
or NaN for a resample where the metric is degenerate (a single class, no positive prediction...): the
caller then asks the real scorer, so undefined cases behave exactly as scikit-learn decides.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

# Row indices gathered at once: 2**20 int64 values (8 MB; the ranking metrics' counts take a few times that).
BLOCK_ELEMENTS = 1 << 20

BlockScorer = Callable[[np.ndarray], np.ndarray]

CLASSIFICATION = ("accuracy", "balanced_accuracy", "precision", "recall", "f1", "jaccard", "roc_auc",
                  "average_precision", "neg_log_loss")  # fmt: skip
REGRESSION = ("r2", "neg_mean_squared_error", "neg_root_mean_squared_error", "neg_mean_absolute_error")


def block_sizes(resamples: int, rows: int) -> list[int]:
    """How many resamples each block holds, so that a block's indices stay within BLOCK_ELEMENTS."""
    per_block = max(1, BLOCK_ELEMENTS // max(rows, 1))
    return [min(per_block, resamples - start) for start in range(0, resamples, per_block)]


def block_scorer(metric: str, model: Any, y: np.ndarray, positive: Any = None) -> BlockScorer | None:
    """The metric of `model` (a `retrain.evaluation` cached model, which computes each prediction once) on
    each resample of a block, or None when it has no vectorised form here (the caller uses the scorer).

    `positive` is the class that precision, recall, f1, jaccard and average_precision count as positive
    (the class the spec's scorer is given); the other metrics do not depend on it.
    """
    y = np.asarray(y)
    if metric in REGRESSION:
        return _regression(metric, model, y) if not hasattr(model, "classes_") else None
    if metric not in CLASSIFICATION or not hasattr(model, "classes_"):
        return None
    classes = np.asarray(model.classes_)
    code = _codes(classes, y)
    if code is None:  # a label the model never learned: the scorer decides what that means
        return None
    binary = len(classes) == 2
    if metric == "accuracy":
        return _mean_over_rows(model.response("predict") == y)
    if metric == "balanced_accuracy":
        pred_code = _codes(classes, np.asarray(model.response("predict")))
        return None if pred_code is None else _balanced_accuracy(code, pred_code == code, len(classes))
    if metric == "neg_log_loss":
        return _neg_log_loss(np.asarray(model.response("predict_proba")), code, len(classes))
    if not binary:
        return None
    if metric in ("roc_auc", "average_precision"):
        scored = classes[1] if metric == "roc_auc" else positive  # roc_auc: classes_[1], as scikit-learn
        if scored is None or scored not in list(classes):
            return None
        response = _binary_response(model, classes, scored)
        if response is None:
            return None
        return _ranking(response, y == scored, average_precision=metric == "average_precision")
    if positive is None or positive not in list(classes):
        return None
    predicted = np.asarray(model.response("predict")) == positive
    return _counting(metric, predicted & (y == positive), predicted & (y != positive), ~predicted & (y == positive))


def _codes(classes: np.ndarray, values: np.ndarray) -> np.ndarray | None:
    """Each value's index in `classes` (sorted, as scikit-learn's `classes_`), or None if one is not a class."""
    try:
        code = np.searchsorted(classes, values)
    except TypeError:
        return None
    if len(values) and (code.max() >= len(classes) or not bool(np.all(classes[code] == values))):
        return None
    return code


def _mean_over_rows(per_row: np.ndarray) -> BlockScorer:
    return lambda index: per_row[index].mean(axis=1)


def _per_resample_counts(codes: np.ndarray, index: np.ndarray, size: int, weights=None) -> np.ndarray:
    """Counts (or sums of `weights`) of each code in each resample of the block: a (resamples, size) array."""
    blocks = len(index)
    keys = ((np.arange(blocks) * size)[:, None] + codes[index]).ravel()
    taken = None if weights is None else weights[index].ravel()
    return np.bincount(keys, weights=taken, minlength=blocks * size).reshape(blocks, size)


def _balanced_accuracy(code: np.ndarray, correct: np.ndarray, classes: int) -> BlockScorer:
    def scores(index: np.ndarray) -> np.ndarray:
        totals = _per_resample_counts(code, index, classes)
        hits = _per_resample_counts(code, index, classes, weights=correct.astype(np.float64))
        present = totals > 0  # scikit-learn leaves out classes absent from y_true
        recall = np.divide(hits, totals, out=np.zeros_like(hits), where=present)
        return recall.sum(axis=1) / present.sum(axis=1)

    return scores


def _neg_log_loss(proba: np.ndarray, code: np.ndarray, classes: int) -> BlockScorer | None:
    if proba.ndim != 2 or proba.shape[1] != classes or proba.dtype != np.float64:
        return None
    if not np.all(np.isfinite(proba)) or proba.min() < 0 or proba.max() > 1:
        return None  # scikit-learn refuses these: the scorer says how
    eps = np.finfo(proba.dtype).eps
    if classes == 2:  # scored as the probability of classes_[1], its complement for the other class
        positive = proba[:, 1]
        chosen = np.where(code == 1, positive, 1 - positive)
    else:
        chosen = proba[np.arange(len(code)), code]
    loss = -np.log(np.clip(chosen, eps, 1 - eps))

    def scores(index: np.ndarray) -> np.ndarray:
        values = -loss[index].mean(axis=1)
        every_class = (_per_resample_counts(code, index, classes) > 0).all(axis=1)
        return np.where(every_class, values, np.nan)  # a missing class: scikit-learn refuses the resample

    return scores


def _binary_response(model: Any, classes: np.ndarray, scored: Any) -> np.ndarray | None:
    """What scikit-learn's ranking scorers read for the class `scored`: the decision function when the model
    has one (negated for classes_[0]), else that class's probability column."""
    if hasattr(model, "decision_function"):
        values = np.asarray(model.response("decision_function"), dtype=np.float64)
        values = values if scored == classes[1] else -values
    else:
        values = np.asarray(model.response("predict_proba"), dtype=np.float64)[:, list(classes).index(scored)]
    return values if values.ndim == 1 and bool(np.all(np.isfinite(values))) else None


def _ranking(response: np.ndarray, positive: np.ndarray, average_precision: bool) -> BlockScorer:
    """roc_auc or average_precision from counts of positives and negatives per distinct score."""
    order = np.argsort(response, kind="mergesort")[::-1]  # highest score first, as scikit-learn's curves
    ranked = response[order]
    group = np.empty(len(response), dtype=np.intp)
    group[order] = np.cumsum(np.r_[True, ranked[1:] != ranked[:-1]]) - 1
    groups = int(group.max()) + 1 if len(group) else 0
    keys = group * 2 + positive.astype(np.intp)

    def scores(index: np.ndarray) -> np.ndarray:
        counts = _per_resample_counts(keys, index, 2 * groups).reshape(len(index), groups, 2)
        negatives, positives = counts[..., 0], counts[..., 1]
        total_positive, total_negative = positives.sum(axis=1), negatives.sum(axis=1)
        true_positives = np.cumsum(positives, axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            if average_precision:  # sum over thresholds of the recall step times the precision there
                predicted = true_positives + np.cumsum(negatives, axis=1)
                precision = np.divide(true_positives, predicted, out=np.zeros(predicted.shape), where=predicted > 0)
                value = (positives * precision).sum(axis=1) / total_positive
                return np.where(total_positive > 0, value, np.nan)
            # Area under the ROC steps: each negative counts the positives ranked above it, ties as one half.
            above = true_positives - positives
            pairs = total_positive.astype(np.float64) * total_negative
            value = (negatives * (above + 0.5 * positives)).sum(axis=1) / pairs
            return np.where((total_positive > 0) & (total_negative > 0), value, np.nan)

    return scores


def _counting(metric: str, true_pos: np.ndarray, false_pos: np.ndarray, false_neg: np.ndarray) -> BlockScorer:
    def scores(index: np.ndarray) -> np.ndarray:
        tp, fp, fn = (flags[index].sum(axis=1).astype(np.float64) for flags in (true_pos, false_pos, false_neg))
        numerator, denominator = {
            "precision": (tp, tp + fp),
            "recall": (tp, tp + fn),
            "f1": (2 * tp, 2 * tp + fp + fn),
            "jaccard": (tp, tp + fp + fn),
        }[metric]
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(denominator > 0, numerator / denominator, np.nan)  # 0/0: scikit-learn's zero_division

    return scores


def _regression(metric: str, model: Any, y: np.ndarray) -> BlockScorer | None:
    try:
        truth = y.astype(np.float64)
        predicted = np.asarray(model.response("predict"), dtype=np.float64)
    except (TypeError, ValueError):
        return None
    if predicted.shape != truth.shape or not (np.all(np.isfinite(truth)) and np.all(np.isfinite(predicted))):
        return None
    error = truth - predicted
    if metric == "neg_mean_absolute_error":
        return lambda index: -np.abs(error)[index].mean(axis=1)
    squared = error**2
    if metric == "neg_mean_squared_error":
        return lambda index: -squared[index].mean(axis=1)
    if metric == "neg_root_mean_squared_error":
        return lambda index: -np.sqrt(squared[index].mean(axis=1))

    def r2(index: np.ndarray) -> np.ndarray:
        taken = truth[index]
        spread = ((taken - taken.mean(axis=1, keepdims=True)) ** 2).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(spread > 0, 1 - squared[index].sum(axis=1) / spread, np.nan)

    return r2
