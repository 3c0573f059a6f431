"""Real components for integration tests: an Airflow metadata DB and an MLflow tracking server."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import MlflowServer, ensure_demo_data, migrate_airflow_db, tracking


@pytest.fixture(scope="session")
def airflow_db() -> None:
    migrate_airflow_db()


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory):
    with tracking(MlflowServer(tmp_path_factory.mktemp("mlflow")).start()) as server:
        yield server


@pytest.fixture
def spec_dir(tmp_path) -> Path:
    directory = tmp_path / "specs"
    directory.mkdir()
    return directory


@pytest.fixture
def registry(mlflow_server):
    """The package's own registry boundary on the test server."""
    from retrain.registry import Registry

    return Registry(mlflow_server.uri)


@pytest.fixture
def mlflow_client(mlflow_server):
    """MLflow's own client, for what the boundary does not expose (run inputs, artifact listings)."""
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=mlflow_server.uri)


@pytest.fixture(autouse=True)
def _demo_data():
    ensure_demo_data()


@pytest.fixture(scope="session")
def postgres():
    """A real PostgreSQL server (Debian's, through scripts/postgres.sh) on a free loopback port, once per session."""
    from tests.support.postgres import PostgresServer

    server = PostgresServer().start()
    try:
        yield server
    finally:
        server.remove()


@pytest.fixture(scope="session")
def warehouse(postgres):
    """The demo data as table public.events, and the Airflow connection `warehouse` to it (AIRFLOW_CONN_ env)."""
    import os

    import pandas as pd

    from tests.support import DEMO_DATA
    from tests.support.postgres import load_frame

    ensure_demo_data()
    frame = pd.concat([pd.read_parquet(p) for p in sorted(DEMO_DATA.glob("*.parquet"))], ignore_index=True)
    engine = postgres.engine()
    load_frame(engine, "events", frame)
    engine.dispose()
    os.environ["AIRFLOW_CONN_WAREHOUSE"] = postgres.airflow_connection()
    try:
        yield postgres
    finally:
        os.environ.pop("AIRFLOW_CONN_WAREHOUSE", None)
