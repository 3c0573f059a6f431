"""What the spec may name from scikit-learn, known without importing it (specs are checked at parse time,
where scikit-learn is too heavy to load). tests/unit/test_sklearn_catalog.py holds these tables against
the installed scikit-learn, so an upgrade that changes them fails a test instead of a run."""

from __future__ import annotations

# Scorer names (sklearn.metrics.get_scorer_names()), by the kind of model they score. Higher is better
# for every one of them (losses are negated: neg_log_loss).
CLASSIFICATION_SCORERS = frozenset({
    "accuracy", "balanced_accuracy", "top_k_accuracy", "average_precision", "neg_brier_score", "neg_log_loss",
    "d2_brier_score", "d2_log_loss_score", "matthews_corrcoef", "positive_likelihood_ratio",
    "neg_negative_likelihood_ratio", "roc_auc", "roc_auc_ovr", "roc_auc_ovo", "roc_auc_ovr_weighted",
    "roc_auc_ovo_weighted", "f1", "f1_macro", "f1_micro", "f1_weighted", "precision", "precision_macro",
    "precision_micro", "precision_weighted", "recall", "recall_macro", "recall_micro", "recall_weighted",
    "jaccard", "jaccard_macro", "jaccard_micro", "jaccard_weighted",
})  # fmt: skip
REGRESSION_SCORERS = frozenset({
    "explained_variance", "r2", "neg_max_error", "neg_mean_absolute_error", "neg_mean_squared_error",
    "neg_root_mean_squared_error", "neg_mean_squared_log_error", "neg_root_mean_squared_log_error",
    "neg_median_absolute_error", "neg_mean_poisson_deviance", "neg_mean_gamma_deviance",
    "neg_mean_absolute_percentage_error", "d2_absolute_error_score",
})  # fmt: skip
# Scorers for other kinds of targets: clustering (label agreement) and multilabel (`*_samples`).
OTHER_SCORERS = frozenset({
    "adjusted_mutual_info_score", "adjusted_rand_score", "completeness_score", "fowlkes_mallows_score",
    "homogeneity_score", "mutual_info_score", "normalized_mutual_info_score", "rand_score", "v_measure_score",
    "f1_samples", "precision_samples", "recall_samples", "jaccard_samples",
})  # fmt: skip

SCORERS = {"classification": CLASSIFICATION_SCORERS, "regression": REGRESSION_SCORERS}

# Classification scorers that refuse more than two classes, with the scorer to use instead (None: none).
BINARY_ONLY_SCORERS = {
    "roc_auc": "roc_auc_ovr", "f1": "f1_macro", "precision": "precision_macro", "recall": "recall_macro",
    "jaccard": "jaccard_macro", "positive_likelihood_ratio": None, "neg_negative_likelihood_ratio": None,
}  # fmt: skip
# Classification scorers whose value on a binary problem depends on which class is positive.
POSITIVE_CLASS_SCORERS = frozenset({
    "average_precision", "f1", "precision", "recall", "jaccard", "positive_likelihood_ratio",
    "neg_negative_likelihood_ratio",
})  # fmt: skip


def scorer_problem(name: str, task: str) -> str | None:
    """Why `name` cannot score a `task` model, or None when it can."""
    if name in SCORERS[task]:
        return None
    if name in OTHER_SCORERS:
        return f"{name!r} scores clustering or multilabel targets, not a {task} model"
    other = next((kind for kind, names in SCORERS.items() if name in names), None)
    if other is not None:
        return f"{name!r} is a {other} scorer; this spec's task is {task}"
    return f"{name!r} is not a scikit-learn scorer name; for {task}: {', '.join(sorted(SCORERS[task]))}"
