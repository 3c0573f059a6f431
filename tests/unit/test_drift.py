"""Drift statistics with known answers, and the demo data's documented change point."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest

from retrain.demo_data import generate
from retrain.drift import EPSILON, compute_drift, psi, psi_categorical, psi_from_proportions, render_html, should_skip
from retrain.features import prepare_frame, typed_frame
from retrain.spec import load_spec
from tests.support import REPO

SPEC = load_spec(REPO / "include" / "models" / "churn.yaml")
rng = np.random.default_rng(0)


def test_psi_by_hand():
    reference, current = np.array([0.5, 0.5]), np.array([0.25, 0.75])
    expected = (0.25 - 0.5) * np.log(0.25 / 0.5) + (0.75 - 0.5) * np.log(0.75 / 0.5)
    assert psi_from_proportions(reference, current) == pytest.approx(expected)
    assert psi_from_proportions(reference, reference) == 0.0


def test_identical_distributions_do_not_drift():
    values = pd.Series(rng.normal(size=20_000))
    assert psi(values, values.sample(frac=1.0, random_state=1)) == pytest.approx(0.0, abs=1e-12)


def test_shifted_normal_drifts_strongly():
    reference = pd.Series(rng.normal(0, 1, 20_000))
    current = pd.Series(rng.normal(1, 1, 20_000))
    assert psi(reference, current) > 0.5


def test_missing_values_count_as_their_own_bin():
    reference = pd.Series(rng.normal(size=10_000))
    current = reference.copy()
    current[: len(current) // 2] = np.nan
    assert psi(reference, current) > 1.0


def test_categorical_psi_with_unseen_category():
    reference = pd.Series(["a"] * 500 + ["b"] * 500)
    current = pd.Series(["a"] * 500 + ["c"] * 500)
    expected = psi_from_proportions(np.array([0.5, 0.5, EPSILON]), np.array([0.5, EPSILON, 0.5]))
    assert psi_categorical(reference, current) == pytest.approx(expected)


def test_categories_are_compared_by_their_text_with_missing_as_one_category():
    """An object column from a CSV (1, "1", None) against the same categories read as Arrow strings."""
    reference = pd.Series(["1"] * 300 + ["2"] * 300 + [None] * 400, dtype="str")
    current = pd.Series([1] * 150 + ["1"] * 150 + ["2"] * 300 + [None] * 200 + [np.nan] * 200, dtype=object)
    assert psi_categorical(reference, current) == pytest.approx(0.0, abs=1e-12)
    shifted = pd.Series(["1"] * 600 + ["2"] * 300 + [None] * 100, dtype="str")
    assert psi_categorical(reference, shifted) > 0.1


def _window(start: str, end: str) -> pd.DataFrame:
    return prepare_frame(generate(dt.date.fromisoformat(start), dt.date.fromisoformat(end), rows_per_day=150), SPEC)


def test_demo_data_drifts_only_after_the_change_point():
    reference = _window("2025-03-01", "2025-04-24")
    before = compute_drift(reference, _window("2025-04-24", "2025-05-24"), SPEC)
    after = compute_drift(reference, _window("2025-07-01", "2025-08-01"), SPEC)
    assert not before.any_drift, before.to_dict()
    assert {"monthly_spend", "plan"} <= set(after.drifted_features)
    assert "region" not in after.drifted_features and "tenure_months" not in after.drifted_features


def test_drift_does_not_depend_on_row_order():
    """The drift task compares the typed window as read (no sort): the same report as on the sorted frame."""
    reference = _window("2025-03-01", "2025-04-24")
    raw = generate(dt.date(2025, 7, 1), dt.date(2025, 8, 1), rows_per_day=150).sample(frac=1.0, random_state=2)
    unsorted = compute_drift(reference, typed_frame(raw, SPEC), SPEC)
    assert unsorted.to_dict() == compute_drift(reference, prepare_frame(raw, SPEC), SPEC).to_dict()
    assert unsorted.any_drift


def test_degenerate_inputs_do_not_crash():
    constant = pd.DataFrame({c: [1.0] * 200 for c in SPEC.features.numeric} | {"plan": ["basic"] * 200, "region": ["north"] * 200,
                                                                               "churned": [0] * 200})  # fmt: skip
    report = compute_drift(constant, constant.iloc[:0], SPEC)
    assert not report.any_drift
    json.dumps(report.to_dict(), allow_nan=False)
    same = compute_drift(constant, constant, SPEC)
    assert all(c.psi == 0.0 for c in same.columns)


def test_report_is_json_safe_and_plots_only_drifted_features():
    reference = _window("2025-03-01", "2025-04-24")
    current = _window("2025-07-01", "2025-08-01")
    report = compute_drift(reference, current, SPEC)
    json.dumps(report.to_dict(), allow_nan=False)
    page = render_html(report, reference, current, "[2025-07-01, 2025-08-01)", "3")
    assert page.count("<img") == len(report.drifted_features) + int(report.label_drifted)
    assert "champion version 3" in page


def test_skip_policy():
    reference = _window("2025-03-01", "2025-04-24")
    quiet = compute_drift(reference, _window("2025-04-24", "2025-05-24"), SPEC)
    on_drift = SPEC.model_copy(update={"drift": SPEC.drift.model_copy(update={"retrain": "on_drift"})})
    assert should_skip(quiet, SPEC, force=False) is None  # retrain: always
    assert "nothing to do" in should_skip(quiet, on_drift, force=False)
    assert should_skip(quiet, on_drift, force=True) is None
    assert should_skip(None, on_drift, force=False) is None  # no champion: train


@pytest.mark.parametrize(
    ("n_ref", "n_cur", "kind"),
    [
        (50_000, 200_000, "normal"),  # the drift step's shape: a reference sample against a large window
        (200_000, 30_000, "normal"),  # the larger side is the reference
        (20_000, 20_000, "shifted"),
        (15_000, 120_000, "ties"),  # few distinct values: every point a tie
        (12_000, 40_000, "disjoint"),
        (3_000, 8_000, "normal"),  # small: scipy's exact p-value, called as it is
    ],
)
def test_ks_equals_scipy_bit_for_bit(n_ref, n_cur, kind):
    from scipy.stats import ks_2samp

    from retrain.drift import _ks, _sorted_values

    gen = np.random.default_rng(n_ref + n_cur)
    ref, cur = gen.normal(size=n_ref), gen.normal(size=n_cur)
    if kind == "shifted":
        cur = cur + 0.03
    elif kind == "ties":
        ref, cur = gen.integers(0, 7, n_ref).astype(float), gen.integers(0, 8, n_cur).astype(float)
    elif kind == "disjoint":
        cur = cur + 100.0
    expected = ks_2samp(ref, cur)
    (a, _), (b, _) = _sorted_values(pd.Series(ref)), _sorted_values(pd.Series(cur))
    assert _ks(a, b) == (float(expected.statistic), float(expected.pvalue))


def test_binned_counts_equal_numpy_histogram():
    from retrain.drift import _binned, _edges, _sorted_values

    gen = np.random.default_rng(5)
    reference = pd.Series(gen.normal(size=5_000))
    current = pd.Series(np.r_[gen.normal(0.5, 2, 20_000), np.round(gen.normal(size=3_000), 1), [np.nan] * 40])
    edges = _edges(np.sort(reference.to_numpy()), 10)
    values, missing = _sorted_values(current)
    expected = np.histogram(current.dropna(), bins=edges)[0]
    np.testing.assert_array_equal(_binned(values, missing, edges), np.append(expected, 40))


def test_an_integer_label_that_gains_a_missing_value_is_not_new_categories():
    """pandas turns an integer column with one null into float: 1 must still count as 1, not as "1.0"."""
    reference = pd.Series([0, 1] * 500)
    current = pd.Series([0.0, 1.0] * 499 + [1.0, None])
    assert psi_categorical(reference, current) < 0.01
