"""promote: the only step that moves the `champion` alias, when the evaluation decided so."""

from __future__ import annotations

import datetime as dt

from retrain.contracts import EvaluationResult, PromotionResult
from retrain.errors import RetrainError, StepSkipped
from retrain.pipeline import StepContext
from retrain.registry import CHAMPION_ALIAS, PREVIOUS_ALIAS
from retrain.tags import Decision, Tag


def run(ctx: StepContext) -> PromotionResult:
    """Moves `champion` to the evaluated version (and `previous` to the old one) and tags the version.

    Declined, dry-run and already-champion runs raise StepSkipped, so the model's Asset is only
    updated by a real promotion.
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
    after = ctx.registry.promote(spec.name, version, expected_champion=evaluation.champion_version)
    stamp = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    ctx.registry.set_tags(
        spec.name,
        version,
        {Tag.PROMOTED_AT: stamp, Tag.PROMOTED_BY_RUN: ctx.run.run_id, Tag.DECISION: Decision.PROMOTED},
    )
    ctx.log.info(
        "PROMOTED %s version %s to '%s' (previous: %s)%s. Reasons: %s",
        spec.name, version, CHAMPION_ALIAS, after[PREVIOUS_ALIAS], " [forced]" if evaluation.forced else "", reasons,
    )  # fmt: skip
    return PromotionResult(model=spec.name, version=version, aliases=after, window_end=evaluation.window_end)
