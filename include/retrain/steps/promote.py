"""promote: the only step that moves the `champion` alias, when the evaluation (and the reviewer) decided so."""

from __future__ import annotations

import datetime as dt
from functools import partial

from retrain import model_card
from retrain.contracts import EvaluationResult, PromotionResult, ReviewResult
from retrain.errors import ApprovalMissingError, PromotionConflictError, RetrainError, StepSkipped
from retrain.pipeline import StepContext, has_approval
from retrain.registry import CHAMPION_ALIAS, PREVIOUS_ALIAS
from retrain.tags import Decision, Tag


def run(ctx: StepContext) -> PromotionResult:
    """Moves `champion` to the evaluated version (and `previous` to the old one), records the move in the
    champion history and on the version and its model card.

    Declined, dry-run, already-champion and reviewer-rejected runs raise StepSkipped, so the model's Asset
    is only updated by a real promotion. With an approval gate in the spec, a promotion without a recorded
    approval (the approval task marked success by hand) is refused.
    """
    spec = ctx.spec
    evaluation = ctx.input(EvaluationResult)
    if evaluation is None:
        raise RetrainError("no evaluation result from the evaluate step; rerun the evaluate task")
    version, reasons = evaluation.version, "; ".join(evaluation.reasons)
    if evaluation.already_champion:
        raise StepSkipped(f"version {version} is already champion: nothing to promote")
    if not evaluation.promote:
        raise StepSkipped(f"policy declined version {version}: {reasons}")
    if ctx.run.options.dry_run:
        raise StepSkipped(f"dry run: would promote version {version} ({reasons}); no alias moved")
    review = ctx.input(ReviewResult)
    if has_approval(spec):
        if review is None or review.version != version:
            raise ApprovalMissingError(
                f"{spec.name} version {version}: promotion.approval is {spec.promotion.approval!r} and"
                " approve_promotion recorded no answer for it (was the task marked success by hand?); nothing moved"
            )
        if review.outcome == "rejected":
            raise StepSkipped(f"the reviewer declined version {version}: {review.reason}")
    reviewed = review is not None and review.outcome == "approved"
    kind = "forced_promotion" if evaluation.forced else "promotion"
    note = f"; reviewer: {review.comment}" if reviewed and review.comment else ""
    refresh_card = partial(model_card.update, ctx.registry, spec.name, evaluation.mlflow_run_id)
    try:
        after = ctx.registry.promote(
            spec.name, version, expected_champion=evaluation.champion_version, kind=kind,
            reason=reasons + note, by=review.by if reviewed and review.by else f"run {ctx.run.run_id}",
            run_id=ctx.run.run_id,
        )  # fmt: skip
    except PromotionConflictError as conflict:
        refused = str(conflict)
        refresh_card(lambda card: model_card.with_promotion(card, "refused", message=refused))
        raise
    stamp = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    ctx.registry.set_tags(
        spec.name,
        version,
        {Tag.PROMOTED_AT: stamp, Tag.PROMOTED_BY_RUN: ctx.run.run_id, Tag.DECISION: Decision.PROMOTED},
    )
    refresh_card(
        lambda card: model_card.with_status(
            model_card.with_promotion(
                card, "promoted", kind=kind, at=stamp, by_run=ctx.run.run_id, previous=after[PREVIOUS_ALIAS]
            ),
            Decision.PROMOTED,
        )
    )
    ctx.log.info(
        "PROMOTED %s version %s to '%s' (previous: %s)%s. Reasons: %s",
        spec.name, version, CHAMPION_ALIAS, after[PREVIOUS_ALIAS], " [forced]" if evaluation.forced else "", reasons,
    )  # fmt: skip
    return PromotionResult(model=spec.name, version=version, aliases=after, window_end=evaluation.window_end)
