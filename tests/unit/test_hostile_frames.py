"""Property-based: whatever frame arrives (wrong types, NaN/inf, empty, huge strings, unicode column
names), validation ends in a verdict or a named error, never a crash or a hang; reports are atomic."""

from __future__ import annotations

import datetime as dt
import os

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from retrain.errors import RetrainError
from retrain.report import write_atomic
from retrain.spec import load_spec
from retrain.validation import failure_message, validate_frame
from retrain.window import Window
from tests.support import REPO

SPEC = load_spec(REPO / "include" / "models" / "churn.yaml")
WINDOW = Window.ending(dt.date(2025, 5, 1), SPEC.data)
COLUMNS = [*SPEC.input_columns, "ünïcødé 列", "x" * 300, ""]
CELLS = st.one_of(
    st.none(),
    st.just(float("nan")),
    st.just(float("inf")),
    st.just(-float("inf")),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.just("é" * 100_000),
    st.booleans(),
    st.datetimes(min_value=dt.datetime(1970, 1, 1), max_value=dt.datetime(2100, 1, 1), timezones=st.just(dt.UTC)),
)


@st.composite
def frames(draw) -> pd.DataFrame:
    names = draw(st.lists(st.sampled_from(COLUMNS), unique=True, max_size=len(COLUMNS)))
    rows = draw(st.integers(min_value=0, max_value=6))
    return pd.DataFrame({name: [draw(CELLS) for _ in range(rows)] for name in names}, dtype=object)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(frame=frames())
def test_any_frame_gets_a_verdict_or_a_named_error(frame):
    try:
        outcome = validate_frame(frame, SPEC, WINDOW)
    except RetrainError as error:
        assert str(error), "an error must say what is wrong"
        return
    # Every hostile frame here lacks rows or columns the spec needs: it must not pass.
    assert not outcome.success
    assert failure_message(outcome).count("FAILED") + failure_message(outcome).count("ERROR") >= 1


def test_a_frame_with_inf_and_nan_in_a_numeric_feature_fails_on_that_column():
    good = pd.DataFrame(
        {
            "event_time": pd.date_range("2025-04-01", periods=4, freq="D", tz="UTC"),
            "tenure_months": [1, 2, np.inf, np.nan],
            "monthly_spend": [1.0, 2.0, 3.0, 4.0],
            "support_tickets": [0, 1, 2, 3],
            "sessions_last_week": [1, 2, 3, 4],
            "plan": ["basic", "standard", "premium", "basic"],
            "region": ["north", "south", "east", "west"],
            "churned": [0, 1, 0, 1],
        }
    )
    spec = SPEC.model_copy(update={"validation": SPEC.validation.model_copy(update={"min_rows": 1})})
    outcome = validate_frame(good, spec, WINDOW)
    assert not outcome.success
    assert "tenure_months" in failure_message(outcome)


def test_report_write_that_dies_leaves_neither_a_half_file_nor_a_temporary(tmp_path, monkeypatch):
    target = tmp_path / "reports" / "validation.html"
    write_atomic(target, "old, complete report")

    def crash(src, dst):
        raise OSError("worker killed during rename")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="worker killed"):
        write_atomic(target, "new report")
    assert target.read_text() == "old, complete report"
    assert sorted(p.name for p in target.parent.iterdir()) == ["validation.html"]
