"""The approval gate as the DAG processor builds it: present only when the spec asks, Airflow's own
ApprovalOperator between evaluate and promote, and an approver the auth manager does not know is a spec error."""

from __future__ import annotations

import datetime as dt
import itertools
import os
from pathlib import Path

import pytest
from airflow.providers.standard.operators.hitl import ApprovalOperator

from tests.support import REPO, write_spec

GATED = ["validate_data", "check_drift", "build_features", "train", "evaluate", "approve_promotion", "promote"]


def dagbag(specs: Path):
    from airflow.dag_processing.dagbag import DagBag

    previous = os.environ["RETRAIN_SPECS_DIR"]
    os.environ["RETRAIN_SPECS_DIR"] = str(specs)
    try:
        return DagBag(dag_folder=str(REPO / "dags" / "retrain_models.py"))
    finally:
        os.environ["RETRAIN_SPECS_DIR"] = previous


def test_the_approval_task_sits_between_evaluate_and_promote_only_when_the_spec_asks(tmp_path, monkeypatch):
    monkeypatch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", "alice:user,bob:admin,vic:viewer")
    write_spec(tmp_path, "gated", **{"promotion.approval": "always", "promotion.approvers": ["alice", "bob"],
                                     "promotion.approval_timeout_minutes": 90})  # fmt: skip
    write_spec(tmp_path, "ungated")
    bag = dagbag(tmp_path)
    assert bag.import_errors == {}
    assert "approve_promotion" not in bag.dags["retrain_ungated"].task_ids
    dag = bag.dags["retrain_gated"]
    assert [t.task_id for t in dag.topological_sort()] == GATED
    for upstream, downstream in itertools.pairwise(GATED):
        assert dag.get_task(upstream).downstream_task_ids == {downstream}
    gate = dag.get_task("approve_promotion")
    assert isinstance(gate, ApprovalOperator)
    assert gate.assigned_users == [{"id": "alice", "name": "alice"}, {"id": "bob", "name": "bob"}]
    assert gate.response_timeout == dt.timedelta(minutes=90)
    assert gate.defaults == ["Reject"], "no answer by the timeout is a rejection"
    assert gate.retries == 0, "a retry would post a second request"
    assert set(gate.params) == {"comment"}, "the request's form is the comment, not the DAG's trigger form"
    assert "approve_promotion" in dag.doc_md


@pytest.mark.parametrize("users", ["alice:user,vic:viewer", "admin:admin"])
def test_an_unknown_approver_is_an_invalid_spec_naming_the_field(tmp_path, monkeypatch, users):
    monkeypatch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", users)
    write_spec(tmp_path, "gated", **{"promotion.approval": "always", "promotion.approvers": ["alice", "mallory"]})
    bag = dagbag(tmp_path)
    assert bag.import_errors == {}
    dag = bag.dags["retrain_gated"]
    assert "invalid-spec" in dag.tags
    assert "gated.yaml" in dag.doc_md and "field 'promotion.approvers'" in dag.doc_md
    unknown = ["mallory"] if "alice" in users else ["alice", "mallory"]
    assert f"unknown assigned user(s) {unknown}" in dag.doc_md


def test_approvers_are_not_checked_when_the_auth_manager_cannot_list_its_users(tmp_path, monkeypatch):
    monkeypatch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "True")
    write_spec(tmp_path, "gated", **{"promotion.approval": "always", "promotion.approvers": ["mallory"]})
    gate = dagbag(tmp_path).dags["retrain_gated"].get_task("approve_promotion")
    assert gate.assigned_users == [{"id": "mallory", "name": "mallory"}]
