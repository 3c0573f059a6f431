"""Two models retrain at the same time on the real scheduler (LocalExecutor, PostgreSQL): their
data steps run side by side, the `retrain_training` pool bounds how many train tasks run at once,
and neither run touches the other's registry entries."""

from __future__ import annotations

import datetime as dt

import pytest
import yaml
from mlflow import MlflowClient

from tests.e2e.conftest import POOL_MODELS
from tests.support import REPO

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
DATA_STEPS = ("validate_data", "check_drift", "build_features")


def test_the_pools_are_sized_from_airflow_settings_yaml(stack):
    settings = yaml.safe_load((REPO / "airflow_settings.yaml").read_text())["airflow"]["pools"]
    assert settings, "airflow_settings.yaml declares no pool"
    for declared in settings:
        pool = stack.request("GET", f"/api/v2/pools/{declared['pool_name']}")
        assert pool["slots"] == declared["pool_slot"], pool


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
        dag_ids = [f"retrain_{model}" for model in POOL_MODELS]
        for dag_id in dag_ids:  # unpaused first, so that the two triggers follow each other closely
            stack.request("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})
        runs = {}
        for dag_id in dag_ids:
            run = stack.request(
                "POST", f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": {"end_date": "2025-05-01"}}
            )
            runs[dag_id] = run["dag_run_id"]
        for dag_id, run_id in runs.items():
            run = stack.wait_for_run(dag_id, run_id)
            assert run["state"] == "success", stack.task_states(dag_id, run_id)
    finally:
        set_slots(pool["slots"])

    def interval(dag_id: str, run_id: str, task_id: str) -> tuple[dt.datetime, dt.datetime]:
        ti = stack.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}")
        return dt.datetime.fromisoformat(ti["start_date"]), dt.datetime.fromisoformat(ti["end_date"])

    trains, data_steps = [], []
    for dag_id, run_id in runs.items():
        ti = stack.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/train")
        assert ti["pool"] == "retrain_training"
        trains.append(interval(dag_id, run_id, "train"))
        data_steps.append({task_id: interval(dag_id, run_id, task_id) for task_id in DATA_STEPS})
    (_, first_end), (second_start, _) = sorted(trains)
    assert first_end <= second_start, f"one pool slot, yet training overlapped: {trains}"
    # The pool holds back training only: a data step of one model ran while one of the other did
    # (the same moment, not merely interleaved, as they would be with a parallelism of 1).
    side_by_side = [
        (a, b)
        for a, (a_start, a_end) in data_steps[0].items()
        for b, (b_start, b_end) in data_steps[1].items()
        if a_start < b_end and b_start < a_end
    ]
    assert side_by_side, f"no data step of one model ran at the same time as one of the other: {data_steps}"

    client = MlflowClient(stack.mlflow)
    for model in POOL_MODELS:
        (version,) = client.search_model_versions(f"name='{model}'")
        assert version.tags["airflow.dag_id"] == f"retrain_{model}"
        assert version.tags["airflow.run_id"] == runs[f"retrain_{model}"]
        assert client.get_model_version_by_alias(model, "champion").version == version.version
