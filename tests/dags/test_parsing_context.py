"""A task process builds only its own DAG from the DAG file; the DAG processor builds every spec's."""

from __future__ import annotations

import os

import pytest
from airflow.sdk.definitions._internal.dag_parsing_context import _airflow_parsing_context_manager

from tests.support import REPO, write_spec

DAG_FILE = REPO / "dags" / "retrain_models.py"
CONTEXT_VARIABLES = ("_AIRFLOW_PARSING_CONTEXT_DAG_ID", "_AIRFLOW_PARSING_CONTEXT_TASK_ID")


@pytest.fixture
def fleet_specs(tmp_path, monkeypatch):
    for name in ("ctx_a", "ctx_b", "ctx_c"):
        write_spec(tmp_path, name)
    (tmp_path / "Ctx-Broken.yaml").write_text("name: [not, a, name]\n")
    monkeypatch.setenv("RETRAIN_SPECS_DIR", str(tmp_path))
    return tmp_path


@pytest.fixture(autouse=True)
def no_context_left_behind():
    # Airflow's context manager restores the variables only if they were set before: it leaves them set in
    # this process, where every later DAG file parse (dag.test() in later tests, the e2e stack's processes)
    # would build just this test's DAG.
    before = {name: os.environ.get(name) for name in CONTEXT_VARIABLES}
    yield
    for name, value in before.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def parsed_dag_ids(dag_id: str | None = None, task_id: str | None = None) -> set[str]:
    from airflow.dag_processing.dagbag import DagBag

    # The task runner parses the DAG file under this context manager (task_runner.py, `parse`).
    with _airflow_parsing_context_manager(dag_id=dag_id, task_id=task_id):
        bag = DagBag(dag_folder=str(DAG_FILE))
    assert bag.import_errors == {}
    return set(bag.dag_ids)


def test_the_dag_processor_builds_every_spec(fleet_specs):
    assert "_AIRFLOW_PARSING_CONTEXT_DAG_ID" not in os.environ
    assert parsed_dag_ids() == {"retrain_ctx_a", "retrain_ctx_b", "retrain_ctx_c", "retrain_ctx_broken"}


def test_a_task_process_builds_only_its_own_dag(fleet_specs):
    assert parsed_dag_ids("retrain_ctx_b", "validate_data") == {"retrain_ctx_b"}
    assert parsed_dag_ids("retrain_ctx_broken", "spec_error") == {"retrain_ctx_broken"}


def test_a_task_of_an_unknown_dag_gets_no_dag(fleet_specs):
    # The task runner then reports "Dag not found" and fails the task, as it would without the filter.
    assert parsed_dag_ids("retrain_gone", "validate_data") == set()


def test_a_scoring_or_monitoring_task_finds_its_dag_too(tmp_path, monkeypatch):
    write_spec(tmp_path, "ctx_loop", loop=True)
    write_spec(tmp_path, "ctx_other", loop=True)
    monkeypatch.setenv("RETRAIN_SPECS_DIR", str(tmp_path))
    everything = {f"{chain}_{name}" for chain in ("retrain", "score", "monitor") for name in ("ctx_loop", "ctx_other")}
    assert parsed_dag_ids() == everything
    for dag_id in ("score_ctx_loop", "monitor_ctx_loop"):
        assert parsed_dag_ids(dag_id, "predict") == {"retrain_ctx_loop", "score_ctx_loop", "monitor_ctx_loop"}
