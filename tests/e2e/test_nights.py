"""Two nights of one model triggered at the same moment on the real scheduler: the DAG's
max_active_runs=1 makes the second wait for the first, so each is evaluated against the champion
the other left, and the champion history (`champion`, `previous`, the tags) stays consistent."""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor

import pytest
from mlflow import MlflowClient

from retrain.registry import CHAMPION_ALIAS, PREVIOUS_ALIAS
from retrain.tags import Decision, Tag
from tests.e2e.conftest import NIGHTS_MODEL
from tests.support import TASKS

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
DAG_ID = f"retrain_{NIGHTS_MODEL}"
NIGHTS = ("2025-05-01", "2025-07-01")


def test_two_nights_triggered_together_run_one_after_the_other_and_keep_the_champion_history(stack):
    stack.wait_for_dags(DAG_ID)
    stack.request("PATCH", f"/api/v2/dags/{DAG_ID}", {"is_paused": False})

    def trigger(end_date: str) -> str:
        # force_promote: both nights promote whatever their order, so the aliases have one right
        # answer; what is under test is the order of the runs and the registry's bookkeeping.
        conf = {"end_date": end_date, "force_promote": True}
        return stack.request("POST", f"/api/v2/dags/{DAG_ID}/dagRuns", {"logical_date": None, "conf": conf})[
            "dag_run_id"
        ]

    with ThreadPoolExecutor(max_workers=2) as pool:  # both requests in flight at once
        run_ids = list(pool.map(trigger, NIGHTS))
    assert len(set(run_ids)) == 2
    runs = [stack.wait_for_run(DAG_ID, run_id) for run_id in run_ids]
    for run in runs:
        states = stack.task_states(DAG_ID, run["dag_run_id"])
        assert run["state"] == "success", (run["dag_run_id"], states)
        assert states == dict.fromkeys(TASKS, "success"), states

    # One after the other: the later run started only when the earlier one had ended.
    first, second = sorted(runs, key=lambda r: r["start_date"])
    assert dt.datetime.fromisoformat(first["end_date"]) <= dt.datetime.fromisoformat(second["start_date"]), (
        f"max_active_runs=1, yet the nights overlapped: {[(r['start_date'], r['end_date']) for r in runs]}"
    )

    # Nothing lost: one version per night, each tagged with its own run, window and decision.
    client = MlflowClient(stack.mlflow)
    versions = sorted(client.search_model_versions(f"name='{NIGHTS_MODEL}'"), key=lambda v: int(v.version))
    assert [v.tags[Tag.RUN_ID] for v in versions] == [first["dag_run_id"], second["dag_run_id"]]
    assert [v.tags[Tag.WINDOW_END] for v in versions] == [r["conf"]["end_date"] for r in (first, second)]
    assert [v.tags[Tag.DECISION] for v in versions] == [Decision.PROMOTED, Decision.PROMOTED]
    older, newer = versions
    # Each was evaluated against the champion of its moment: none for the first, the first for the second.
    assert older.tags.get(Tag.CHAMPION_AT_EVALUATION, "") == ""
    assert newer.tags[Tag.CHAMPION_AT_EVALUATION] == older.version
    assert client.get_model_version_by_alias(NIGHTS_MODEL, CHAMPION_ALIAS).version == newer.version
    assert client.get_model_version_by_alias(NIGHTS_MODEL, PREVIOUS_ALIAS).version == older.version
    assert newer.tags[Tag.PROMOTED_BY_RUN] == second["dag_run_id"]
