"""evaluate: champion and challenger on the same holdout, the policy's decision, and the audit trail.

Every evaluated version is tagged with the decision, the reasons, both models' metrics, the Airflow
run, the window, the data hash, the report locations and the code version; the reports are uploaded
to the training run. Nothing here moves an alias: `promote` does, from this step's output.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from retrain import model_card
from retrain.contracts import DriftResult, EvaluationResult, TrainingResult, ValidationResult
from retrain.errors import TrainingError
from retrain.evaluation import compare, positive_label_tag
from retrain.features import feature_matrix, read_partition
from retrain.options import Trigger
from retrain.pipeline import StepContext
from retrain.policy import Decision as PolicyDecision
from retrain.policy import decide
from retrain.report import metric_history, render_run_report, write_atomic
from retrain.settings import mlflow_ui_url
from retrain.tags import Decision, Tag


def run(ctx: StepContext) -> EvaluationResult:
    """Scores the new version and the current champion on this run's holdout, decides, records the decision."""
    spec, run_ = ctx.spec, ctx.run
    registry = ctx.registry
    trained = ctx.input(TrainingResult) or trained_from_registry(ctx)
    version = trained.model_version
    # Of the training rows only the labels (the baseline's class balance): 20x less to read at 20 columns.
    train_df, holdout_df, manifest = read_partition(ctx.features_dir, train_columns=[spec.target])
    X_holdout, y_holdout = feature_matrix(holdout_df, spec)
    champion = registry.champion(spec.name)
    champion_version = None if champion is None else champion.version
    already_champion = champion_version == version
    challenger_model = registry.load_model(spec.name, version)
    champion_model = None if champion is None or already_champion else registry.load_model(spec.name, champion_version)

    comparison = compare(champion_model, challenger_model, X_holdout, y_holdout, train_df[spec.target], spec)
    decision = decide(comparison, spec.promotion, force_promote=run_.options.force_promote)
    promote = decision.promote and not already_champion
    reports = upstream_reports(ctx.inputs.values())
    note = outcome_note(run_.trigger, promote=promote, already_champion=already_champion, champion=champion_version)
    summary = {
        "model": spec.name,
        "challenger_version": version,
        "champion_version": champion_version,
        "run_id": run_.run_id,
        "trigger": run_.trigger.describe(),
        "note": note,
        "mlflow_run_id": trained.run_id,
        "already_champion": already_champion,
        "promote": promote,
        "forced": decision.forced,
        "reasons": list(decision.reasons),
        "decision": decision.to_dict(),
        "dry_run": run_.options.dry_run,
        "metric": spec.evaluation.metric,
        "window": str(run_.window),
        "window_end": run_.window.end_date.isoformat(),
        "input_hash": manifest["input_hash"],
        "comparison": comparison.to_dict(),
        "metric_table": metric_table(comparison.to_dict()),
        "reports": reports,
    }
    history = metric_history(registry.versions(spec.name))
    report_json = write_atomic(ctx.report_dir / "evaluation.json", json.dumps(summary, indent=2, default=str))
    report_html = write_atomic(ctx.report_dir / "evaluation.html", render_run_report(summary, history))
    reports = {**reports, "evaluation_html": str(report_html), "evaluation_json": str(report_json)}

    tag = decision_tag(decision, already_champion=already_champion, dry_run=run_.options.dry_run)
    registry.set_tags(spec.name, version, audit_tags(ctx, summary, decision, tag, reports))
    registry.log_artifacts(trained.run_id, reports.values(), artifact_path=model_card.REPORTS_FOLDER)
    card = model_card.build(
        spec, run_, version=version, tracked=registry.run(trained.run_id), partition=manifest,
        validation=ctx.input(ValidationResult), drift=ctx.input(DriftResult), comparison=summary["comparison"],
        champion_version=champion_version, policy=summary["decision"], status=tag, reports=reports,
        ui_base=mlflow_ui_url(registry.tracking_uri),
    )  # fmt: skip
    model_card.publish(registry, spec.name, card)
    verdict = "PROMOTE" if promote else ("ALREADY CHAMPION" if already_champion else "DECLINE")
    ctx.log.info(
        "%s %s version %s vs champion %s: %s. Run report: %s",
        verdict, spec.name, version, champion_version, "; ".join(decision.reasons), report_html,
    )  # fmt: skip
    if note:
        ctx.log.warning("%s", note)
    return EvaluationResult(
        model=spec.name,
        version=version,
        mlflow_run_id=trained.run_id,
        champion_version=champion_version,
        already_champion=already_champion,
        promote=promote,
        forced=decision.forced,
        reasons=decision.reasons,
        dry_run=run_.options.dry_run,
        window_end=summary["window_end"],
        metric=spec.evaluation.metric,
        reports=reports,
    )


def outcome_note(trigger: Trigger, *, promote: bool, already_champion: bool, champion: str | None) -> str:
    """What a run started by the monitor or by new data achieved, in words ('' for other runs, and when promoted)."""
    if promote or already_champion or trigger.kind not in ("monitoring", "data"):
        return ""
    why = "the monitor asked for it" if trigger.kind == "monitoring" else "new data arrived"
    verdict = (
        f"does not beat champion v{champion} on the new holdout, so the champion stays"
        if champion
        else "does not pass the policy's floor and baseline"
    )
    return f"Retraining did not help: {why} ({trigger.reason or 'no reason given'}), but the new version {verdict}."


def trained_from_registry(ctx: StepContext) -> TrainingResult:
    """The training step's output can be missing (a pod whose XCom sidecar failed): find the version
    this run registered by its run tag."""
    versions = ctx.registry.versions(ctx.spec.name, {Tag.RUN_ID: ctx.run.run_id})
    if not versions:
        raise TrainingError(
            f"no result from the training step and no model version of {ctx.spec.name} tagged with"
            f" {Tag.RUN_ID}={ctx.run.run_id} in MLflow: the training did not register a model"
        )
    latest = versions[-1]
    ctx.log.warning("training output missing: using version %s found in MLflow by run tags", latest.version)
    return TrainingResult(
        run_id=latest.run_id or "", model_version=latest.version, metrics={}, reused=True,
        input_hash=latest.tags.get(Tag.INPUT_HASH, ""),
    )  # fmt: skip


def upstream_reports(outputs: Iterable[Any]) -> dict[str, str]:
    """Every report the earlier steps wrote (name -> path), whatever the steps are."""
    reports: dict[str, str] = {}
    for output in outputs:
        reports.update(getattr(output, "reports", None) or {})
    return reports


def decision_tag(decision: PolicyDecision, *, already_champion: bool, dry_run: bool) -> Decision:
    """Where the version stands after evaluation."""
    if already_champion:
        return Decision.CHAMPION
    if not decision.promote:
        return Decision.DECLINED
    return Decision.DRY_RUN if dry_run else Decision.APPROVED


def audit_tags(
    ctx: StepContext, summary: Mapping[str, Any], decision: PolicyDecision, tag: Decision, reports: Mapping[str, str]
) -> dict[str, str]:
    """The version's audit trail: the decision, its reasons, both scores, the run, the data and the reports."""
    from retrain.train import code_version

    comparison = summary["comparison"]
    challenger_score = (comparison.get("challenger") or {}).get("primary")
    champion_score = (comparison.get("champion") or {}).get("primary")
    return {
        Tag.DECISION: tag,
        Tag.PASSED_EVALUATION: "true" if decision.promote else "false",
        Tag.FORCED: str(decision.forced).lower(),
        Tag.REASONS: " | ".join(decision.reasons),
        Tag.METRIC: summary["metric"],
        Tag.POSITIVE_LABEL: positive_label_tag(comparison.get("positive_label")),
        Tag.CHALLENGER_SCORE: "" if challenger_score is None else repr(challenger_score),
        Tag.CHAMPION_SCORE: "" if champion_score is None else repr(champion_score),
        Tag.CHAMPION_AT_EVALUATION: summary["champion_version"] or "",
        Tag.EVALUATION: json.dumps(comparison, default=str),
        Tag.EVALUATED_BY_RUN: ctx.run.run_id,
        Tag.DAG_ID: ctx.spec.dag_id,
        Tag.WINDOW_END: summary["window_end"],
        Tag.INPUT_HASH: summary["input_hash"],
        Tag.CODE_VERSION: code_version(),
        **{Tag.report(name): path for name, path in reports.items() if path},
    }


def metric_table(comparison: Mapping[str, Any]) -> dict[str, dict[str, float | None]]:
    """Rows of the run report's metric table: each metric for the challenger and the champion, and the baseline."""
    challenger = comparison.get("challenger") or {}
    champion = comparison.get("champion") or {}
    table = {
        comparison.get("metric", "primary"): {
            "challenger": challenger.get("primary"),
            "champion": champion.get("primary"),
        }
    }
    for name, value in (challenger.get("secondary") or {}).items():
        table[name] = {"challenger": value, "champion": (champion.get("secondary") or {}).get(name)}
    if comparison.get("baseline") is not None:
        table["baseline (majority / mean)"] = {"challenger": comparison["baseline"], "champion": None}
    return table
