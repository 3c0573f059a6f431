"""The promotion policy: a pure decision with a reason for every rule it applied.

Rules, in order:
1. floor: the challenger's primary metric must be >= promotion.min_score (never overridden);
2. baseline: it must beat the majority-class / mean baseline (if require_beats_baseline; never overridden);
3. improvement: with a champion, challenger - champion >= min_improvement;
4. slices: no slice may lose more than max_slice_regression against the champion;
5. significance: if require_significant, the bootstrap lower bound must exceed min_improvement.
`force_promote` skips rules 3-5 (the comparison), is recorded as forced, and still obeys 1-2.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from retrain.evaluation import Comparison
from retrain.spec import PromotionSpec


@dataclass(frozen=True)
class Decision:
    promote: bool
    reasons: tuple[str, ...]
    forced: bool = False

    def to_dict(self) -> dict:
        return {"promote": self.promote, "reasons": list(self.reasons), "forced": self.forced}


def _ok(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def decide(comparison: Comparison, policy: PromotionSpec, force_promote: bool = False) -> Decision:
    metric = comparison.metric
    challenger = comparison.challenger.primary
    champion = None if comparison.champion is None else comparison.champion.primary
    passed: list[str] = []
    failed: list[str] = []

    if not _ok(challenger):
        return Decision(False, (f"{metric} of the challenger could not be computed on the holdout",), False)
    if policy.min_score is not None:
        (passed if challenger >= policy.min_score else failed).append(
            f"{metric} {challenger:.4f} {'>=' if challenger >= policy.min_score else '<'} floor min_score {policy.min_score}"
        )
    if policy.require_beats_baseline:
        if _ok(comparison.baseline):
            (passed if challenger > comparison.baseline else failed).append(
                f"{metric} {challenger:.4f} {'>' if challenger > comparison.baseline else '<='} baseline {comparison.baseline:.4f}"
            )
        else:
            failed.append(f"baseline {metric} could not be computed; cannot check the challenger beats it")
    gates_failed = bool(failed)

    comparison_failed: list[str] = []
    if comparison.champion is None:
        passed.append("no champion yet: the first model that passes the floor and the baseline becomes champion")
    elif not _ok(champion):
        passed.append(f"champion's {metric} could not be computed on this holdout: treated as beaten")
    else:
        delta = challenger - champion
        enough = delta >= policy.min_improvement
        (passed if enough else comparison_failed).append(
            f"{metric} {challenger:.4f} vs champion {champion:.4f}: {delta:+.4f} "
            f"{'>=' if enough else '<'} min_improvement {policy.min_improvement}"
        )
        if policy.max_slice_regression is not None:
            regressions = [
                (column, value, champion_slice - challenger_slice)
                for column, values in comparison.challenger.slices.items()
                for value, challenger_slice in values.items()
                if _ok(challenger_slice)
                and _ok(champion_slice := (comparison.champion.slices.get(column) or {}).get(value))
                and champion_slice - challenger_slice > policy.max_slice_regression
            ]
            if regressions:
                comparison_failed += [
                    f"slice {column}={value}: {metric} falls by {loss:.4f} > max_slice_regression {policy.max_slice_regression}"
                    for column, value, loss in regressions
                ]
            else:
                passed.append(f"no slice falls by more than max_slice_regression {policy.max_slice_regression}")
        if policy.require_significant:
            boot = comparison.bootstrap
            if boot is None:
                comparison_failed.append("require_significant: no bootstrap interval available")
            else:
                significant = boot.low > policy.min_improvement
                (passed if significant else comparison_failed).append(
                    f"bootstrap {boot.confidence:.0%} interval of the improvement [{boot.low:+.4f}, {boot.high:+.4f}]: "
                    f"lower bound {'>' if significant else '<='} min_improvement {policy.min_improvement}"
                )

    if gates_failed:
        return Decision(False, tuple(failed + comparison_failed), False)
    if comparison_failed and force_promote:
        return Decision(
            True, ("forced by the trigger's force_promote: comparison overridden", *comparison_failed, *passed), True
        )
    if comparison_failed:
        return Decision(False, tuple(comparison_failed + passed), False)
    return Decision(True, tuple(passed), False)
