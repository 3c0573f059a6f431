"""The README's upstream DAG example: its outlet emits one event on `data_churn` with the window's end and a reason,
and the event is queued for `retrain_churn`, whose spec listens to data events (what the scheduler turns into one
asset-triggered run: tests/e2e/test_loop_stack.py runs that part on the real scheduler)."""

from __future__ import annotations

import datetime as dt
import runpy
import shutil

import pytest

from tests.support import REPO

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("airflow_db")]


def test_the_upstream_dag_example_emits_one_data_event_queued_for_the_retraining(monkeypatch, tmp_path):
    from airflow.models.asset import AssetDagRunQueue, AssetEvent, AssetModel
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session

    monkeypatch.setenv("RETRAIN_SPECS_DIR", str(REPO / "include" / "models"))
    # As the README says: the example copied into a DAGs folder beside this package's DAG file (dag.test()
    # creates runs only of DAGs it finds in the configured DAG folders).
    example = tmp_path / "dags" / "ingest_churn.py"
    example.parent.mkdir()
    shutil.copy(REPO / "docs" / "examples" / "ingest_churn.py", example)
    shutil.copy(REPO / "dags" / "retrain_models.py", example.parent / "retrain_models.py")
    from airflow import settings

    monkeypatch.setattr(settings, "DAGS_FOLDER", str(example.parent))  # the default bundle's path
    dag = runpy.run_path(str(example))["ingest_churn"]()
    dag.test(logical_date=dt.datetime(2025, 6, 30, tzinfo=dt.UTC))  # writes every DAG of the DAGs folder to the DB
    with create_session() as session:
        session.query(DagModel).filter(DagModel.dag_id == "retrain_churn").update({"is_paused": False})
        session.query(AssetDagRunQueue).delete()
    run = dag.test(logical_date=dt.datetime(2025, 7, 1, 1, 30, tzinfo=dt.UTC))
    assert {ti.task_id: str(ti.state) for ti in run.get_task_instances()} == {"land_daily_export": "success"}
    with create_session() as session:
        (event,) = (
            session.query(AssetEvent)
            .join(AssetModel, AssetModel.id == AssetEvent.asset_id)
            .filter(AssetModel.name == "data_churn", AssetEvent.source_run_id == run.run_id)
            .all()
        )
        assert event.extra == {"end_date": "2025-07-01", "reason": "daily export for 2025-07-01 landed"}
        queued = {q.target_dag_id for q in session.query(AssetDagRunQueue).filter(AssetDagRunQueue.asset_id == event.asset_id)}
    assert queued == {"retrain_churn"}
