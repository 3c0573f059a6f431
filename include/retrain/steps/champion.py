"""resolve_champion: the alias `champion` resolved to a version once, at the start of a scoring run.

Every later step scores with that version, even if a promotion moves the alias meanwhile (the promotion
then starts its own scoring run). No champion yet: the run ends skipped, with the reason, not failed.
"""

from __future__ import annotations

from retrain.contracts import ChampionResult
from retrain.errors import StepSkipped
from retrain.pipeline import StepContext
from retrain.registry import CHAMPION_ALIAS


def run(ctx: StepContext) -> ChampionResult:
    """The champion's version and MLflow run; raises StepSkipped when the model has no champion yet."""
    name = ctx.spec.name
    champion = ctx.registry.champion(name)
    if champion is None:
        raise StepSkipped(
            f"no champion yet for {name}: the alias '{CHAMPION_ALIAS}' does not exist, so there is nothing to score"
            f" {ctx.run.day}; scoring starts with the first promotion (retrain_{name})"
        )
    ctx.log.info(
        "scoring %s for %s with version %s (alias %s, resolved once)",
        name,
        ctx.run.day,
        champion.version,
        CHAMPION_ALIAS,
    )
    return ChampionResult(
        model=name, version=champion.version, mlflow_run_id=champion.run_id or "", alias=CHAMPION_ALIAS
    )
