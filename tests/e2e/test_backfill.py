"""`airflow backfill` through the REST API: seven nights, one after another, each with its own
window, each promotion decided against the champion of that moment."""

from __future__ import annotations

import datetime as dt
import itertools
import time

import pytest
from mlflow import MlflowClient

from tests.e2e.conftest import BACKFILL_MODEL

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
DAG_ID = f"retrain_{BACKFILL_MODEL}"
NIGHTS = [dt.date(2025, 5, 1) + dt.timedelta(days=i) for i in range(7)]


def test_backfill_of_seven_nights_runs_them_in_order_against_the_champion_of_the_moment(stack):
    stack.wait_for_dags(DAG_ID)
    body = {
        "dag_id": DAG_ID,
        "from_date": "2025-05-01T00:00:00Z",
        "to_date": "2025-05-07T03:00:00Z",
        "max_active_runs": 1,
        "reprocess_behavior": "none",
    }
    # Created while the DAG is paused, in one request: on PostgreSQL no retry is needed (on SQLite,
    # Airflow answered 503 "Database is locked" under the concurrent writes unpausing causes).
    backfill = stack.request("POST", "/api/v2/backfills", body)
    # Tasks of a paused DAG are never scheduled, backfill or not. Unpausing a nightly DAG with
    # catchup=False also starts the latest scheduled night, which has no data: it must fail cleanly.
    stack.request("PATCH", f"/api/v2/dags/{DAG_ID}", {"is_paused": False})
    deadline = time.monotonic() + 900
    while stack.request("GET", f"/api/v2/backfills/{backfill['id']}")["completed_at"] is None:
        assert time.monotonic() < deadline, "backfill did not complete in 15 minutes"
        time.sleep(5)

    runs = stack.request("GET", f"/api/v2/dags/{DAG_ID}/dagRuns?limit=100&order_by=logical_date")["dag_runs"]
    backfilled = [r for r in runs if r["run_type"] == "backfill"]
    assert [dt.datetime.fromisoformat(r["logical_date"]).date() for r in backfilled] == NIGHTS
    for run in backfilled:
        states = stack.task_states(DAG_ID, run["dag_run_id"])
        assert run["state"] == "success", (run["dag_run_id"], states)
        assert {s for t, s in states.items() if t != "promote"} == {"success"}
    # One after another: each night starts after the previous one ended.
    for earlier, later in itertools.pairwise(backfilled):
        assert earlier["end_date"] <= later["start_date"]

    client = MlflowClient(stack.mlflow)
    versions = sorted(client.search_model_versions(f"name='{BACKFILL_MODEL}'"), key=lambda v: int(v.version))
    assert [v.tags["retrain.window_end"] for v in versions] == [n.isoformat() for n in NIGHTS]
    champion = None
    for version in versions:
        # The champion this night was compared with is the one the earlier nights left behind.
        assert version.tags.get("retrain.champion_version_at_evaluation", "") == (champion or "")
        if version.tags["retrain.decision"] == "promoted":
            champion = version.version
    assert client.get_model_version_by_alias(BACKFILL_MODEL, "champion").version == champion

    scheduled = [r for r in runs if r["run_type"] == "scheduled"]
    assert len(scheduled) <= 1, "catchup=False: unpausing starts at most the latest night"
    for run in scheduled:  # today's night: no data in the window, so validation stops it
        run = stack.wait_for_run(DAG_ID, run["dag_run_id"])
        assert run["state"] == "failed"
        assert stack.task_states(DAG_ID, run["dag_run_id"])["validate_data"] == "failed"
