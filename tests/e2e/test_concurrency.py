"""Two models retrain at the same time on the real scheduler: they do not interfere, and the
`retrain_training` pool bounds how many train tasks run at once."""

from __future__ import annotations

import datetime as dt

import pytest
from mlflow import MlflowClient

from tests.e2e.conftest import POOL_MODELS

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_two_models_at_once_do_not_interfere_and_the_training_pool_serialises_training(stack):
    stack.wait_for_dags(*(f"retrain_{m}" for m in POOL_MODELS))
    pool = stack.request("GET", "/api/v2/pools/retrain_training")

    def set_slots(slots: int) -> None:
        body = {
            "pool": pool["name"],
            "slots": slots,
            "description": pool["description"],
            "include_deferred": pool["include_deferred"],
        }
        stack.request("PATCH", "/api/v2/pools/retrain_training", body)

    set_slots(1)
    try:
        runs = {}
        for model in POOL_MODELS:
            dag_id = f"retrain_{model}"
            stack.request("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})
            run = stack.request(
                "POST", f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": {"end_date": "2025-05-01"}}
            )
            runs[dag_id] = run["dag_run_id"]
        for dag_id, run_id in runs.items():
            run = stack.wait_for_run(dag_id, run_id)
            assert run["state"] == "success", stack.task_states(dag_id, run_id)
    finally:
        set_slots(pool["slots"])

    trains = []
    for dag_id, run_id in runs.items():
        ti = stack.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/train")
        assert ti["pool"] == "retrain_training"
        trains.append((dt.datetime.fromisoformat(ti["start_date"]), dt.datetime.fromisoformat(ti["end_date"])))
    (_, first_end), (second_start, _) = sorted(trains)
    assert first_end <= second_start, f"one pool slot, yet training overlapped: {trains}"

    client = MlflowClient(stack.mlflow)
    for model in POOL_MODELS:
        (version,) = client.search_model_versions(f"name='{model}'")
        assert version.tags["airflow.dag_id"] == f"retrain_{model}"
        assert version.tags["airflow.run_id"] == runs[f"retrain_{model}"]
        assert client.get_model_version_by_alias(model, "champion").version == version.version
