"""Every tag this package writes on MLflow runs and model versions, with what it means.

This list is the audit trail's documentation: the README's tag table is checked against it
(tests/unit/test_tags.py). Code writes and reads tags through these names only.
"""

from __future__ import annotations

from enum import StrEnum


class Tag(StrEnum):
    """A tag name (the member is the string MLflow stores) and its meaning (`Tag.X.meaning`)."""

    meaning: str

    def __new__(cls, name: str, meaning: str) -> Tag:
        member = str.__new__(cls, name)
        member._value_ = name
        member.meaning = meaning
        return member

    # Where a version comes from (written by the training job on its run and its version).
    DAG_ID = "airflow.dag_id", "Airflow DAG that trained and evaluated the version"
    RUN_ID = "airflow.run_id", "Airflow run that trained the version"
    TASK_ID = "airflow.task_id", "Airflow task that trained the version"
    MODEL_NAME = "retrain.model_name", "model spec name (the registered model)"
    ESTIMATOR = "retrain.estimator", "scikit-learn estimator class of the model"
    WINDOW_END = "retrain.window_end", "end date (exclusive) of the data window the version was trained on"
    INPUT_HASH = "retrain.input_hash", "SHA-256 of the training and holdout sets together (part of the rerun key)"
    TRAIN_HASH = "retrain.train_hash", "SHA-256 of the training set's dtypes and rows"
    HOLDOUT_HASH = "retrain.holdout_hash", "SHA-256 of the holdout set's dtypes and rows"
    CODE_VERSION = "retrain.code_version", "git commit (or package version) of the code that trained it"
    PARAMS_HASH = "retrain.params_hash", "hash of the estimator parameters actually used"
    TRAINING_KEY = (
        "retrain.training_key",
        "SHA-256 of all but the data that shapes the model (estimator class, resolved parameters, features,"
        " target, task, pipeline version); with input_hash and code_version, the key a rerun reuses a version by",
    )
    TRIGGER = "retrain.trigger", "why the run that trained the version started: schedule, manual, data or monitoring"
    TRIGGER_REASON = "retrain.trigger_reason", "the reason the triggering asset event gave, if any"
    POSITIVE_LABEL = "retrain.positive_label", 'positive class of binary metrics, as JSON ("yes", true, 1); empty: none'

    # The evaluation (written by `evaluate` on the version).
    DECISION = "retrain.decision", "where the version stands; one of the Decision values"
    PASSED_EVALUATION = "retrain.passed_evaluation", "'true' when the policy let the version be promoted"
    FORCED = "retrain.forced", "'true' when force_promote overrode the comparison"
    REASONS = "retrain.reasons", "every rule the policy applied, with its numbers, separated by vertical bars"
    METRIC = "retrain.metric", "the primary metric's scikit-learn scorer name"
    CHALLENGER_SCORE = "retrain.challenger_score", "the version's primary metric on the run's holdout"
    CHAMPION_SCORE = "retrain.champion_score", "the champion's primary metric on the same holdout (empty: none)"
    CHAMPION_AT_EVALUATION = (
        "retrain.champion_version_at_evaluation",
        "the champion the version was compared with (empty: none); promotion refuses if it moved",
    )
    EVALUATION = "retrain.evaluation", "the whole comparison as JSON (metrics, slices, bootstrap, baseline)"
    EVALUATED_BY_RUN = "retrain.evaluated_by_run", "Airflow run that evaluated the version"
    REPORT = (
        "retrain.report.",
        "prefix: retrain.report.NAME holds where the run wrote report NAME (e.g. evaluation_html)",
    )

    # Alias moves (written by `promote` and `retrain_rollback`).
    PROMOTED_AT = "retrain.promoted_at", "when the version became champion (UTC, ISO 8601)"
    PROMOTED_BY_RUN = "retrain.promoted_by_run", "Airflow run that made the version champion"
    ROLLED_BACK_TO_AT = "retrain.rolled_back_to_at", "when a rollback made the version champion again"
    ROLLBACK_REASON = "retrain.rollback_reason", "why the rollback was made, as the person wrote it"
    ROLLBACK_BY = "retrain.rollback_by", "who triggered the rollback"
    ROLLED_BACK_FROM_AT = "retrain.rolled_back_from_at", "when a rollback replaced the version as champion"
    CHAMPION_SINCE = (
        "retrain.champion_since",
        "on the registered model: VERSION@TIME, when the version behind 'champion' became champion (UTC)",
    )
    LIVE_SERIES = (
        "retrain.live_series",
        "on the registered model: the latest monitoring run's live metric, JSON {metric, days: [[day, value], ...]}"
        " (the last 30 days): the fleet page's trend, read with the one search of all models",
    )

    ROLLBACK_FORCED = (
        "retrain.rollback_forced",
        "'true' when the rollback form said force: the version had not passed the policy in a real, unforced run",
    )

    # The human review (written by `approve_promotion` when the spec's promotion.approval asks for one).
    REVIEW_REQUESTED_AT = "retrain.review_requested_at", "when approve_promotion asked a person to review the version"
    REVIEW_ANSWER = (
        "retrain.review_answer",
        "the answer to the approval request: approve, reject, or timeout (no answer in time, a rejection)",
    )
    REVIEWED_BY = "retrain.reviewed_by", "who answered the approval request (user id); empty after a timeout"
    REVIEWED_AT = "retrain.reviewed_at", "when the approval request was answered or timed out (UTC, ISO 8601)"
    REVIEW_COMMENT = "retrain.review_comment", "the reviewer's comment, as written"

    # On the registered model (not a version): the champion's history.
    CHAMPION_HISTORY = (
        "retrain.champion_history.",
        "prefix, on the registered model: one entry per move of champion and previous (JSON: at, from_version,"
        " to_version, kind, reason, by, run_id, state)",
    )

    # Monitoring runs (written by `monitor_<name>` on its MLflow run in experiment monitor/<name>).
    LIVE_METRIC = "retrain.live_metric", "on a monitoring run: the scikit-learn scorer its live_<metric> points hold"
    MONITOR_DAY = "retrain.monitor_day", "on a monitoring run: the day it monitored (UTC, YYYY-MM-DD)"
    MONITORED_VERSION = "retrain.monitored_version", "on a monitoring run: the champion version when it ran"
    MONITORED_BY_RUN = "retrain.monitored_by_run", "on a monitoring run: the Airflow run of monitor_<name> that logged it"

    @classmethod
    def report(cls, name: str) -> str:
        """The tag that holds where report `name` (e.g. `evaluation_html`) was written."""
        return f"{cls.REPORT}{name}"

    @classmethod
    def history_entry(cls, key: str) -> str:
        """The registered-model tag that holds the champion history entry `key`."""
        return f"{cls.CHAMPION_HISTORY}{key}"


class Decision(StrEnum):
    """Values of Tag.DECISION."""

    PENDING = "pending_evaluation"  # trained, not evaluated yet (or evaluation failed)
    DECLINED = "declined"  # the policy said no
    APPROVED = "approved"  # the policy said yes (and the reviewer, when asked); `promote` moves the alias next
    AWAITING_REVIEW = "awaiting_review"  # the policy said yes; a person is asked to approve
    DECLINED_BY_REVIEWER = "declined_by_reviewer"  # the reviewer rejected it, or nobody answered in time
    DRY_RUN = "dry_run_would_promote"  # the policy said yes in a dry run: no alias moves
    CHAMPION = "champion"  # evaluated while already champion (a rerun of its own night)
    PROMOTED = "promoted"  # `promote` made it champion
