"""Test-wide environment. Runs before any test module imports Airflow, so Airflow reads it."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from tests.support import REPO

_home = Path(tempfile.mkdtemp(prefix="retrain-tests-"))

os.environ["AIRFLOW_HOME"] = str(_home / "airflow")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(REPO / "dags")
os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(REPO / "plugins")
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "False"
os.environ["RETRAIN_ARTIFACTS_ROOT"] = str(_home / "artifacts")
os.environ["RETRAIN_SPECS_DIR"] = str(REPO / "include" / "models")
os.environ["RETRAIN_TRAINING_BACKEND"] = "local"
# Specs written by tests name their data by absolute path, under the repository or a temporary folder:
# the deployment's allow-list for such paths (README "Environment").
os.environ["RETRAIN_ALLOWED_DATA_URIS"] = f"{REPO},{tempfile.gettempdir()}"
os.environ["GX_ANALYTICS_ENABLED"] = "False"
os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
# Unit tests must never reach a tracking server by accident; integration tests set their own.
os.environ.pop("MLFLOW_TRACKING_URI", None)
Path(os.environ["AIRFLOW_HOME"]).mkdir(parents=True, exist_ok=True)

_PARSING_CONTEXT = ("_AIRFLOW_PARSING_CONTEXT_DAG_ID", "_AIRFLOW_PARSING_CONTEXT_TASK_ID")


@pytest.fixture(autouse=True)
def _no_parsing_context_left_behind():
    """A test that leaves Airflow's parsing context in the environment makes every later parse of the DAG
    file build one DAG only (dags/retrain_models.py): later dag.test() runs and the e2e stack then miss theirs."""
    yield
    leaked = {name: os.environ[name] for name in _PARSING_CONTEXT if name in os.environ}
    assert not leaked, f"this test left Airflow's parsing context set: {leaked}"
