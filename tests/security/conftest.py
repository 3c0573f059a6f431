"""Fixtures of the security layer: a real MLflow server with one model whose champion was made by a real
DAG run, so a hostile input can be shown to leave the champion where it was."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

import pytest

from tests.support import BIN, REPO, MlflowServer, ensure_demo_data, run_dag, tracking, write_spec

CHAMPION_NIGHT = dt.date(2025, 5, 1)


@pytest.fixture(scope="session")
def security_airflow_db() -> None:
    subprocess.run([str(BIN / "airflow"), "db", "migrate"], check=True, capture_output=True)
    subprocess.run([sys.executable, str(REPO / "scripts" / "apply_airflow_settings.py"), str(REPO / "airflow_settings.yaml")],
                   check=True, capture_output=True)  # fmt: skip


@pytest.fixture(scope="session")
def security_mlflow(tmp_path_factory):
    with tracking(MlflowServer(tmp_path_factory.mktemp("security-mlflow")).start()) as server:
        yield server


@pytest.fixture(scope="session")
def guarded_model(security_airflow_db, security_mlflow, tmp_path_factory):
    """A model with a champion (version 1, trained and promoted by a real run): (spec path, registry)."""
    from retrain.registry import Registry

    ensure_demo_data()
    spec_dir = tmp_path_factory.mktemp("guarded-specs")
    # A small model and no bootstrap: the fixture needs a real champion, not a good one.
    spec_path = write_spec(spec_dir, name="guarded", **{"model.params": {"max_iter": 30}, "evaluation.bootstrap.resamples": 0})
    states, _ = run_dag(spec_path, CHAMPION_NIGHT)
    assert set(states.values()) == {"success"}, states
    registry = Registry(security_mlflow.uri)
    assert registry.champion("guarded").version == "1"
    return spec_path, registry
