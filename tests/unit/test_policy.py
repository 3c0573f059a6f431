"""The promotion policy, exhaustively: every combination of the rules, computed independently here."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from retrain.evaluation import BootstrapResult, Comparison, ModelScores
from retrain.policy import decide
from retrain.spec import PromotionSpec

FLOOR, MIN_IMPROVEMENT, MAX_SLICE = 0.6, 0.01, 0.05


def comparison(challenger: float, champion: float | None, baseline: float = 0.5, slice_loss: float = 0.0,
               boot_low: float | None = 0.02) -> Comparison:  # fmt: skip
    slices = {"plan": {"basic": challenger - slice_loss, "premium": challenger}}
    champion_scores = (
        None if champion is None else ModelScores(champion, {}, {"plan": {"basic": challenger, "premium": challenger}})
    )
    boot = (
        None
        if boot_low is None or champion is None
        else BootstrapResult(boot_low + 0.01, boot_low, boot_low + 0.02, 0.95, 100)
    )
    return Comparison("roc_auc", ModelScores(challenger, {}, slices), champion_scores, baseline, boot, 1000)


def policy(**overrides) -> PromotionSpec:
    return PromotionSpec(
        **{"min_improvement": MIN_IMPROVEMENT, "min_score": FLOOR, "max_slice_regression": MAX_SLICE, **overrides}
    )


CASES = list(itertools.product([True, False], repeat=7))


@pytest.mark.parametrize(
    ("has_champion", "floor_ok", "baseline_ok", "improves", "slices_ok", "significant_required", "forced"), CASES
)
def test_truth_table(has_champion, floor_ok, baseline_ok, improves, slices_ok, significant_required, forced):
    challenger = 0.80 if floor_ok else 0.55
    baseline = challenger - 0.1 if baseline_ok else challenger + 0.01
    champion = (challenger - 0.02 if improves else challenger - 0.005) if has_champion else None
    slice_loss = 0.0 if slices_ok else 0.2
    boot_low = 0.015 if improves else 0.0  # significant exactly when the improvement is real
    decision = decide(
        comparison(challenger, champion, baseline, slice_loss, boot_low),
        policy(require_significant=significant_required),
        force_promote=forced,
    )
    gates = floor_ok and baseline_ok
    comparison_ok = (not has_champion) or (improves and slices_ok and (not significant_required or improves))
    expected = gates and (comparison_ok or forced)
    assert decision.promote is expected
    assert decision.forced is (expected and not comparison_ok)
    assert decision.reasons, "every decision says why"
    if not floor_ok:
        assert any("floor min_score" in r and "<" in r for r in decision.reasons)
    if has_champion and not slices_ok and not forced and gates:
        assert any("slice plan=basic" in r for r in decision.reasons)


def test_improvement_boundary_is_inclusive():
    exactly = decide(comparison(0.81, 0.80, boot_low=None), policy(min_improvement=0.01, max_slice_regression=None))
    assert exactly.promote, exactly.reasons
    assert any("+0.0100 >= min_improvement 0.01" in r for r in exactly.reasons)
    below = decide(comparison(0.8099, 0.80, boot_low=None), policy(min_improvement=0.01, max_slice_regression=None))
    assert not below.promote


def test_significance_needs_a_bootstrap():
    decision = decide(comparison(0.9, 0.8, boot_low=None), policy(require_significant=True))
    assert not decision.promote and "no bootstrap interval" in " ".join(decision.reasons)


def test_uncomputable_challenger_never_promotes_even_forced():
    assert not decide(comparison(float("nan"), None), policy(), force_promote=True).promote


def test_no_floor_configured_means_only_the_baseline_gates():
    assert decide(comparison(0.55, None), policy(min_score=None)).promote


@given(
    challenger=st.floats(0, 1), champion=st.one_of(st.none(), st.floats(0, 1)), baseline=st.floats(0, 1),
    slice_loss=st.floats(0, 1), boot_low=st.one_of(st.none(), st.floats(-1, 1)), forced=st.booleans(),
    significant=st.booleans(), min_score=st.one_of(st.none(), st.floats(0, 1)),
)  # fmt: skip
def test_properties(challenger, champion, baseline, slice_loss, boot_low, forced, significant, min_score):
    spec = policy(min_score=min_score, require_significant=significant)
    case = comparison(challenger, champion, baseline, slice_loss, boot_low)
    decision = decide(case, spec, force_promote=forced)
    assert decision == decide(case, spec, force_promote=forced)  # deterministic
    assert decision.reasons
    if decision.promote:
        assert min_score is None or challenger >= min_score  # force never beats the floor
        assert challenger > baseline  # nor the baseline
    if decision.forced:
        assert forced and decision.promote
