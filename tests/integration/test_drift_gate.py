"""The drift gate in whole DAG runs: `retrain: on_drift` skips a quiet night, `force` overrides it,
and the night after the data's change point retrains, each against a real MLflow server."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from tests.support import TASKS, artifacts, run_dag, write_spec

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("airflow_db", "mlflow_server")]


def drift_report(name: str, end: dt.date) -> dict:
    folder = artifacts(name) / "reports" / f"end_date={end}"
    return json.loads(max(folder.glob("*/drift.json"), key=lambda p: p.stat().st_mtime).read_text())


def test_on_drift_policy_skips_a_quiet_night_retrains_when_forced_and_after_the_change_point(spec_dir, registry):
    spec_path = write_spec(spec_dir, **{"drift.retrain": "on_drift"})
    name = spec_path.stem
    # No champion yet: nothing to compare with, so the first night trains.
    assert run_dag(spec_path, dt.date(2025, 5, 1))[0] == dict.fromkeys(TASKS, "success")

    states, _ = run_dag(spec_path, dt.date(2025, 5, 2))
    assert states["validate_data"] == "success"
    assert states["check_drift"] == "skipped"
    assert {states[t] for t in TASKS[2:]} == {"skipped"}
    quiet = drift_report(name, dt.date(2025, 5, 2))
    assert quiet["drifted_features"] == []
    assert [v.version for v in registry.versions(name)] == ["1"]

    states, _ = run_dag(spec_path, dt.date(2025, 5, 2), force=True)
    assert {states[t] for t in TASKS[:5]} == {"success"}
    assert len(registry.versions(name)) == 2

    states, _ = run_dag(spec_path, dt.date(2025, 7, 1))
    assert {states[t] for t in TASKS[:5]} == {"success"}
    shifted = drift_report(name, dt.date(2025, 7, 1))
    assert "monthly_spend" in shifted["drifted_features"]
    assert len(registry.versions(name)) == 3
    assert registry.champion(name) is not None
