"""Fixtures of the security layer: a real MLflow server with one model whose champion was made by a real
DAG run, so a hostile input can be shown to leave the champion where it was."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.support import MlflowServer, ensure_demo_data, migrate_airflow_db, run_dag, tracking, write_spec

CHAMPION_NIGHT = dt.date(2025, 5, 1)


@pytest.fixture(scope="session")
def guarded_model(tmp_path_factory):
    """A model with a champion (version 1, trained and promoted by a real run): (spec path, registry)."""
    from retrain.registry import Registry

    migrate_airflow_db()
    ensure_demo_data()
    with tracking(MlflowServer(tmp_path_factory.mktemp("security-mlflow")).start()) as server:
        yield _champion(tmp_path_factory, Registry(server.uri))


def _champion(tmp_path_factory, registry):
    """Trains and promotes version 1 of the model `guarded` with a real DAG run."""
    spec_dir = tmp_path_factory.mktemp("guarded-specs")
    # A small model and no bootstrap: the fixture needs a real champion, not a good one.
    spec_path = write_spec(spec_dir, name="guarded", **{"model.params": {"max_iter": 30}, "evaluation.bootstrap.resamples": 0})
    states, _ = run_dag(spec_path, CHAMPION_NIGHT)
    assert set(states.values()) == {"success"}, states
    assert registry.champion("guarded").version == "1"
    return spec_path, registry
