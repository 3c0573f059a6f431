"""The local training backend: the real child process, its log, its timeout, its failures."""

from __future__ import annotations

import datetime as dt
import json
import sys
from types import SimpleNamespace

import pytest

from retrain.contracts import TrainingResult
from retrain.errors import TrainingError
from retrain.invocation import training_invocation
from retrain.pipeline import producer
from retrain.settings import features_dir
from retrain.spec import load_spec
from retrain_operators.base import run_from_context
from retrain_operators.local_train import LocalTrainOperator
from tests.support import REPO

SPEC = load_spec(REPO / "include" / "models" / "churn.yaml")
TRAIN = producer(TrainingResult)


def context(end: str = "2025-05-01", run_id: str = "manual__test") -> dict:
    return {
        "params": {"end_date": end, "estimator_params": {"max_iter": 5}},
        "dag_run": SimpleNamespace(conf={}, run_after=dt.datetime(2026, 1, 1, tzinfo=dt.UTC)),
        "run_id": run_id,
    }


def window_end(**ctx) -> dt.datetime:
    return run_from_context({"run_id": "manual__test", **ctx}, SPEC).window.end


def test_window_end_prefers_the_form_then_the_conf_then_the_interval_then_the_trigger_time():
    run_after = dt.datetime(2026, 3, 4, 5, 6, tzinfo=dt.UTC)
    interval_end = dt.datetime(2025, 5, 1, 2, tzinfo=dt.UTC)
    dag_run = SimpleNamespace(conf={}, run_after=run_after)
    midnight = dt.datetime(2025, 2, 3, tzinfo=dt.UTC)
    assert window_end(params={"end_date": "2025-02-03"}, dag_run=dag_run) == midnight
    conf_run = SimpleNamespace(conf={"end_date": "2025-02-03"}, run_after=run_after)
    assert window_end(params={}, dag_run=conf_run, data_interval_end=interval_end) == midnight
    assert window_end(params={}, dag_run=dag_run, data_interval_end=interval_end) == dt.datetime(
        2025, 5, 1, tzinfo=dt.UTC
    )
    # A manual run in Airflow 3 may have no logical date and no data interval at all.
    assert window_end(params={}, dag_run=dag_run) == dt.datetime(2026, 3, 4, tzinfo=dt.UTC)
    with pytest.raises(ValueError, match="param 'end_date': 'yesterday' is not an ISO date"):
        window_end(params={"end_date": "yesterday"}, dag_run=dag_run)


def test_invocation_carries_the_whole_run_and_the_same_environment_for_both_backends():
    run = run_from_context(context(), SPEC)
    invocation = training_invocation(
        SPEC, run, task_id="train", features_dir=str(features_dir(SPEC.name, run.window)), result_path="/r.json"
    )
    arguments = invocation.arguments
    assert invocation.command("python")[:3] == ["python", "-m", "retrain.train"]
    assert json.loads(arguments[arguments.index("--run-json") + 1]) == run.to_dict()
    assert arguments[arguments.index("--features-dir") + 1].endswith("churn/features/end_date=2025-05-01")
    assert invocation.env == {"PYTHONHASHSEED": "0", "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "2"}
    assert not any(key.startswith("MLFLOW_") for key in invocation.env)


def test_bad_estimator_params_are_refused():
    ctx = context()
    ctx["params"]["estimator_params"] = [1, 2]
    with pytest.raises(ValueError, match="param 'estimator_params' must be a JSON object"):
        run_from_context(ctx, SPEC)


def test_timeout_kills_the_process_and_keeps_its_last_lines():
    operator = LocalTrainOperator(spec=SPEC, step=TRAIN)
    code = "import time\nfor i in range(5): print('step', i, flush=True)\ntime.sleep(60)"
    started = dt.datetime.now()
    returncode, lines, timed_out = operator._run([sys.executable, "-c", code], {}, timeout_s=2)
    assert timed_out and returncode != 0
    assert lines[-1] == "step 4"
    assert (dt.datetime.now() - started).total_seconds() < 20


def test_failed_job_fails_the_task_with_its_last_log_lines(tmp_path, monkeypatch):
    monkeypatch.setenv("RETRAIN_ARTIFACTS_ROOT", str(tmp_path))  # no feature partition there
    operator = LocalTrainOperator(spec=SPEC, step=TRAIN)
    with pytest.raises(TrainingError) as error:
        operator.execute(context())
    message = str(error.value)
    assert "training exited with code 1" in message
    assert "no complete feature partition" in message
